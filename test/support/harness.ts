import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { channelCallObserver, createMetrics } from '../../src/lib/metrics';
import type { Server } from 'node:http';
import request from 'supertest';
import { createRedis } from '../../src/lib/redis';
import type express from 'express';
import { createApp, type AppDeps, type AppModule } from '../../src/app';
import { createWechatPayChannel, wechatPayConfigFromAppConfig } from '../../src/channels/wechatpay/wechatpay.channel';
import { loadConfig, type Config, type Env } from '../../src/config/config';
import { SANDBOX_APP_SECRET, sandboxEnv } from '../../src/config/sandbox';
import { modules as defaultModules, startBackground } from '../../src/gateway';
import { createLogger } from '../../src/lib/logger';
import { createMerchant } from '../../src/modules/merchants/merchant.service';
import { loadOrCreateSandboxKeys, type SandboxKeys } from '../../src/simulator/keys';
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '../../src/simulator/app';
import { freePort } from '../../scripts/services';
import { createTestDatabase, type TestDatabase } from './db';
import { testQueuePrefix, testRedisUrl } from './redis';
import { readFileSync } from 'node:fs';

/** Where the test keys live (per user: another user's folder may not be readable). */
export const TEST_KEYS_DIR = join(tmpdir(), `gateway-test-keys-${process.getuid?.() ?? 'user'}`);

export const API_KEY = 'sk_test_merchant_key_000000001';
export const OTHER_API_KEY = 'sk_test_merchant_key_000000002';

export interface Harness {
  app: express.Express;
  /** supertest on the gateway app, with the merchant's Bearer key helper. */
  http: () => request.Agent;
  api: (method: 'get' | 'post' | 'put', path: string, key?: string) => request.Test;
  deps: AppDeps;
  config: Config;
  db: TestDatabase;
  sim: RunningSimulator;
  keys: SandboxKeys;
  gatewayUrl: string;
  /** Starts outbox, sweeper and module workers (off by default so tests control timing). */
  startBackground(): Promise<void>;
  close(): Promise<void>;
}

/** Keys are made once per machine (RSA generation is slow) and reused by every test file. */
function testKeys(): { keys: SandboxKeys; dir: string } {
  // Per user: another user's cache (private key 0600) is unreadable.
  const dir = TEST_KEYS_DIR;
  return { keys: loadOrCreateSandboxKeys(dir), dir };
}

/**
 * The real gateway (own fresh database, the run's Redis) listening on 127.0.0.1, wired to an
 * in-process WeChat Pay simulator that speaks to it over HTTP, as in sandbox mode.
 */
export async function startHarness(opts: {
  env?: Partial<Record<keyof Env, string>>;
  sim?: Partial<SimulatorOptions>;
  modules?: AppModule[];
  now?: () => Date;
} = {}): Promise<Harness> {
  const { keys, dir } = testKeys();
  const db = await createTestDatabase();
  const port = await freePort();
  const gatewayUrl = `http://127.0.0.1:${port}`;
  const sim = await startSimulator({
    keys,
    appSecret: SANDBOX_APP_SECRET,
    notifyUrlPolicy: 'any-no-query',
    h5Domains: ['127.0.0.1', 'localhost'],
    oauthDomains: ['127.0.0.1', 'localhost'],
    notifyRetryScheduleMs: [200, 400, 800, 1600],
    ...opts.sim,
    // No fee and no per-order rate unless a test is about them (tests of those set them here and
    // PROFIT_SHARING_ORDER_INTERVAL_MS below); the simulator's own defaults are WeChat's.
    profitSharing: { minDelayAfterPayMs: 0, resultDelayMs: 0, feeRate: 0, perOrderRatePerSecond: 0, ...opts.sim?.profitSharing },
  });
  const env = {
    ...sandboxEnv({ keysDir: dir, simulatorUrl: sim.url, databaseUrl: db.url, redisUrl: testRedisUrl(), port, publicBaseUrl: gatewayUrl }),
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    QUEUE_PREFIX: testQueuePrefix('gw'),
    SWEEPER_INTERVAL_MS: '200',
    PROFIT_SHARING_ORDER_INTERVAL_MS: '0',
    // The daily bill scheduler would call the simulator behind other tests' backs; its tests turn it on.
    RECONCILE_BILLS_ENABLED: 'false',
    ...opts.env,
  };
  const config = loadConfig(env);
  const logger = createLogger(config.LOG_LEVEL);
  const metrics = createMetrics();
  const deps: AppDeps = {
    metrics,
    config,
    logger,
    prisma: db.prisma,
    redis: createRedis(config.REDIS_URL),
    channel: createWechatPayChannel({ ...wechatPayConfigFromAppConfig(config, (p) => readFileSync(p, 'utf8')), onCall: channelCallObserver(metrics) }, logger),
    now: opts.now ?? (() => new Date()),
  };
  await createMerchant(db.prisma, { id: 'mch_test', name: '测试商户 Test Shop', apiKey: API_KEY });
  await createMerchant(db.prisma, { id: 'mch_other', name: 'Other Shop', apiKey: OTHER_API_KEY });
  const mods = opts.modules ?? defaultModules;
  const app = createApp(deps, mods);
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(port, '127.0.0.1', () => resolve(s));
  });
  let background: { stop(): Promise<void> } | undefined;

  return {
    app,
    http: () => request.agent(app),
    api: (method, path, key = API_KEY) => request(app)[method](path).set('Authorization', `Bearer ${key}`),
    deps,
    config,
    db,
    sim,
    keys,
    gatewayUrl,
    async startBackground() {
      background ??= await startBackground(deps, mods);
    },
    async close() {
      // Redis and the database are released whatever fails before: a client left open reconnects
      // forever once the run's redis-server stops, and keeps jest from exiting.
      try {
        await background?.stop();
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
        await sim.close();
      } finally {
        await deps.redis.quit().catch(() => deps.redis.disconnect());
        await db.drop();
      }
    },
  };
}

/** A valid checkout body; override what the test is about. */
export function checkoutBody(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { out_trade_no: `T${Date.now()}${Math.floor(Math.random() * 1e6)}`, amount: 1999, description: '测试商品 Test item', ...over };
}

/** Real user agents (sources in ../shared/wechatpay/FACTS.md §8). */
export const UA = {
  wechatIos: 'Mozilla/5.0 (iPhone; CPU iPhone OS 11_2_6 like Mac OS X) AppleWebKit/604.5.6 (KHTML, like Gecko) Mobile/15D100 MicroMessenger/6.6.5 NetType/WIFI Language/zh_CN',
  wechatAndroid: 'Mozilla/5.0 (Linux; Android 9; Redmi Note 5 Build/PKQ1.180904.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.62 XWEB/2853 MMWEBSDK/201201 Mobile Safari/537.36 MMWEBID/1119 MicroMessenger/7.0.22.1820(0x2700163B) Process/toolsmp WeChat/arm64 Weixin NetType/WIFI Language/en ABI/arm64',
  wechatWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x6309092b) XWEB/9105 Flue',
  wecomIos: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)  Mobile/15E148 wxwork/4.1.39 MicroMessenger/7.0.1 Language/zh ColorScheme/Light wwmver/3.26.38.377',
  wecomWindows: 'Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.6668.101 Safari/537.36 Language/zh ColorScheme/Light wxwork/4.1.39 (MicroMessenger/6.2) WindowsWechat  MailPlugin_Electron WeMail embeddisk wwmver/3.26.39.639 noMediaCs/false',
  miniProgram: 'Mozilla/5.0 (Linux; Android 7.1.1; MI 6 Build/NMF26X; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/57.0.2987.132 MQQBrowser/6.2 TBS/043807 Mobile Safari/537.36 MicroMessenger/6.6.1.1220(0x26060135) NetType/4G Language/zh_CN miniProgram',
  safariIos: 'Mozilla/5.0 (iPhone; CPU iPhone OS 13_2_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0.3 Mobile/15E148 Safari/604.1',
  chromeAndroid: 'Mozilla/5.0 (Linux; Android 8.0.0; Pixel 2 XL Build/OPD1.170816.004) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/84.0.4147.89 Mobile Safari/537.36',
  qqApp: 'Mozilla/5.0 (iPhone; CPU iPhone OS 10_0_2 like Mac OS X) AppleWebKit/602.1.50 (KHTML, like Gecko) Mobile/14A456 QQ/6.5.3.410 V1_IPH_SQ_6.5.3_1_APP_A Pixel/1080 Core/UIWebView NetType/WIFI Mem/26',
  alipayAndroid: 'Mozilla/5.0 (Linux; U; Android 10; zh-CN; V2034A Build/QP1A.190711.020) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/69.0.3497.100 UWS/3.22.2.33 Mobile Safari/537.36 UCBS/3.22.2.33_211025173018 NebulaSDK/1.8.100112 Nebula AlipayDefined(nt:WIFI,ws:360|0|2.0) AliApp(AP/10.2.51.7100) AlipayClient/10.2.51.7100 Language/zh-Hans useStatusBar/true isConcaveScreen/true Region/CNAriver/1.0.0',
  weiboIos: 'Mozilla/5.0 (iPhone; CPU iPhone OS 12_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/16A366 Weibo (iPhone8,2__weibo__8.9.3__iphone__os12.0)',
  chromeMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/84.0.4147.89 Safari/537.36',
  firefoxWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0',
} as const;

/**
 * Refund benchmark (issue 9): a payment split to 30 MERCHANT_ID receivers is refunded in full with
 * split_return "proportional" — 30 return orders, then the refund, then its notify — timed from the
 * POST to `succeeded` in our database. Real gateway (Express, PostgreSQL, Redis, the refund driver and
 * its sync loop, the notify endpoint) against the simulator in this process with every delay at 0.
 * Run: node --import tsx bench/refunds.ts [--runs 7]
 */
import type { Server } from 'node:http';
import { createMetrics } from '../src/lib/metrics';
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { Redis } from 'ioredis';
import { createApp, type AppDeps } from '../src/app';
import { createWechatPayChannel, wechatPayConfigFromAppConfig } from '../src/channels/wechatpay/wechatpay.channel';
import { loadConfig } from '../src/config/config';
import { SANDBOX_APP_SECRET, sandboxEnv } from '../src/config/sandbox';
import { startBackground } from '../src/gateway';
import { createLogger } from '../src/lib/logger';
import { applyMigrations } from '../src/lib/migrations';
import { createPrisma } from '../src/lib/prisma';
import { createMerchant } from '../src/modules/merchants/merchant.service';
import { refundsModule } from '../src/modules/refunds/refund.module';
import { createSplitsModule } from '../src/modules/splits/split.module';
import { startSimulator } from '../src/simulator/app';
import { loadOrCreateSandboxKeys } from '../src/simulator/keys';
import { freePort, startEmbeddedPostgres, startRedis } from '../scripts/services';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const RUNS = arg('runs', 7);
const RECEIVERS = 30;
const API_KEY = 'sk_bench_refund_key_000000001';
const log = (m: string) => process.stderr.write(`${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'gateway-bench-refunds-'));
  await chmod(base, 0o755);
  const pg = await startEmbeddedPostgres({ dataDir: join(base, 'pg'), port: await freePort(), database: 'bench', unsafeFast: true, log: () => undefined });
  const redis = await startRedis({ port: await freePort(), dir: join(base, 'redis'), log: () => undefined });
  await applyMigrations(pg.url, () => undefined, resolve(__dirname, '../prisma/migrations'));
  const keysDir = join(tmpdir(), 'gateway-test-keys');
  const keys = loadOrCreateSandboxKeys(keysDir);
  const sim = await startSimulator({
    keys,
    appSecret: SANDBOX_APP_SECRET,
    notifyUrlPolicy: 'any-no-query',
    refundResultDelayMs: 0,
    profitSharing: { minDelayAfterPayMs: 0, resultDelayMs: 0 },
  });
  const port = await freePort();
  const gatewayUrl = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    ...sandboxEnv({ keysDir, simulatorUrl: sim.url, databaseUrl: pg.url, redisUrl: redis.url, port, publicBaseUrl: gatewayUrl }),
    LOG_LEVEL: 'silent',
    QUEUE_PREFIX: `bench-refunds-${Date.now()}`,
    PROFIT_SHARING_DELAY: '0',
    PROFIT_SHARING_POLL_MS: '20',
    RECONCILE_INTERVAL_MS: '600000',
    REFUND_SYNC_INTERVAL_MS: '1000',
  });
  const logger = createLogger('silent');
  const prisma = createPrisma(pg.url);
  const deps: AppDeps = {
    metrics: createMetrics(),
    config,
    logger,
    prisma,
    redis: new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }),
    channel: createWechatPayChannel(wechatPayConfigFromAppConfig(config, (p) => readFileSync(p, 'utf8')), logger),
    now: () => new Date(),
  };
  await createMerchant(prisma, { id: 'mch_bench', name: 'Bench shop', apiKey: API_KEY });
  const mods = [createSplitsModule({ reconcile: false }), refundsModule];
  const app = createApp(deps, mods);
  const server = await new Promise<Server>((r) => {
    const s = app.listen(port, '127.0.0.1', () => r(s));
  });
  const bg = await startBackground(deps, mods);
  const api = (m: 'get' | 'post', p: string) => request(app)[m](p).set('Authorization', `Bearer ${API_KEY}`);

  const totals: number[] = [];
  const returnsPhase: number[] = [];
  /** CPU of this process (gateway + simulator) per refund: the work, independent of the machine's load. */
  const cpuMs: number[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      // A paid payment of ¥1000 split to 30 merchant receivers (¥9.90 each = 29.7 %: WeChat's 30 % is of
      // the amount less its fee, so a split of exactly 30 % is refused), all SUCCESS.
      const c = await api('post', '/v1/checkouts').send({ out_trade_no: `BR${Date.now()}${run}`, amount: 100_000, description: '退款基准', profit_sharing: { mode: 'on_demand' } }).expect(201);
      const id = c.body.id as string;
      await request(app).get(`/checkout/${id}`).set('User-Agent', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/84.0 Safari/537.36').set('Accept', 'application/json').expect(200);
      const order = await prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: id } });
      if (!sim.control.pay(order.outTradeNo).ok) throw new Error('pay refused');
      while ((await prisma.checkout.findUniqueOrThrow({ where: { id } })).status !== 'paid') await sleep(5);
      const receivers = Array.from({ length: RECEIVERS }, (_, i) => ({
        type: 'MERCHANT_ID', account: `19${String(run).padStart(3, '0')}${String(i).padStart(5, '0')}`, name: `接收方 ${run}-${i} 有限公司`, amount: 990, description: '分账', relation_type: 'PARTNER',
      }));
      await api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', `split-${id}`).send({ receivers }).expect(201);
      while ((await prisma.splitReceiver.count({ where: { checkoutId: id, state: 'SUCCESS' } })) < RECEIVERS) {
        // A refused split would leave this loop waiting forever: say why instead.
        const failed = await prisma.splitBatch.findFirst({ where: { checkoutId: id, state: { in: ['failed', 'partially_failed'] } } });
        if (failed) throw new Error(`split batch ${failed.state}: ${failed.failCode} ${failed.failMessage}`);
        await sleep(10);
      }

      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await api('post', `/v1/checkouts/${id}/refunds`).set('Idempotency-Key', `refund-${id}`).send({ amount: 100_000, split_return: 'proportional' }).expect(201);
      let tReturns = 0;
      for (;;) {
        const row = await prisma.refund.findUniqueOrThrow({ where: { id: r.body.id }, select: { status: true } });
        if (!tReturns && row.status !== 'pending' && row.status !== 'returning') tReturns = performance.now();
        if (row.status === 'succeeded') break;
        if (['failed', 'abnormal', 'closed'].includes(row.status)) throw new Error(`refund ${row.status}`);
        await sleep(2);
      }
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      cpuMs.push((cpu.user + cpu.system) / 1000);
      const returned = (await prisma.refundReturn.findMany({ where: { refundId: r.body.id, state: 'succeeded' } })).length;
      if (returned !== RECEIVERS) throw new Error(`${returned} returns`);
      totals.push(ms);
      returnsPhase.push((tReturns || performance.now()) - t0);
      log(`run ${run + 1}/${RUNS}: ${ms.toFixed(0)} ms (30 returns done after ${returnsPhase[run]!.toFixed(0)} ms), CPU ${cpuMs[run]!.toFixed(0)} ms`);
    }
  } finally {
    await bg.stop();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await sim.close();
    await deps.redis.quit().catch(() => undefined);
    await prisma.$disconnect();
    await redis.stop();
    await pg.stop();
    await rm(base, { recursive: true, force: true });
  }
  const sorted = [...totals].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const rsorted = [...returnsPhase].sort((a, b) => a - b);
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`Refund of a ${RECEIVERS}-receiver split payment, proportional returns, POST -> succeeded (notify), ${RUNS} runs:`);
  console.log(`  median ${median.toFixed(0)} ms, min ${sorted[0]!.toFixed(0)} ms, max ${sorted[sorted.length - 1]!.toFixed(0)} ms (target < 2000 ms)`);
  console.log(`  of which the 30 return orders: median ${rsorted[Math.floor(rsorted.length / 2)]!.toFixed(0)} ms`);
  const csorted = [...cpuMs].sort((a, b) => a - b);
  console.log(`  CPU of the gateway + simulator process per refund: median ${csorted[Math.floor(csorted.length / 2)]!.toFixed(0)} ms; load average ${loadavg()[0]!.toFixed(1)}`);
  console.log(`  machine: ${cpus().length} × ${cpu}, Node ${process.version}, PostgreSQL and Redis on the same machine, simulator in process`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

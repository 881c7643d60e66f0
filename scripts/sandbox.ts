/**
 * `npm run sandbox`: the whole product on one machine with no configuration — embedded PostgreSQL,
 * a private redis-server, the WeChat Pay simulator and the gateway with its demo shop at `/`.
 * Keys live in ./sandbox (generated on first run), data in ./.data. Explicit env variables win.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { envSchema, loadConfig } from '../src/config/config';
import { SANDBOX_APP_SECRET, sandboxEnv } from '../src/config/sandbox';
import { buildDeps, startGateway } from '../src/gateway';
import { applyMigrations } from '../src/lib/migrations';
import { createMerchant, SANDBOX_MERCHANT_ID } from '../src/modules/merchants/merchant.service';
import { startSimulator } from '../src/simulator/app';
import { loadOrCreateSandboxKeys } from '../src/simulator/keys';
import { startEmbeddedPostgres, startRedis } from './services';

const num = (v: string | undefined, d: number) => (v && /^\d+$/.test(v) ? Number(v) : d);

async function main(): Promise<void> {
  const root = process.cwd();
  const keysDir = resolve(root, 'sandbox');
  const dataDir = resolve(root, '.data');
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const log = (m: string) => process.stderr.write(`[sandbox] ${m}\n`);

  const port = num(process.env.PORT, 3000);
  const simPort = num(process.env.SIMULATOR_PORT, 3100);
  // 127.0.0.1, not localhost: the simulator compares the H5 payer IP with the visitor IP, and a
  // browser may reach "localhost" over ::1 but the simulator over 127.0.0.1.
  const publicBaseUrl = process.env.PUBLIC_BASE_URL ?? `http://127.0.0.1:${port}`;

  const keys = loadOrCreateSandboxKeys(keysDir);
  log(`keys in ${keysDir} (merchant, platform PUB_KEY_ID, APIv3 key)`);
  const pg = await startEmbeddedPostgres({ dataDir: resolve(dataDir, 'pg'), port: num(process.env.SANDBOX_PG_PORT, 54329), database: 'gateway', log });
  const { applied } = await applyMigrations(pg.url, log);
  log(`PostgreSQL ready (${applied.length} migration(s) applied)`);
  const redis = await startRedis({ port: num(process.env.SANDBOX_REDIS_PORT, 63799), dir: resolve(dataDir, 'redis'), log });

  const sim = await startSimulator({
    keys,
    port: simPort,
    host: '127.0.0.1',
    appSecret: SANDBOX_APP_SECRET,
    // The sandbox notify URL is plain http on localhost; real WeChat demands public HTTPS.
    notifyUrlPolicy: 'any-no-query',
    h5Domains: ['localhost', '127.0.0.1'],
    oauthDomains: ['localhost', '127.0.0.1'],
    profitSharing: { minDelayAfterPayMs: 0, resultDelayMs: 2000 },
  });
  log(`WeChat Pay simulator on ${sim.url}`);

  const explicit = Object.fromEntries(Object.keys(envSchema.shape).filter((k) => process.env[k]).map((k) => [k, process.env[k]]));
  const config = loadConfig({
    ...sandboxEnv({ keysDir, simulatorUrl: sim.url, databaseUrl: pg.url, redisUrl: redis.url, port, publicBaseUrl }),
    ...explicit,
    APP_MODE: 'sandbox',
  });
  const deps = buildDeps(config);
  await createMerchant(deps.prisma, { id: SANDBOX_MERCHANT_ID, name: '演示商户 Sandbox Shop', apiKey: config.SANDBOX_API_KEY });
  const gw = await startGateway(config, deps);

  process.stdout.write(`
  Gateway (sandbox)   ${publicBaseUrl}        demo shop at /
  WeChat Pay sim      ${sim.url}
  Merchant API key    ${config.SANDBOX_API_KEY}
  Metrics             curl -H 'Authorization: Bearer ${config.METRICS_TOKEN}' ${publicBaseUrl}/metrics
  Console             ${publicBaseUrl}/console

  curl -s ${publicBaseUrl}/v1/checkouts -H 'Authorization: Bearer ${config.SANDBOX_API_KEY}' \\
       -H 'Content-Type: application/json' -d '{"out_trade_no":"demo-1","amount":1,"description":"Demo"}'

  Ctrl-C stops everything.
`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await gw.close().catch(() => undefined);
    await sim.close().catch(() => undefined);
    await redis.stop().catch(() => undefined);
    await pg.stop().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((err) => {
  process.stderr.write(`[sandbox] failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});

/**
 * `npm run sandbox`: the whole product on one machine with no configuration — embedded PostgreSQL,
 * a private redis-server, the WeChat Pay simulator and the gateway with its demo shop at `/`.
 * Keys live in ./sandbox (generated on first run), data in ./.data (SANDBOX_DATA_DIR). Explicit env
 * variables win. Whatever stops it (Ctrl-C, SIGTERM/SIGHUP to npm or node, npm killed) stops
 * everything it started; a start after a killed run cleans up what that run left behind.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { envSchema, loadConfig } from '../src/config/config';
import { SANDBOX_APP_SECRET, sandboxEnv } from '../src/config/sandbox';
import { buildDeps, startGateway } from '../src/gateway';
import { applyMigrations } from '../src/lib/migrations';
import { SANDBOX_SUB_MCHID, seedSandboxMerchants } from '../src/modules/merchants/sandbox.seed';
import { ensureDemoReceiver } from '../src/modules/demo/demo.webhooks';
import { startSimulator } from '../src/simulator/app';
import { loadOrCreateSandboxKeys } from '../src/simulator/keys';
import { assertPortFree, fsStartupError, StartupError } from './processes';
import { startEmbeddedPostgres, startRedis } from './services';
import { writeSandboxInfo } from '../src/cli/sandbox-info';

const num = (v: string | undefined, d: number) => (v && /^\d+$/.test(v) ? Number(v) : d);
const log = (m: string) => process.stderr.write(`[sandbox] ${m}\n`);

/** What is running, stopped last-started first. */
const running: Array<{ name: string; stop(): Promise<void> }> = [];
let stopping: Promise<void> | undefined;
/** The service being started now: a stop waits for it, so nothing is left half-started. */
let inFlight: Promise<unknown> = Promise.resolve();

function stopAll(why: string, code: number): Promise<void> {
  stopping ??= (async () => {
    if (why) log(`${why}: stopping`);
    // A stop that hangs must not strand the terminal.
    setTimeout(() => process.exit(code || 1), 30_000).unref();
    await inFlight;
    for (const s of running.reverse()) await s.stop().catch((e: unknown) => log(`${s.name}: ${e instanceof Error ? e.message : String(e)}`));
    running.length = 0;
    process.exit(code);
  })();
  return stopping;
}

type Stoppable = { stop(): Promise<void> } | { close(): Promise<unknown> };

/** Starts a service and registers it for stopping; after a stop was asked for, start-up goes no further. */
function track<T extends Stoppable>(name: string, starting: Promise<T>): Promise<T> {
  const started = starting.then((s) => {
    running.push({ name, stop: async () => void ('stop' in s ? await s.stop() : await s.close()) });
    return s;
  });
  inFlight = started.catch(() => undefined);
  return started.then((s) => (stopping ? new Promise<T>(() => undefined) : s));
}

async function main(): Promise<void> {
  const root = process.cwd();
  const keysDir = resolve(root, 'sandbox');
  const dataDir = resolve(root, process.env.SANDBOX_DATA_DIR ?? '.data');
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o755 });
    // Fail here, in one line, rather than deep inside initdb on a read-only or full disk.
    writeFileSync(resolve(dataDir, '.write-test'), '');
    rmSync(resolve(dataDir, '.write-test'));
  } catch (e) {
    throw fsStartupError(e, dataDir);
  }

  const port = num(process.env.PORT, 3000);
  const simPort = num(process.env.SIMULATOR_PORT, 3100);
  const pgPort = num(process.env.SANDBOX_PG_PORT, 54329);
  const redisPort = num(process.env.SANDBOX_REDIS_PORT, 63799);
  // 127.0.0.1, not localhost: the simulator compares the H5 payer IP with the visitor IP (both
  // loopback addresses count as one there, but a printed URL should not depend on that).
  const publicBaseUrl = process.env.PUBLIC_BASE_URL ?? `http://127.0.0.1:${port}`;
  await assertPortFree(port, 'gateway', 'PORT');
  await assertPortFree(simPort, 'WeChat Pay simulator', 'SIMULATOR_PORT');

  let keys;
  try {
    keys = loadOrCreateSandboxKeys(keysDir);
  } catch (e) {
    throw fsStartupError(e, keysDir);
  }
  log(`keys in ${keysDir} (merchant, platform PUB_KEY_ID, APIv3 key)`);
  const pg = await track('PostgreSQL', startEmbeddedPostgres({ dataDir: resolve(dataDir, 'pg'), port: pgPort, portEnv: 'SANDBOX_PG_PORT', database: 'gateway', log }));
  const { applied } = await applyMigrations(pg.url, log);
  log(`PostgreSQL ready (${applied.length} migration(s) applied)`);
  const redis = await track('redis-server', startRedis({ port: redisPort, portEnv: 'SANDBOX_REDIS_PORT', dir: resolve(dataDir, 'redis'), log }));

  const sim = await track(
    'simulator',
    startSimulator({
      keys,
      port: simPort,
      host: '127.0.0.1',
      appSecret: SANDBOX_APP_SECRET,
      // The sandbox notify URL is plain http on localhost; real WeChat demands public HTTPS.
      notifyUrlPolicy: 'any-no-query',
      h5Domains: ['localhost', '127.0.0.1'],
      oauthDomains: ['localhost', '127.0.0.1'],
      profitSharing: { minDelayAfterPayMs: 0, resultDelayMs: 2000 },
      // The simulator's merchant is also the demo service provider of the partner demo merchant.
      partner: { subMerchants: { [SANDBOX_SUB_MCHID]: { maxRatioBp: 3000 } } },
      // WeChat keeps its orders while we restart; so does its stand-in (see persist.ts).
      stateFile: resolve(dataDir, 'simulator-state.json'),
      // The sandbox publishes a day's bills at once (WeChat: the next morning after 10:00).
      bills: { publishImmediately: true },
    }),
  );
  log(`WeChat Pay simulator on ${sim.url} (${sim.ctx.transactions.byOutTradeNo.size} order(s) kept from earlier runs)`);

  const explicit = Object.fromEntries(Object.keys(envSchema.shape).filter((k) => process.env[k]).map((k) => [k, process.env[k]]));
  const gatewayEnv = {
    ...sandboxEnv({ keysDir, simulatorUrl: sim.url, databaseUrl: pg.url, redisUrl: redis.url, port, publicBaseUrl }),
    ...explicit,
    APP_MODE: 'sandbox',
  };
  const config = loadConfig(gatewayEnv);
  const deps = buildDeps(config);
  await seedSandboxMerchants(deps, keysDir);
  await ensureDemoReceiver(deps);
  // Loopback only: the sandbox is for this machine (and its simulator sees the same address).
  const gw = await track('gateway', startGateway(config, deps, { host: '127.0.0.1' }));
  // `npm run admin` from this folder finds the running sandbox here (no configuration needed).
  writeSandboxInfo(dataDir, config, gatewayEnv);

  process.stdout.write(`
  Gateway (sandbox)   ${publicBaseUrl}        demo shop at /
  WeChat Pay sim      ${sim.url}
  Merchant API key    ${config.SANDBOX_API_KEY}   (direct merchant)
  Partner API key     ${config.SANDBOX_PARTNER_API_KEY}   (sub-merchant ${SANDBOX_SUB_MCHID} of a service provider)
  Admin               npm run admin -- --help   (or /admin/api with ADMIN_TOKEN from .data/sandbox.json)
  Metrics             curl -H 'Authorization: Bearer ${config.METRICS_TOKEN}' ${publicBaseUrl}/metrics
  Console             ${publicBaseUrl}/console   (npm run admin -- user create --email you@example.com --role operator)

  curl -s ${publicBaseUrl}/v1/checkouts -H 'Authorization: Bearer ${config.SANDBOX_API_KEY}' \\
       -H 'Content-Type: application/json' -d '{"out_trade_no":"demo-'"$(date +%s%N)"'","amount":1,"description":"Demo"}'

  Data in ${dataDir} (kept across restarts). Ctrl-C stops everything.
`);
  log(`ready (pid ${process.pid})`);
  void gw;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void stopAll(sig, 0));
// `npm run` killed outright (or by SIGHUP, which npm does not pass on): we are re-parented.
const parentAtStart = process.ppid;
setInterval(() => {
  if (process.ppid !== parentAtStart) void stopAll(`parent process ${parentAtStart} is gone`, 0);
}, 500).unref();

main().catch((err: unknown) => {
  const line = err instanceof StartupError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`[sandbox] cannot start: ${line}\n`);
  void stopAll('', 1);
});

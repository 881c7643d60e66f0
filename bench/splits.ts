/**
 * Split-settlement benchmark (issue 3 §9): the real gateway (Express app, outbox, BullMQ split worker,
 * PostgreSQL, Redis) against the WeChat Pay simulator with result delay 0 and its rate cap equal to the
 * gateway's. The simulator runs as its own Node process (src/simulator/main.ts), driven over its /_sim
 * HTTP controls: against WeChat its CPU is not ours. --in-process runs it inside this process as before.
 * Run: node --import tsx bench/splits.ts [--payments 200] [--rate 30] [--in-process] [--only-limit-50]
 * Writes bench/RESULTS.md (not with --only-limit-50).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createMetrics } from '../src/lib/metrics';
import type { Server } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { Client } from 'pg';
import request from 'supertest';
import { Redis } from 'ioredis';
import { createApp, type AppDeps } from '../src/app';
import { createWechatPayChannel, wechatPayConfigFromAppConfig } from '../src/channels/wechatpay/wechatpay.channel';
import { loadConfig } from '../src/config/config';
import { SANDBOX_APP_SECRET, SANDBOX_APPID, SANDBOX_MCHID, sandboxEnv } from '../src/config/sandbox';
import { startBackground } from '../src/gateway';
import { createLogger } from '../src/lib/logger';
import { applyMigrations } from '../src/lib/migrations';
import { createPrisma } from '../src/lib/prisma';
import { createMerchant } from '../src/modules/merchants/merchant.service';
import { createSplitsModule } from '../src/modules/splits/split.module';
import { startSimulator } from '../src/simulator/app';
import { loadOrCreateSandboxKeys } from '../src/simulator/keys';
import type { SplitRequestRecord } from '../src/simulator/profitsharing/store';
import { freePort, startEmbeddedPostgres, startRedis } from '../scripts/services';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const PAYMENTS = arg('payments', 200);
const ONLY = process.argv.includes('--only-limit-50');
const IN_PROCESS = process.argv.includes('--in-process');
const RATE = arg('rate', 30);
const CONCURRENCY = arg('concurrency', 8);
const RECEIVERS = 30;
const API_KEY = 'sk_bench_merchant_key_0000001';
const log = (m: string) => process.stderr.write(`${m}\n`);

interface Scenario {
  limit: number;
  payments: number;
  inProcess: boolean;
}

interface Result {
  inProcess: boolean;
  limit: number;
  payments: number;
  receivers: number;
  seconds: number;
  receiversPerSecond: number;
  splitRequests: number;
  unfreezeRequests: number;
  requestsPerSecond: number;
  /**
   * cap × 1 s / median(t[i+cap] − t[i]): any cap + 1 consecutive requests span more than 1 s under a
   * sliding-second cap, so this never exceeds the cap, and a steady stream at the cap scores 100 %.
   */
  windowRate: number;
  peakWindow: number;
  limited: number;
  notifyToDoneMs: number[];
  /** Round trip of POST /v3/profitsharing/orders as the gateway saw it (p50, p95), ms. */
  splitLatencyMs: [number, number];
  /** CPU per wall second (1 = one core) from the payments to the last SUCCESS, per process. */
  cpu: CpuShare;
}

/** gateway: this Node process (gateway, outbox, split worker, the bench's polling; + simulator in-process). */
interface CpuShare {
  gateway: number;
  simulator?: number;
  postgres: number;
  redis: number;
  /** Every core's busy time (/proc/stat), out of nproc. */
  machine: number;
}

/** The simulator as the bench drives it: in this process (its control object) or another (HTTP controls). */
interface SimHandle {
  url: string;
  pay(outTradeNo: string): Promise<void>;
  requests(): Promise<SplitRequestRecord[]>;
  pid?: number;
  close(): Promise<void>;
}

const TICK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + system) of a live process, from /proc/<pid>/stat. */
function procCpu(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return undefined;
  }
}

/** CPU seconds per live process whose command name is `comm` (postgres backends, redis-server). */
function cpuByName(comm: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() !== comm) continue;
    } catch {
      continue;
    }
    const c = procCpu(Number(d));
    if (c !== undefined) out.set(Number(d), c);
  }
  return out;
}

/** Busy and total CPU seconds of the whole machine (all cores). */
function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: (total - idle) / TICK, total: total / TICK };
}

interface CpuSnapshot {
  wall: number;
  self: NodeJS.CpuUsage;
  sim?: number;
  pg: Map<number, number>;
  redis: Map<number, number>;
  machine: { busy: number; total: number };
}

function cpuSnapshot(simPid?: number): CpuSnapshot {
  return {
    wall: performance.now(),
    self: process.cpuUsage(),
    sim: simPid === undefined ? undefined : procCpu(simPid),
    pg: cpuByName('postgres'),
    redis: cpuByName('redis-server'),
    machine: machineCpu(),
  };
}

/** Processes that exited in between are not counted (PostgreSQL backends live as long as the pools). */
function cpuShare(a: CpuSnapshot, b: CpuSnapshot): CpuShare {
  const wall = (b.wall - a.wall) / 1000;
  const delta = (x: Map<number, number>, y: Map<number, number>) => [...y].reduce((s, [pid, c]) => s + c - (x.get(pid) ?? 0), 0);
  const self = (b.self.user - a.self.user + b.self.system - a.self.system) / 1e6;
  return {
    gateway: self / wall,
    simulator: a.sim === undefined || b.sim === undefined ? undefined : (b.sim - a.sim) / wall,
    postgres: delta(a.pg, b.pg) / wall,
    redis: delta(a.redis, b.redis) / wall,
    machine: (b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total) * cpus().length,
  };
}

async function startSim(keysDir: string, inProcess: boolean): Promise<SimHandle> {
  // WeChat's per-order rule stays on (one split request per second per order, 429 RATELIMIT_EXCEED
  // otherwise) and so does its fee: the gateway must live with both (issue 8 §8, issue 7 §3).
  const profitSharing = { minDelayAfterPayMs: 0, resultDelayMs: 0, ratePerSecond: RATE, perOrderRatePerSecond: 1, feeRate: 0.006 };
  if (inProcess) {
    const sim = await startSimulator({
      keys: loadOrCreateSandboxKeys(keysDir),
      appSecret: SANDBOX_APP_SECRET,
      notifyUrlPolicy: 'any-no-query',
      h5Domains: ['127.0.0.1'],
      profitSharing,
    });
    return {
      url: sim.url,
      pay: async (no) => {
        const r = sim.control.pay(no);
        if (!r.ok) throw new Error(`pay: ${JSON.stringify(r)}`);
      },
      requests: async () => sim.control.profitSharing.requests(),
      close: () => sim.close(),
    };
  }
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(__dirname, '../src/simulator/main.ts')], {
    cwd: resolve(__dirname, '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      SIM_PORT: '0',
      SIM_HOST: '127.0.0.1',
      SIM_KEYS_DIR: keysDir,
      SIM_MCHID: SANDBOX_MCHID,
      SIM_APPID: SANDBOX_APPID,
      SIM_APP_SECRET: SANDBOX_APP_SECRET,
      SIM_H5_DOMAINS: '127.0.0.1',
      SIM_OAUTH_DOMAINS: '127.0.0.1',
      SIM_NOTIFY_URL_POLICY: 'any-no-query',
      SIM_PROFIT_SHARING_RESULT_DELAY_MS: '0',
      SIM_PROFIT_SHARING_MIN_DELAY_AFTER_PAY_MS: '0',
      SIM_PROFIT_SHARING_RATE_PER_SECOND: String(RATE),
      SIM_PROFIT_SHARING_PER_ORDER_RATE_PER_SECOND: '1',
      SIM_PROFIT_SHARING_FEE_RATE: '0.006',
    },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((res, rej) => {
    let out = '';
    const timer = setTimeout(() => rej(new Error(`simulator did not start: ${stderr}`)), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /simulator on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res(m[1]!);
      }
    });
    child.once('exit', (code) => rej(new Error(`simulator exited (${code}): ${stderr}`)));
  });
  const json = async (path: string, init?: RequestInit) => {
    const r = await fetch(`${url}${path}`, init);
    if (!r.ok) throw new Error(`${init?.method ?? 'GET'} ${path}: ${r.status} ${await r.text()}`);
    return r.json() as Promise<any>;
  };
  // The options it started with, as it reports them (an empty patch changes nothing).
  const opts = await json('/_sim/profitsharing/options', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  for (const [k, v] of Object.entries(profitSharing)) if (opts[k] !== v) throw new Error(`simulator ${k}=${opts[k]}, want ${v}`);
  return {
    url,
    pid: child.pid,
    pay: async (no) => void (await json(`/_sim/transactions/${encodeURIComponent(no)}/pay`, { method: 'POST' })),
    requests: async () => (await json('/_sim/profitsharing/requests')).requests as SplitRequestRecord[],
    close: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'gateway-bench-'));
  await chmod(base, 0o755);
  const pg = await startEmbeddedPostgres({ dataDir: join(base, 'pg'), port: await freePort(), database: 'bench', unsafeFast: true, ephemeral: true, log: () => undefined });
  const redis = await startRedis({ port: await freePort(), dir: join(base, 'redis'), log: () => undefined });
  await applyMigrations(pg.url, () => undefined, resolve(__dirname, '../prisma/migrations'));
  const results: Result[] = [];
  try {
    const inProcess = IN_PROCESS;
    if (ONLY) {
      await run(pg.url, redis.url, { limit: 50, payments: PAYMENTS, inProcess }, 'l50');
      return;
    }
    const single: number[] = [];
    for (let i = 0; i < 5; i++) single.push(...(await run(pg.url, redis.url, { limit: 5, payments: 1, inProcess }, `single${i}`)).notifyToDoneMs);
    results.push(await run(pg.url, redis.url, { limit: 5, payments: PAYMENTS, inProcess }, 'l5'));
    results.push(await run(pg.url, redis.url, { limit: 50, payments: PAYMENTS, inProcess }, 'l50'));
    // The previous set-up (simulator in this process) at limit 50, for comparison.
    if (!inProcess) results.push(await run(pg.url, redis.url, { limit: 50, payments: PAYMENTS, inProcess: true }, 'l50inproc'));
    await writeResults(single, results);
  } finally {
    await redis.stop();
    await pg.stop();
    await rm(base, { recursive: true, force: true });
  }
}

/** A fresh copy of the migrated database per scenario: a new simulator is a new "WeChat". */
async function freshDatabase(templateUrl: string, tag: string): Promise<string> {
  const admin = new URL(templateUrl);
  const template = admin.pathname.slice(1);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`CREATE DATABASE "bench_${tag}" TEMPLATE "${template}"`);
  await client.end();
  const u = new URL(templateUrl);
  u.pathname = `/bench_${tag}`;
  return u.toString();
}

async function run(templateUrl: string, redisUrl: string, sc: Scenario, tag: string): Promise<Result> {
  const dbUrl = await freshDatabase(templateUrl, tag);
  const keysDir = join(tmpdir(), 'gateway-test-keys');
  loadOrCreateSandboxKeys(keysDir); // sandboxEnv reads the files; the simulator process loads the same ones
  const sim = await startSim(keysDir, sc.inProcess);
  const port = await freePort();
  const gatewayUrl = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    ...sandboxEnv({ keysDir, simulatorUrl: sim.url, databaseUrl: dbUrl, redisUrl, port, publicBaseUrl: gatewayUrl }),
    LOG_LEVEL: 'silent',
    QUEUE_PREFIX: `bench-${tag}-${Date.now()}`,
    PROFIT_SHARING_RECEIVER_LIMIT: String(sc.limit),
    PROFIT_SHARING_RATE_PER_SECOND: String(RATE),
    PROFIT_SHARING_DELAY: '0',
    PROFIT_SHARING_POLL_MS: '20',
    PROFIT_SHARING_CONCURRENCY: String(CONCURRENCY),
    RECONCILE_INTERVAL_MS: '600000',
  });
  const logger = createLogger('silent');
  const prisma = createPrisma(dbUrl);
  const channel = createWechatPayChannel(wechatPayConfigFromAppConfig(config, (p) => readFileSync(p, 'utf8')), logger);
  const latencies: number[] = [];
  const deps: AppDeps = {
    metrics: createMetrics(),
    config, logger, prisma,
    redis: new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }),
    channel: {
      ...channel,
      createSplitOrder: async (input) => {
        const t = performance.now();
        try {
          return await channel.createSplitOrder(input);
        } finally {
          latencies.push(performance.now() - t);
        }
      },
    },
    now: () => new Date(),
  };
  await createMerchant(prisma, { id: `mch_${tag}`, name: 'Bench shop', apiKey: `${API_KEY}${tag}` }).catch(() => undefined);
  const mods = [createSplitsModule({ reconcile: false })];
  const app = createApp(deps, mods);
  const server = await new Promise<Server>((r) => {
    const s = app.listen(port, '127.0.0.1', () => r(s));
  });
  const bg = await startBackground(deps, mods);
  const api = (m: 'get' | 'post', p: string) => request(app)[m](p).set('Authorization', `Bearer ${API_KEY}${tag}`);

  try {
    // Same 30 receivers for every payment (a merchant's suppliers): receivers/add happens once each.
    const plan = Array.from({ length: RECEIVERS }, (_, i) => ({
      type: 'MERCHANT_ID', account: `bench-rcv-${i}`, name: `分账接收方 ${i} 有限公司`, amount: 10, description: '货款',
    }));
    const opened: Array<{ id: string; outTradeNo: string }> = [];
    for (let i = 0; i < sc.payments; i++) {
      const c = await api('post', '/v1/checkouts').send({ out_trade_no: `B${tag}${Date.now()}${i}`, amount: 10_000, description: 'bench', profit_sharing: { receivers: plan } });
      if (c.status !== 201) throw new Error(`create: ${c.status} ${JSON.stringify(c.body)}`);
      await request(app).get(`/checkout/${c.body.id}`).set('User-Agent', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/84.0 Safari/537.36').set('Accept', 'application/json');
      const order = await prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: c.body.id } });
      opened.push({ id: c.body.id, outTradeNo: order.outTradeNo });
    }
    const ids = opened.map((o) => o.id);
    const doneAt = new Map<string, number>();
    const t0 = Date.now();
    const cpu0 = cpuSnapshot(sim.pid);
    const paidAt = new Map<string, number>();
    // One burst: every pay call is sent at once (paidAt = when its call is sent).
    await Promise.all(
      opened.map((o) => {
        paidAt.set(o.id, Date.now());
        return sim.pay(o.outTradeNo);
      }),
    );
    const total = sc.payments * RECEIVERS;
    for (;;) {
      const rows = await prisma.splitReceiver.groupBy({ by: ['checkoutId'], where: { checkoutId: { in: ids }, state: 'SUCCESS' }, _count: true });
      const now = Date.now();
      for (const r of rows) if (r._count === RECEIVERS && !doneAt.has(r.checkoutId)) doneAt.set(r.checkoutId, now);
      if (doneAt.size === sc.payments) break;
      if (now - t0 > 600_000) throw new Error('timeout');
      await new Promise((r) => setTimeout(r, sc.payments === 1 ? 5 : 100));
    }
    const seconds = (Math.max(...doneAt.values()) - t0) / 1000;
    const cpu = cpuShare(cpu0, cpuSnapshot(sim.pid));
    const reqs = await sim.requests();
    const times = reqs.filter((r) => !r.limited).map((r) => r.at).sort((a, b) => a - b);
    let peak = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[j]! <= times[i]! - 1000) j++;
      peak = Math.max(peak, i - j + 1);
    }
    const splitRequests = reqs.filter((r) => r.kind === 'split' && !r.limited).length;
    const spans = times.slice(RATE).map((t, i) => t - times[i]!).sort((a, b) => a - b);
    const result: Result = {
      inProcess: sc.inProcess,
      limit: sc.limit,
      payments: sc.payments,
      receivers: total,
      seconds,
      receiversPerSecond: total / seconds,
      splitRequests,
      unfreezeRequests: reqs.filter((r) => r.kind === 'unfreeze').length,
      // A sliding second allows a full window at the start: N requests need at least (N / cap − 1) s.
      requestsPerSecond: times.length / ((times[times.length - 1]! - times[0]!) / 1000 + 1),
      windowRate: spans.length ? (RATE * 1000) / spans[Math.floor(spans.length / 2)]! : 0,
      peakWindow: peak,
      limited: reqs.filter((r) => r.limited).length,
      notifyToDoneMs: ids.map((id) => doneAt.get(id)! - paidAt.get(id)!),
      splitLatencyMs: percentiles(latencies),
      cpu,
    };
    log(`${tag}: ${JSON.stringify({ ...result, notifyToDoneMs: sc.payments === 1 ? result.notifyToDoneMs : undefined })}`);
    return result;
  } finally {
    await bg.stop();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await sim.close();
    await deps.redis.quit();
    await prisma.$disconnect();
  }
}

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

function percentiles(xs: number[]): [number, number] {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0);
  return [at(0.5), at(0.95)];
}

async function writeResults(single: number[], results: Result[]): Promise<void> {
  const sorted = [...single].sort((a, b) => a - b);
  const cpu = cpus()[0]?.model ?? 'unknown';
  const where = (r: Result) => (r.inProcess ? 'in-process' : 'own process');
  const row = (r: Result) =>
    `| ${where(r)} | ${r.limit} | ${r.payments} | ${r.receivers} | ${r.seconds.toFixed(1)} | **${r.receiversPerSecond.toFixed(0)}** | ${r.splitRequests} (+${r.unfreezeRequests} unfreeze) | ${r.requestsPerSecond.toFixed(1)} (${pct(r.requestsPerSecond / RATE)} of cap) | ${r.windowRate.toFixed(1)} (${pct(r.windowRate / RATE)}) | ${r.peakWindow} | ${r.limited} | ${r.splitLatencyMs[0]} / ${r.splitLatencyMs[1]} |`;
  const cpuRow = (r: Result) =>
    `| ${where(r)} | ${r.limit} | ${pct(r.cpu.gateway)} | ${r.cpu.simulator === undefined ? '(in gateway)' : pct(r.cpu.simulator)} | ${pct(r.cpu.postgres)} | ${pct(r.cpu.redis)} | ${r.cpu.machine.toFixed(2)} of ${cpus().length} |`;
  const md = `# Split settlement benchmark

\`node --import tsx bench/splits.ts\` (\`--in-process\` for the old set-up, \`--payments N\`, \`--rate N\`).

Method: the real gateway (Express, outbox loop, BullMQ split worker, PostgreSQL 18, Redis) in the bench's
Node process, against the WeChat Pay simulator in **its own Node process**
(\`node --import tsx src/simulator/main.ts\`, SIM_PORT=0, notify URL policy any-no-query, profit-sharing
result delay 0, minDelayAfterPay 0, its split rate cap = the gateway's: ${RATE} requests/s per merchant,
one split request per second per order (WeChat's rule), fee 0.6%).
Everything between the two is HTTP: signed requests and answers, RSA-OAEP receiver names, signed and
encrypted notifies. The bench pays orders with \`POST /_sim/transactions/{out_trade_no}/pay\` and reads the
simulator's own log of split/unfreeze requests with \`GET /_sim/profitsharing/requests\` (arrival time,
FREQUENCY_LIMITED or not). Gateway: PROFIT_SHARING_DELAY 0, PROFIT_SHARING_ORDER_INTERVAL_MS 1000 (default), concurrency ${CONCURRENCY}, poll 20 ms. 30 receivers
per payment, the same 30 for every payment (receivers/add runs once per receiver). A fresh simulator
and a fresh copy of the database per scenario. Against WeChat the simulator's CPU is not ours, hence
its own process; the last table row is the previous set-up (simulator inside the gateway process).

Machine: ${cpus().length} vCPU (\`nproc\`), ${cpu}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; PostgreSQL and Redis on the same machine.

## One payment, 30 receivers, limit 5 (6 requests)

Time from the payment (the pay control call sent; the simulator marks the order paid and sends
TRANSACTION.SUCCESS) to all 30 receivers SUCCESS in our database, 5 runs: median **${sorted[Math.floor(sorted.length / 2)]} ms**,
min ${sorted[0]} ms, max ${sorted[sorted.length - 1]} ms (target: about 5 s, far under the seed's 2 minutes:
WeChat takes about one split request per second for the same order — 429 RATELIMIT_EXCEED "对同笔订单分账频率过高"
otherwise — so the gateway spaces a payment's requests by PROFIT_SHARING_ORDER_INTERVAL_MS = 1000 ms from
each answer, and 6 batches need at least 5 s). This includes the outbox loop (250 ms tick), the BullMQ
hand-off, receivers/add ×30 (every run: each run is a new simulator), 6 × (split + query) and the 5 gaps.

## ${PAYMENTS} payments × 30 receivers, paid in one burst

| simulator | limit | payments | receivers | seconds | receivers/s | split requests | request rate reached | rate per window | peak in any 1 s | FREQUENCY_LIMITED | split request p50 / p95 ms |
|---|---|---|---|---|---|---|---|---|---|---|---|
${results.map(row).join('\n')}

- "request rate reached": every rate-limited request (splits and unfreezes) divided by (last − first
  + 1 s). A sliding second lets a full window go at once, so N requests need at least N / cap − 1 s:
  100 % means a full burst of ${RATE} at the first request and the cap every second after.
  That is only reachable with bursts of exactly ${RATE} every second: a perfectly even stream at
  exactly ${RATE}/s scores N / ((N − 1) / ${RATE} + 1), i.e. ${pct(PAYMENTS / ((PAYMENTS - 1) / RATE + 1) / RATE)} for ${PAYMENTS} requests and
  ${pct((PAYMENTS * 6) / ((PAYMENTS * 6 - 1) / RATE + 1) / RATE)} for ${PAYMENTS * 6}.
- "rate per window": ${RATE} × 1 s / median(time from request i to request i + ${RATE}). Under a sliding-second
  cap any ${RATE + 1} consecutive requests span more than 1 s, so it cannot exceed the cap; an even stream
  at the cap scores 100 %. It shows how close to the cap the requests run, whatever their count.
- "peak": the most requests the simulator saw in any sliding second (must never exceed ${RATE});
  FREQUENCY_LIMITED: requests it answered 429 (must be 0).

## CPU per process, from the payments to the last SUCCESS

Share of one core per wall second (100 % = one core busy). Gateway = the bench's Node process
(HTTP API, notify handling, outbox, split worker, the bench's DB polling). Simulator = its process
(/proc/<pid>/stat). PostgreSQL = every \`postgres\` process, Redis = \`redis-server\` (live at both
ends of the run). Machine = busy time of all cores (/proc/stat), out of nproc.

| simulator | limit | gateway | simulator | PostgreSQL | Redis | machine (cores busy) |
|---|---|---|---|---|---|---|
${results.map(cpuRow).join('\n')}

## Notes

- At limit 5 a payment is 6 requests (the last carries \`unfreeze_unsplit\`, so no 7th unfreeze
  request), so the ceiling is 5 × ${RATE} = ${5 * RATE} receivers/s.
- At limit 50 a 30-receiver payment is ONE request, so the ceiling is 30 × ${RATE} = ${30 * RATE}
  receivers/s: the issue's "over 1,000 at limit 50" is not reachable at ${RATE} requests/s with
  30-receiver payments (it would need ≥ 34 receivers per request). With an explicit unfreeze per
  payment instead of \`unfreeze_unsplit\` it would be half that (2 requests per payment).
- The limiter counts each request until its answer returns + 1 s (split.limiter.ts): that is what
  guarantees the channel's sliding second never sees more than the cap whatever the network does.
  It costs about (request latency / 1 s) of the cap (p50/p95 above).
- Limit 50 with ${PAYMENTS} payments is only ${PAYMENTS} requests (about ${Math.round(PAYMENTS / RATE)} s at the cap), so the "+ 1 s"
  of "request rate reached" weighs a lot: the split worker sends an even stream (payments reach it
  progressively: notify handling, the outbox hands over 20 events per 250 ms tick, ${CONCURRENCY} workers each
  doing split + query + DB writes), never the exact one-second bursts that metric credits, and the
  limiter spaces request i + ${RATE} at least 1 s after the ANSWER to request i. At limit 5 the same
  "+ 1 s" is spread over ${PAYMENTS * 6} requests.
- Moving the simulator out of the gateway process takes its CPU (RSA-OAEP decryption of 30 names
  per request, signing every answer) off the gateway's single JS thread (compare the gateway
  column with and without it) but does not move the request rate: in both set-ups the requests
  already run at the limiter's pace ("rate per window" ≈ 98 %, peak = cap, nothing limited) and
  no process is CPU-bound (machine below its cores). The gap between "request rate reached" and
  100 % at limit 50 is that metric's "+ 1 s" on 200 requests, not CPU. Split workers scale out as
  separate processes sharing the Redis limiter (not measured here).
`;
  // RESULTS.md also holds other benchmarks' sections (the checkout paths'): only this one is replaced.
  const path = resolve(__dirname, 'RESULTS.md');
  const before = await readFile(path, 'utf8').catch(() => '');
  const others = before.search(/^# (?!Split settlement benchmark)/m);
  await writeFile(path, others >= 0 ? `${md.trimEnd()}\n\n${before.slice(others)}` : md);
  log(md);
}

main().then(
  () => process.exit(0),
  (err) => {
    log(String(err?.stack ?? err));
    process.exit(1);
  },
);

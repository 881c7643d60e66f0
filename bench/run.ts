/**
 * `npm run bench`: the checkout paths measured as a merchant's load arrives, beside their limit.
 *
 *   - PostgreSQL and Redis of its own (scripts/services.ts, durable settings), in a temp dir;
 *   - the gateway as `npm start` runs it (compiled dist/, APP_MODE=production, logs on, workers on),
 *     in its own process; the WeChat Pay simulator in another; autocannon in a third (bench/load.ts);
 *   - unique requests, 20 connections: create, first page H5, first page JSAPI (payer.openid), full
 *     checkout (create + JSAPI first page), unique notify (signed as WeChat signs), duplicate notify;
 *   - each with req/s, p50/p99, CPU per request of the gateway, PostgreSQL, Redis, the simulator and
 *     the load generator (/proc/<pid>/stat before and after), the gateway's peak RSS, and p99 at half
 *     the peak rate (fixed rate);
 *   - in the same run, each scenario's limit (bench/limit.ts: bare node:http, the same RSA/AES work
 *     and the unavoidable writes on the same PostgreSQL) and the ratio;
 *   - creates and full checkouts with WEB_CONCURRENCY=2 vs 1; start-up time and RSS (idle, under the
 *     create load, with 10,000 pending split jobs) compiled and with the TypeScript loader;
 *   - a PASS/FAIL line per target of issue 11. The report is printed and written to bench/last-run.md.
 * Each scenario's limit runs just before the gateway's runs and again after them; the ratio is to the mean of the two. BENCH_SECONDS (default 6) is the length of one peak run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { SANDBOX_APPID, SANDBOX_MCHID, sandboxEnv } from '../src/config/sandbox';
import { hashApiKey } from '../src/modules/merchants/merchant.service';
import { loadOrCreateSandboxKeys } from '../src/simulator/keys';
import { freePort } from '../scripts/services';
import { startBenchServices } from './services';
import type { LoadResult, LoadSpec } from './load';
import { findPid, firstLine, runMain, stopChild as stop, treeCpuMs as cpuMs, treeRssMb } from './proc';

const ROOT = resolve(__dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
/**
 * The run at half the peak rate lasts as long as the peak: its p99 is the ~1% slowest of a few
 * hundred to a few thousand requests, and one burst of the machine's other work (every process
 * shares two cores) in a 3 s run was 2–3% of it.
 */
const HALF_SECONDS = SECONDS;
/** Profiling aids (not for the figures): BENCH_ONLY=create,notify runs only the scenarios whose key is listed, skipping the limit, the two-process runs and start-up; BENCH_CPU_PROF=<dir> starts the gateway with --cpu-prof there. */
const ONLY = process.env.BENCH_ONLY?.split(',').filter(Boolean);
/** BENCH_TAIL_TRACE=1: for each half-rate run, when its slow requests came (bench/load.ts) and the gateway's event-loop delay and GC meanwhile. */
const TAIL_TRACE = process.env.BENCH_TAIL_TRACE === '1';
/** BENCH_MARKS=1: each run's start and end on the monotonic clock, to cut a `perf record -k CLOCK_MONOTONIC` to one run. */
const MARKS = process.env.BENCH_MARKS === '1';
/** BENCH_DRAIN_TRACE=1: print the follow-up backlog and PostgreSQL's busy sessions while a run drains. */
const DRAIN_TRACE = Boolean(process.env.BENCH_DRAIN_TRACE);
const CPU_PROF = process.env.BENCH_CPU_PROF;
/** BENCH_WEB_CONCURRENCY: gateway processes of a BENCH_ONLY run (default 1). BENCH_PG_STATS=1: pg_stat_statements on; after each gateway peak run, the statements that cost PostgreSQL most (profiling, not figures). */
const PG_STATS = process.env.BENCH_PG_STATS === '1';
/** The node flags of `npm start` (package.json), so the bench runs the gateway exactly as production does; BENCH_NODE_FLAGS adds some (experiments). */
const START_FLAGS = [
  ...(JSON.parse(readFileSync(resolve(__dirname, '../package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start
    .replace(/\$\{(\w+):-([^}]*)\}/g, (_, name: string, dflt: string) => process.env[name] || dflt) // the shell's ${VAR:-default}
    .split(/\s+/).filter((a) => a.startsWith('--')),
  ...(process.env.BENCH_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? []),
];
const CONNECTIONS = 20;
/** A scenario's runs: a warm-up second, the peak, the run at half the peak rate. */
type Phase = 'warm' | 'peak' | 'half';
const BENCH_METRICS_TOKEN = 'bench-metrics-token-0123456789abcdef';
const API_KEY = 'sk_bench_merchant_key_00000001';
const MERCHANT = 'mch_bench';
const UA_SAFARI = 'Mozilla/5.0 (iPhone; CPU iPhone OS 13_2_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0.3 Mobile/15E148 Safari/604.1';
const UA_WECHAT = 'Mozilla/5.0 (iPhone; CPU iPhone OS 11_2_6 like Mac OS X) AppleWebKit/604.5.6 (KHTML, like Gecko) Mobile/15D100 MicroMessenger/6.6.5 NetType/WIFI Language/zh_CN';
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- processes

async function waitHealthy(url: string, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const t = Date.now();
  while (Date.now() - t < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}`);
    const ok = await fetch(`${url}/healthz`).then((r) => r.ok).catch(() => false);
    if (ok) return;
    await sleep(25);
  }
  throw new Error('gateway not healthy in time');
}

/** The build is what production runs: rebuilt when any source is newer than it. */
function ensureBuild(): void {
  const main = join(ROOT, 'dist/src/main.js');
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
      const p = join(dir, e.name);
      return Math.max(m, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }, 0);
  if (existsSync(main) && statSync(main).mtimeMs >= newest(join(ROOT, 'src'))) return;
  log('building dist/ (npm run build)');
  const r = spawnSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm run build failed');
}

// ---------------------------------------------------------------- the run

interface Measured { r: LoadResult; cpu: Record<string, number>; rssMb: number }
/** `limit`: the mean of `limits`, its runs just before and just after the gateway's (see the loop). */
interface Row { key: string; name: string; peak: Measured; half?: LoadResult; limit?: Measured; limits?: [Measured, Measured]; drain?: { seconds: number; gatewayCpuMsPerOp: number } }
interface Memory { startMs: number; idleMb: number; loadMb: number; pendingMb: number }

const PER_SET = 20_000;

/** Two runs of the same work as one: mean rate and CPU per operation, the larger load-generator share. */
function meanOf([a, b]: [Measured, Measured]): Measured {
  const mean = (x: number, y: number) => (x + y) / 2;
  return {
    r: { ...a.r, rate: mean(a.r.rate, b.r.rate), cpuMsPerOp: mean(a.r.cpuMsPerOp, b.r.cpuMsPerOp), cpuShare: Math.max(a.r.cpuShare, b.r.cpuShare),
      p50: Math.max(a.r.p50, b.r.p50), p99: Math.max(a.r.p99, b.r.p99), requests: a.r.requests + b.r.requests, ops: a.r.ops + b.r.ops,
      non2xx: a.r.non2xx + b.r.non2xx, errors: a.r.errors + b.r.errors, durationS: a.r.durationS + b.r.durationS },
    cpu: Object.fromEntries(Object.keys(a.cpu).map((k) => [k, mean(a.cpu[k]!, b.cpu[k] ?? a.cpu[k]!)])),
    rssMb: Math.max(a.rssMb, b.rssMb),
  };
}

async function main() {
  const t0 = Date.now();
  const loadAvg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const loadAtStart = loadAvg();
  ensureBuild();
  // Durable PostgreSQL (fsync and synchronous commit on): a payment acknowledged is on disk.
  const services = await startBenchServices('', {
    durable: true,
    pgFlags: [
      ...(PG_STATS ? ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.track_planning=on', '-c', 'pg_stat_statements.track=all'] : []),
      // BENCH_PG_FLAGS='-c name=value …': PostgreSQL settings for an experiment (e.g. its own logging).
      ...(process.env.BENCH_PG_FLAGS?.split(/\s+/).filter(Boolean) ?? []),
    ],
  });
  const { base, pg, pgDir, redis, redisPort, keysDir } = services;
  const pgPid = Number(readFileSync(join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const redisPid = findPid((c) => c.startsWith('redis-server') && c.includes(`:${redisPort}`));
  loadOrCreateSandboxKeys(keysDir);
  const db = new Client({ connectionString: pg.url });
  await db.connect();
  if (PG_STATS) await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  /** Per statement: calls, mean planning and execution ms, WAL bytes per call; the top ones by total time. */
  const pgStats = async (label: string) => {
    if (!PG_STATS) return;
    const { rows } = await db.query(`SELECT calls, round((total_plan_time / calls)::numeric, 3) AS plan_ms, round((total_exec_time / calls)::numeric, 3) AS exec_ms,
      round(wal_bytes / calls) AS wal_b, round(((total_plan_time + total_exec_time))::numeric) AS total_ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS q
      FROM pg_stat_statements WHERE calls > 0 ORDER BY total_plan_time + total_exec_time DESC LIMIT 12`);
    log(`pg_stat_statements after ${label}:\n${rows.map((r) => `  ${String(r.calls).padStart(7)} × plan ${r.plan_ms} + exec ${r.exec_ms} ms (total ${r.total_ms} ms) wal ${r.wal_b} B  ${r.q}`).join('\n')}`);
    // Row writes per table: an update that is not HOT (heap-only) rewrites every index of the row.
    const t = await db.query(`SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables
      WHERE n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY n_tup_ins + n_tup_upd DESC LIMIT 12`);
    log(`table writes (inserted, updated of which HOT, deleted):\n${t.rows.map((r) => `  ${r.relname.padEnd(24)} ${r.n_tup_ins} ins, ${r.n_tup_upd} upd (${r.n_tup_hot_upd} HOT), ${r.n_tup_del} del`).join('\n')}`);
    await db.query('SELECT pg_stat_statements_reset(), pg_stat_reset()');
  };
  /**
   * BENCH_PG_WAITS=1: what the busy sessions of PostgreSQL wait on during each gateway peak run
   * (pg_stat_activity sampled every 5 ms on a connection of its own; profiling, not figures).
   */
  const pgWaits = () => {
    if (process.env.BENCH_PG_WAITS !== '1') return { report: async (_label: string) => undefined };
    const counts = new Map<string, number>();
    let samples = 0;
    let on = true;
    const probe = new Client({ connectionString: pg.url });
    const done = (async () => {
      await probe.connect();
      while (on) {
        const { rows } = await probe.query(`SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w FROM pg_stat_activity
          WHERE backend_type = 'client backend' AND state NOT IN ('idle') AND pid <> pg_backend_pid()`);
        samples++;
        for (const r of rows) counts.set(r.w, (counts.get(r.w) ?? 0) + 1);
        await sleep(5);
      }
      await probe.end();
    })();
    return {
      report: async (label: string) => {
        on = false;
        await done;
        log(`PostgreSQL busy sessions during ${label} (${samples} samples, mean per sample): ${[...counts].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([w, n]) => `${w} ${(n / samples).toFixed(2)}`).join(', ')}`);
      },
    };
  };
  await db.query(`INSERT INTO merchants (id, name) VALUES ($1, 'Bench')`, [MERCHANT]);
  // Keys live in merchant_api_keys (only their SHA-256), as `npm run admin -- key create` writes them.
  await db.query(`INSERT INTO merchant_api_keys (id, merchant_id, prefix, key_hash) VALUES ('key_bench', $1, $2, $3)`, [MERCHANT, API_KEY.slice(0, 12), hashApiKey(API_KEY)]);

  const children: ChildProcess[] = [];
  const node = (args: string[], env: Record<string, string>, logFile?: string) => {
    const out = logFile ? openSync(join(base, logFile), 'a') : 'ignore';
    const c = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', logFile ? out : 'pipe', logFile ? out : 'inherit'] });
    children.push(c);
    return c;
  };
  const cleanup = async () => {
    await Promise.all(children.map(stop));
    await db.end().catch(() => undefined);
    await services.stop();
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

  try {
    // The simulator compiled too (ensureBuild built it with the gateway): WeChat's side shares the two cores.
    // BENCH_SIM_FLAGS: node flags for the simulator (profiling it, e.g. '--cpu-prof --cpu-prof-dir=/tmp/sim').
    const sim = node([...(process.env.BENCH_SIM_FLAGS?.split(/\s+/).filter(Boolean) ?? []), 'dist/src/simulator/main.js'], { SIM_PORT: '0', SIM_KEYS_DIR: keysDir, SIM_H5_DOMAINS: '127.0.0.1' });
    const simUrl = /(http:\/\/\S+)/.exec(await firstLine(sim, /simulator on/))![1]!;
    const simPid = sim.pid!;

    const startGw = async (concurrency: number, how: 'dist' | 'tsx') => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const env = {
        ...sandboxEnv({ keysDir, simulatorUrl: simUrl, databaseUrl: pg.url, redisUrl: redis.url, port, publicBaseUrl: url }),
        APP_MODE: 'production', NODE_ENV: 'production', LOG_LEVEL: 'info', WEB_CONCURRENCY: String(concurrency), QUEUE_PREFIX: 'bench', METRICS_TOKEN: BENCH_METRICS_TOKEN,
        // Profiling aid: BENCH_GATEWAY_ENV='RUN_WORKERS=false …' (space-separated) overrides the gateway's environment.
        ...Object.fromEntries((process.env.BENCH_GATEWAY_ENV ?? '').split(/\s+/).filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
      } as Record<string, string>;
      const t = performance.now();
      const prof = CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : [];
      const gw = node([...prof, ...START_FLAGS, ...(how === 'dist' ? ['dist/src/main.js'] : ['--import', 'tsx', 'src/main.ts'])], env, `gateway-${how}-${concurrency}.log`);
      await waitHealthy(url, gw);
      const startMs = performance.now() - t;
      await sleep(1000);
      return { gw, url, startMs, idleMb: treeRssMb(gw.pid!) };
    };

    let runNo = 0;
    /** One autocannon run in its own process; CPU of `pids` (process trees) per completed operation. */
    const load = async (spec: Omit<LoadSpec, 'connections' | 'runTag' | 'target'> & { target?: LoadSpec['target'] }, pids: Record<string, number>): Promise<Measured> => {
      const child = node(['--import', 'tsx', 'bench/load.ts', JSON.stringify({ target: 'gateway', ...spec, connections: CONNECTIONS, runTag: String(++runNo).padStart(3, '0') + String(Date.now() % 1e6) })], TAIL_TRACE ? { BENCH_TAIL_TRACE: '1' } : {});
      const it = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.value !== 'READY') throw new Error(`load: ${first.value}`);
      const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuMs(p)]));
      const startedS = Number(process.hrtime.bigint()) / 1e9;
      let rss = 0;
      const measured = pids.gateway ?? pids.limit!;
      const sampler = setInterval(() => (rss = Math.max(rss, treeRssMb(measured))), 250);
      const last = await it.next();
      clearInterval(sampler);
      const after = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuMs(p)]));
      // On CLOCK_MONOTONIC, for `perf record -k CLOCK_MONOTONIC` then `perf report --time start,end`.
      if (MARKS) log(`mark ${spec.target ?? 'gateway'} ${spec.scenario} ${spec.rate ? `at ${spec.rate}/s` : 'peak'} ${startedS.toFixed(3)},${(Number(process.hrtime.bigint()) / 1e9).toFixed(3)}`);
      const r = JSON.parse(String(last.value)) as LoadResult;
      const ops = Math.max(1, r.ops);
      const cpu = Object.fromEntries(Object.keys(pids).map((k) => [k, (after[k]! - before[k]!) / ops]));
      cpu.load = r.cpuMsPerOp;
      if (r.non2xx || r.errors) log(`${spec.target ?? 'gateway'} ${spec.scenario}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      if (spec.durationS >= 3 && r.durationS < spec.durationS * 0.95) log(`${spec.target ?? 'gateway'} ${spec.scenario}: ran out of unique items after ${r.durationS.toFixed(1)} of ${spec.durationS} s`);
      return { r, cpu, rssMb: rss };
    };

    /** Idle RSS is taken at start; then the create load's peak RSS and the RSS with 10,000 pending split jobs. */
    const memory = async (g: { gw: ChildProcess; url: string; startMs: number; idleMb: number }, loadMb?: number): Promise<Memory> => {
      if (loadMb === undefined) {
        await load({ url: g.url, scenario: 'create', durationS: 2, apiKey: API_KEY }, { gateway: g.gw.pid! });
        loadMb = (await load({ url: g.url, scenario: 'create', durationS: Math.max(3, SECONDS / 2), apiKey: API_KEY }, { gateway: g.gw.pid! })).rssMb;
      }
      const q = new Queue('splits', { connection: { url: redis.url }, prefix: '{bench}' });
      for (let i = 0; i < 10; i++)
        await q.addBulk(Array.from({ length: 1000 }, (_, j) => ({ name: 'drive', data: { checkoutId: `co_pending${i}_${j}` }, opts: { jobId: `pay_pend_${i}_${j}`, delay: 3_600_000 } })));
      if ((await q.getDelayedCount()) !== 10_000) throw new Error('pending split jobs not queued');
      await sleep(3000);
      const pendingMb = treeRssMb(g.gw.pid!);
      await q.obliterate({ force: true });
      await q.close();
      return { startMs: g.startMs, idleMb: g.idleMb, loadMb, pendingMb };
    };

    // Start-up and memory with the TypeScript loader (one process), then the compiled build that the scenarios use.
    let tsxMemory: Memory | undefined;
    if (!ONLY) {
      const tsx = await startGw(1, 'tsx');
      tsxMemory = await memory(tsx);
      await stop(tsx.gw);
    }
    const one = await startGw(ONLY ? Number(process.env.BENCH_WEB_CONCURRENCY ?? 1) : 1, 'dist');
    let gw = one.gw;
    const url = one.url;

    // Unique data for the page and notify runs: open checkouts (and channel orders) inserted directly.
    const seedCheckouts = async (letter: string, o: { openid?: boolean; orders?: boolean; outTradePrefix?: string; count?: number } = {}) => {
      await db.query(
        `INSERT INTO checkouts (id, merchant_id, out_trade_no, amount_fen, description, payer_openid, expires_at, updated_at)
         SELECT 'co_${letter}' || lpad(g::text, 19, '0'), $1, $2 || g, 100, 'bench', $3, now() + interval '3 hours', now()
         FROM generate_series(0, $4 - 1) g`,
        [MERCHANT, o.outTradePrefix ?? `seed_${letter}_`, o.openid ? 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' : null, o.count ?? PER_SET],
      );
      if (o.orders)
        await db.query(
          `INSERT INTO channel_orders (id, checkout_id, channel, trade_type, out_trade_no, payer_key, appid, mchid, updated_at)
           SELECT 'chor_${letter}' || g, 'co_${letter}' || lpad(g::text, 19, '0'), 'wechatpay', 'NATIVE', 'ot_${letter}_' || g, '', $1, $2, now()
           FROM generate_series(0, $3 - 1) g`,
          [SANDBOX_APPID, SANDBOX_MCHID, o.count ?? PER_SET],
        );
    };
    // h, j: gateway pages (H5, JSAPI); n, d: gateway notifies (unique, duplicate); p, q: limit pages; l, m: limit notifies.
    await seedCheckouts('h');
    await seedCheckouts('j', { openid: true });
    await seedCheckouts('n', { orders: true });
    await seedCheckouts('d', { orders: true });
    // The limit runs twice per scenario (before and after the gateway's runs): two sets' worth each.
    await seedCheckouts('p', { count: 2 * PER_SET });
    await seedCheckouts('q', { openid: true, count: 2 * PER_SET });
    await seedCheckouts('l', { outTradePrefix: 'lim', count: 2 * PER_SET });
    await seedCheckouts('m', { outTradePrefix: 'limd', count: 2 * PER_SET });
    await db.query('VACUUM ANALYZE');
    // The seeding's WAL written out now, not by a checkpoint during the first scenarios.
    await db.query('CHECKPOINT');
    const used: Record<string, number> = {};
    const setSize = (letter: string) => ('pqlm'.includes(letter) ? 2 * PER_SET : PER_SET);
    const dataSpec = (letter: string, count: number) => {
      const from = used[letter] ?? 0;
      const n = Math.min(count, setSize(letter) - from);
      if (n <= 0) throw new Error(`seed set ${letter} exhausted`);
      used[letter] = from + n;
      return { idLetter: letter, from, count: n };
    };
    const notifyData = (letter: string, count: number, outTradePrefix = `ot_${letter}_`) => ({
      ...dataSpec(letter, count), outTradePrefix, amountFen: 100, mchid: SANDBOX_MCHID, appid: SANDBOX_APPID, keysDir,
    });
    const gwPids = () => ({ gateway: gw.pid!, postgres: pgPid, redis: redisPid, simulator: simPid });

    // Warm-up (JIT, pools): not reported.
    await load({ url, scenario: 'create', durationS: 2, apiKey: API_KEY }, gwPids());

    type Spec = Omit<LoadSpec, 'connections' | 'runTag' | 'target'>;
    /**
     * Page and notify runs take unique items from the seeded sets; a gateway peak may use up to 1,900/s.
     * Each limit run has a set of its own (PER_SET items: 3,333/s for 6 s): its H5 page and notify
     * reach 1,900–2,400/s, and a run that ran out repeated its last item for up to 50 ms (duplicate
     * orders the limit answered 500, duplicate notifies it answered cheaply).
     */
    const budget = (phase: Phase, rate?: number) => Math.ceil(phase === 'warm' ? 1900 : phase === 'peak' ? SECONDS * 1900 : (rate ?? 0) * HALF_SECONDS * 1.2 + 100);
    const dup = notifyData('d', 1);
    const limitDup = notifyData('m', 1, 'limd');
    type ScenarioDef = { key: string; name: string; gateway: (phase: Phase, rate?: number) => Spec; limit: () => Spec; before?: () => Promise<unknown> };
    const all: ScenarioDef[] = [
      { key: 'create', name: 'create `POST /v1/checkouts`', gateway: () => ({ url, scenario: 'create', durationS: SECONDS, apiKey: API_KEY }), limit: () => ({ url: '', scenario: 'create', durationS: SECONDS }) },
      { key: 'h5', name: 'first page H5 `GET /checkout/{id}`',
        gateway: (p, rate) => ({ url, scenario: 'page', durationS: SECONDS, userAgent: UA_SAFARI, ...dataSpec('h', budget(p, rate)) }),
        limit: () => ({ url: '', scenario: 'page', pageKind: 'h5', durationS: SECONDS, userAgent: UA_SAFARI, ...dataSpec('p', PER_SET) }) },
      { key: 'jsapi', name: 'first page JSAPI (payer.openid)',
        gateway: (p, rate) => ({ url, scenario: 'page', durationS: SECONDS, userAgent: UA_WECHAT, ...dataSpec('j', budget(p, rate)) }),
        limit: () => ({ url: '', scenario: 'page', pageKind: 'jsapi', durationS: SECONDS, userAgent: UA_WECHAT, ...dataSpec('q', PER_SET) }) },
      { key: 'full', name: 'full checkout (create + JSAPI page)', gateway: () => ({ url, scenario: 'full', durationS: SECONDS, apiKey: API_KEY }), limit: () => ({ url: '', scenario: 'full', durationS: SECONDS }) },
      { key: 'notify', name: 'notify, unique, applied',
        gateway: (p, rate) => ({ url, scenario: 'notify', durationS: SECONDS, ...notifyData('n', budget(p, rate)) }),
        limit: () => ({ url: '', scenario: 'notify', durationS: SECONDS, ...notifyData('l', PER_SET, 'lim') }) },
      // The duplicate: one notify applied once, then replayed (WeChat's retries are exactly that).
      { key: 'dup', name: 'notify, duplicate',
        before: () => load({ url, scenario: 'notify', durationS: 1, ...dup }, gwPids()),
        gateway: () => ({ url, scenario: 'notify-dup', durationS: SECONDS, ...dup }), limit: () => ({ url: '', scenario: 'notify-dup', durationS: SECONDS, ...limitDup }) },
    ];
    const scenarios = all.filter((s) => !ONLY || ONLY.includes(s.key));

    // Each scenario's limit runs just before the gateway's runs and just after them (same PostgreSQL;
    // the limit process idles meanwhile, and the gateway during the limit's), and the ratio is to the
    // mean of the two: this VM's speed drifts by a third within minutes (the host's load shows as our
    // CPU time), and a limit measured on one side only took the drift into the ratio whole.
    const limit = ONLY ? undefined : node(['--import', 'tsx', 'bench/limit.ts'], { DATABASE_URL: pg.url, KEYS_DIR: keysDir, MERCHANT_ID: MERCHANT });
    const limitUrl = limit ? (await firstLine(limit, /^http/)).trim() : '';
    const limitPids = { limit: limit?.pid ?? 0, postgres: pgPid };
    if (limit) {
      await load({ url: limitUrl, target: 'limit', scenario: 'create', durationS: 2 }, limitPids);
      await load({ url: limitUrl, target: 'limit', scenario: 'notify', durationS: 1, ...limitDup }, limitPids); // applies it once
    }

    /**
     * Waits (at most a minute) until the gateway has done the follow-up work of a run — outbox events
     * handled, merchant events rendered — so that its limit runs on a quiet machine, and tells how long
     * that took and the gateway's CPU for it per operation of the run (work its req/s leaves out).
     */
    const drained = async (ops: number) => {
      const t = performance.now();
      const cpu0 = cpuMs(gw.pid!);
      for (;;) {
        // The backlog; with BENCH_DRAIN_TRACE also what PostgreSQL's busy sessions are doing (only then).
        const { rows: [r] } = await db.query(`SELECT (SELECT count(*) FROM outbox_events WHERE processed_at IS NULL) AS outbox,
          (SELECT count(*) FROM merchant_events WHERE rendered_at IS NULL) AS unrendered` + (DRAIN_TRACE ? `,
          (SELECT min(available_at)::text FROM outbox_events WHERE processed_at IS NULL) AS "outboxNextAt", now()::text AS now,
          (SELECT string_agg(coalesce(wait_event, '-') || ':' || state || ':' || left(query, 60), ' | ') FROM pg_stat_activity
            WHERE state <> 'idle' AND pid <> pg_backend_pid() AND backend_type = 'client backend') AS busy` : ''));
        if (DRAIN_TRACE) log(`drain ${((performance.now() - t) / 1000).toFixed(1)} s: ${JSON.stringify(r)}`);
        if (Number(r.outbox) + Number(r.unrendered) === 0 || performance.now() - t > 60_000) break;
        await sleep(200);
      }
      return { seconds: (performance.now() - t) / 1000, gatewayCpuMsPerOp: (cpuMs(gw.pid!) - cpu0) / Math.max(1, ops) };
    };

    /** The gateway's /metrics text. */
    const metricsText = () => fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${BENCH_METRICS_TOKEN}` } }).then((r) => r.text());
    /** The gateway's event-loop delay since the last scrape (prom-client resets it) and its GC totals by kind. */
    const gatewayRuntime = async () => {
      const text = await metricsText();
      const num = (name: string) => Number(new RegExp(`^gateway_${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000;
      const gc: Record<string, { count: number; sum: number }> = {};
      for (const m of text.matchAll(/^gateway_nodejs_gc_duration_seconds_(sum|count)\{kind="(\w+)"\} (\S+)$/gm)) {
        const e = (gc[m[2]!] ??= { count: 0, sum: 0 });
        if (m[1] === 'sum') e.sum = Number(m[3]) * 1000;
        else e.count = Number(m[3]);
      }
      return { lagMaxMs: num('nodejs_eventloop_lag_max_seconds'), lagP99Ms: num('nodejs_eventloop_lag_p99_seconds'), gc };
    };

    /** Peak run, then the same scenario at half the peak rate, its follow-up work drained, then its limit. */
    const rows: Row[] = [];
    const limitRun = (sc: ScenarioDef) => (limit ? load({ ...sc.limit(), url: limitUrl, target: 'limit' }, limitPids) : undefined);
    for (const sc of scenarios) {
      const limBefore = await limitRun(sc);
      await sc.before?.();
      // A second of the same requests first (not reported): a deployed gateway runs warm, and the
      // first scenario of a kind would otherwise pay V8's compilation of its path.
      await load({ ...sc.gateway('warm'), durationS: 1 }, gwPids());
      await pgStats(`before ${sc.key}`);
      const waits = pgWaits();
      const peak = await load(sc.gateway('peak'), gwPids());
      await waits.report(sc.key);
      await pgStats(sc.key);
      const gcBefore = TAIL_TRACE ? await gatewayRuntime() : undefined;
      const half = await load({ ...sc.gateway('half', peak.r.rate / 2), durationS: HALF_SECONDS, rate: peak.r.rate / 2 }, gwPids());
      if (gcBefore) {
        const after = await gatewayRuntime();
        log(`${sc.key} at half rate, the gateway's runtime: event-loop delay max ${after.lagMaxMs.toFixed(1)} ms, p99 ${after.lagP99Ms.toFixed(1)} ms; GC ${Object.entries(after.gc).map(([k, v]) => `${k} ${v.count - (gcBefore.gc[k]?.count ?? 0)}× ${(v.sum - (gcBefore.gc[k]?.sum ?? 0)).toFixed(0)} ms`).join(', ')}`);
      }
      const drain = await drained(peak.r.ops + half.r.ops);
      const limAfter = await limitRun(sc);
      const limits = limBefore && limAfter ? ([limBefore, limAfter] as [Measured, Measured]) : undefined;
      const lim = limits && meanOf(limits);
      rows.push({ key: sc.key, name: sc.name, peak, half: half.r, limit: lim, limits, drain });
      log(`${sc.name}: ${peak.r.rate.toFixed(0)}/s p50 ${peak.r.p50} p99 ${peak.r.p99} ms, gateway ${peak.cpu.gateway!.toFixed(2)} CPU ms/req; at ${(peak.r.rate / 2).toFixed(0)}/s p99 ${half.r.p99} ms` +
        `; follow-ups drained in ${drain.seconds.toFixed(1)} s (${drain.gatewayCpuMsPerOp.toFixed(2)} gateway CPU ms/op)` +
        (lim ? `; limit ${lim.r.rate.toFixed(0)}/s (before ${limits![0].r.rate.toFixed(0)}, after ${limits![1].r.rate.toFixed(0)}), ${lim.cpu.limit!.toFixed(2)} CPU ms/op` : ''));
    }
    if (limit) await stop(limit);

    // Memory of the compiled build: idle after the runs, then with 10,000 pending split jobs.
    await sleep(1500);
    const distMemory = ONLY ? undefined : await memory({ ...one, gw }, rows.find((r) => r.key === 'create')?.peak.rssMb ?? 0);
    const idleAfterMb = treeRssMb(gw.pid!);
    // One process again, just before the two-process runs: the factor compares runs minutes apart at most.
    if (ONLY) {
      // Where the time of a request goes, from the gateway's own histograms: mean seconds per route and per channel call.
      const text = await metricsText();
      const sums = new Map<string, { sum?: number; count?: number }>();
      for (const m of text.matchAll(/^(gateway_(?:http_request|channel_call)_duration_seconds)_(sum|count)\{([^}]*)\} (\S+)$/gm)) {
        const e = sums.get(`${m[1]} ${m[3]}`) ?? {};
        e[m[2] as 'sum' | 'count'] = Number(m[4]);
        sums.set(`${m[1]} ${m[3]}`, e);
      }
      log(`memory (gateway's metrics): ${[...text.matchAll(/^gateway_(process_resident_memory_bytes|nodejs_heap_size_total_bytes|nodejs_heap_size_used_bytes|nodejs_external_memory_bytes)\S* (\S+)$/gm)].map((m) => `${m[1]} ${(Number(m[2]) / 2 ** 20).toFixed(0)} MB`).join(', ')}`);
      log(`mean latency (gateway's histograms):\n${[...sums].filter(([, e]) => e.count).map(([k, e]) => `  ${((e.sum! / e.count!) * 1000).toFixed(1)} ms × ${e.count}  ${k}`).join('\n')}`);
    }
    const create1 = ONLY ? undefined : await load({ url, scenario: 'create', durationS: SECONDS, apiKey: API_KEY }, gwPids());
    const full1 = ONLY ? undefined : await load({ url, scenario: 'full', durationS: SECONDS, apiKey: API_KEY }, gwPids());
    await stop(gw);
    if (ONLY) {
      process.stdout.write(`${rows.map((r) => `${r.key}: ${r.peak.r.rate.toFixed(0)}/s, gateway ${r.peak.cpu.gateway!.toFixed(2)} CPU ms/req, RSS ${r.peak.rssMb.toFixed(0)} MB`).join('\n')}\n`);
      return;
    }

    // Both cores: creates and full checkouts with two gateway processes.
    const two = await startGw(2, 'dist');
    gw = two.gw;
    await load({ url: two.url, scenario: 'create', durationS: 2, apiKey: API_KEY }, gwPids());
    const create2 = await load({ url: two.url, scenario: 'create', durationS: SECONDS, apiKey: API_KEY }, gwPids());
    const full2 = await load({ url: two.url, scenario: 'full', durationS: SECONDS, apiKey: API_KEY }, gwPids());
    await stop(gw);

    writeReport({ rows, create1: create1!, full1: full1!, create2, full2, tsxMemory: tsxMemory!, distMemory: distMemory!, idleAfterMb, loadAtStart, loadAtEnd: loadAvg(), seconds: (Date.now() - t0) / 1000 });
  } finally {
    await cleanup();
  }
}

// ---------------------------------------------------------------- the report

const TARGET = { ratio: 0.4, createsBothCores: 1000, scaling: 1.6, halfRateP99Ms: 50, rssMb: 200 };

function writeReport(a: { rows: Row[]; create1: Measured; full1: Measured; create2: Measured; full2: Measured; tsxMemory: Memory; distMemory: Memory; idleAfterMb: number; loadAtStart: string; loadAtEnd: string; seconds: number }): void {
  const f = (n: number | undefined, d = 0) => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(d));
  const row = (key: string) => a.rows.find((r) => r.key === key)!;
  const ratio = (r: Row) => r.peak.r.rate / (r.limit?.r.rate ?? NaN);
  const out: string[] = [];
  out.push(`## npm run bench — ${new Date().toISOString()}`);
  out.push('');
  out.push(`Machine: ${cpus()[0]?.model} × ${availableParallelism()} cores, Node ${process.version}, PostgreSQL and Redis on the same machine; ${SECONDS} s per peak run, ${CONNECTIONS} connections, unique requests; load average ${a.loadAtStart} at the start, ${a.loadAtEnd} at the end (other processes on the machine).`);
  out.push('');
  out.push('### One gateway process (`WEB_CONCURRENCY=1`, compiled, production configuration) and its limit, same run');
  out.push('');
  out.push('CPU columns: CPU time (user + system) per completed request of each process tree during the peak run; "load gen." is autocannon\'s own process. Half-rate runs are paced evenly (bench/load.ts). "Follow-ups": after the half-rate run, the time until the gateway had handled every outbox event and rendered every merchant event the runs made, and its CPU for that per operation (not in the req/s). The limit runs just before the gateway\'s runs and again after their follow-ups, and the ratio is to the mean of the two (the machine\'s speed drifts within minutes). The limit is `bench/limit.ts` (bare `node:http`, only the unavoidable RSA/AES work and durable writes, same PostgreSQL).');
  out.push('');
  out.push('| scenario | req/s | p50 ms | p99 ms | p99 ms at half the peak rate | CPU ms/req: gateway | PostgreSQL | Redis | simulator | load gen. | gateway RSS MB (peak) | follow-ups after the runs: s, gateway CPU ms/op | limit req/s: mean (before / after) | limit CPU ms/op (limit, PostgreSQL) | ratio to limit |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of a.rows)
    out.push(`| ${r.name} | ${f(r.peak.r.rate)} | ${r.peak.r.p50} | ${r.peak.r.p99} | ${r.half?.p99} (at ${f(r.peak.r.rate / 2)}/s) | ${f(r.peak.cpu.gateway, 2)} | ${f(r.peak.cpu.postgres, 2)} | ${f(r.peak.cpu.redis, 3)} | ${f(r.peak.cpu.simulator, 2)} | ${f(r.peak.cpu.load, 2)} | ${f(r.peak.rssMb)} | ${f(r.drain?.seconds, 1)}, ${f(r.drain?.gatewayCpuMsPerOp, 2)} | ${f(r.limit?.r.rate)}${r.limits ? ` (${f(r.limits[0].r.rate)} / ${f(r.limits[1].r.rate)})` : ''} | ${f(r.limit?.cpu.limit, 2)}, ${f(r.limit?.cpu.postgres, 2)} | **${f(100 * ratio(r))}%** |`);
  out.push('');
  const full1 = row('full');
  out.push('### Both cores (`WEB_CONCURRENCY=2`)');
  out.push('');
  out.push('Each two-process run follows a one-process run of the same scenario (not the table above), so the factor compares runs a minute apart.');
  out.push('');
  out.push('| scenario | 1 process req/s | 2 processes req/s | × one | p50 / p99 ms | gateway CPU ms/req (all processes) | RSS MB (primary + 2 workers) |');
  out.push('|---|---|---|---|---|---|---|');
  out.push(`| create | ${f(a.create1.r.rate)} | ${f(a.create2.r.rate)} | ${f(a.create2.r.rate / a.create1.r.rate, 2)}× | ${a.create2.r.p50} / ${a.create2.r.p99} | ${f(a.create2.cpu.gateway, 2)} | ${f(a.create2.rssMb)} |`);
  out.push(`| full checkout | ${f(a.full1.r.rate)} | ${f(a.full2.r.rate)} | ${f(a.full2.r.rate / a.full1.r.rate, 2)}× | ${a.full2.r.p50} / ${a.full2.r.p99} | ${f(a.full2.cpu.gateway, 2)} | ${f(a.full2.rssMb)} |`);
  out.push('');
  out.push('### Start-up and memory (one gateway process; the simulator is another process, not counted)');
  out.push('');
  out.push('| build | start-up to first /healthz 200 | RSS idle MB | RSS under the create load MB (peak) | RSS with 10,000 pending split jobs MB |');
  out.push('|---|---|---|---|---|');
  out.push(`| compiled (\`npm run build\`, \`npm start\`) | ${f(a.distMemory.startMs)} ms | ${f(a.distMemory.idleMb)} (${f(a.idleAfterMb)} after all runs) | ${f(a.distMemory.loadMb)} | ${f(a.distMemory.pendingMb)} |`);
  out.push(`| TypeScript loader (\`node --import tsx src/main.ts\`) | ${f(a.tsxMemory.startMs)} ms | ${f(a.tsxMemory.idleMb)} | ${f(a.tsxMemory.loadMb)} | ${f(a.tsxMemory.pendingMb)} |`);
  out.push('');
  const verdict = (ok: boolean) => (ok ? '**PASS**' : '**FAIL**');
  const slow = a.rows.filter((r) => (r.half?.p99 ?? Infinity) >= TARGET.halfRateP99Ms);
  const rssMax = Math.max(...a.rows.map((r) => r.peak.rssMb), a.distMemory.loadMb);
  const loadGenMax = Math.max(...a.rows.map((r) => r.peak.r.cpuShare), a.create2.r.cpuShare, a.full2.r.cpuShare, ...a.rows.map((r) => r.limit?.r.cpuShare ?? 0));
  out.push('### Targets (issue 11)');
  out.push('');
  out.push(`- ${verdict(ratio(full1) >= TARGET.ratio)} full checkout ≥ 40% of its limit, one process: ${f(100 * ratio(full1))}% (${f(full1.peak.r.rate)}/s vs ${f(full1.limit?.r.rate)}/s)`);
  out.push(`- ${verdict(ratio(row('notify')) >= TARGET.ratio)} unique notify ≥ 40% of its limit, one process: ${f(100 * ratio(row('notify')))}% (${f(row('notify').peak.r.rate)}/s vs ${f(row('notify').limit?.r.rate)}/s)`);
  out.push(`- ${verdict(a.create2.r.rate >= TARGET.createsBothCores)} creates ≥ 1,000 req/s with both cores: ${f(a.create2.r.rate)}/s`);
  out.push(`- ${verdict(a.create2.r.rate / a.create1.r.rate >= TARGET.scaling)} two processes ≥ 1.6× one (creates): ${f(a.create2.r.rate / a.create1.r.rate, 2)}× (full checkout ${f(a.full2.r.rate / a.full1.r.rate, 2)}×)`);
  out.push(`- ${verdict(slow.length === 0)} p99 < 50 ms at half the peak rate, every scenario: ${slow.length ? `over in ${slow.map((r) => `${r.key} ${r.half?.p99} ms`).join(', ')}` : `worst ${Math.max(...a.rows.map((r) => r.half?.p99 ?? 0))} ms`}`);
  out.push(`- ${verdict(rssMax < TARGET.rssMb)} RSS < 200 MB under load (one process): peak ${f(rssMax)} MB`);
  out.push(`- load generator: at most ${f(100 * loadGenMax)}% of one core in any run${loadGenMax >= 0.9 ? ' — **saturated: the figures of that run are bounded by autocannon, not the server**' : ' (not the bottleneck)'}`);
  out.push('');
  out.push(`Whole bench: ${f(a.seconds)} s.`);
  const text = `${out.join('\n')}\n`;
  writeFileSync(join(ROOT, 'bench/last-run.md'), text);
  process.stdout.write(`\n${text}`);
}

runMain(main);

/**
 * `npm run bench`: the checkout paths measured as a merchant's load arrives, beside their limit.
 *
 *   - PostgreSQL and Redis of its own (scripts/services.ts, durable settings), in a temp dir;
 *   - the gateway as `npm start` runs it (compiled dist/, APP_MODE=production, logs on, workers on),
 *     in its own process; the WeChat Pay simulator in another; autocannon in a third (bench/load.ts);
 *   - unique requests, 20 connections: create, first page H5, first page JSAPI (payer.openid), full
 *     checkout (create + JSAPI first page), unique notify (signed as WeChat signs), duplicate notify;
 *   - each with req/s, p50/p99, CPU per request of the gateway, PostgreSQL and Redis (/proc/<pid>/stat
 *     before and after), the gateway's peak RSS, and p99 at half the peak rate (fixed rate);
 *   - in the same run, the limit (bench/limit.ts: bare node:http, the same RSA/AES work and the
 *     unavoidable writes on the same PostgreSQL) and the ratio;
 *   - creates with WEB_CONCURRENCY=2 vs 1; start-up time and RSS compiled vs tsx; RSS with 10,000
 *     pending split jobs.
 * BENCH_SECONDS (default 6) is the length of one peak run; the whole bench takes about 3–4 minutes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { SANDBOX_APPID, SANDBOX_MCHID, sandboxEnv } from '../src/config/sandbox';
import { applyMigrations } from '../src/lib/migrations';
import { hashApiKey } from '../src/modules/merchants/merchant.service';
import { loadOrCreateSandboxKeys } from '../src/simulator/keys';
import { freePort, startEmbeddedPostgres, startRedis } from '../scripts/services';
import type { LoadResult, LoadSpec } from './load';

const ROOT = resolve(__dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
/** Profiling aids (not for the figures): BENCH_ONLY=create,notify runs only the scenarios whose key is listed, skipping the limit, the two-process runs and start-up; BENCH_CPU_PROF=<dir> starts the gateway with --cpu-prof there. */
const ONLY = process.env.BENCH_ONLY?.split(',').filter(Boolean);
const CPU_PROF = process.env.BENCH_CPU_PROF;
const CONNECTIONS = 20;
const API_KEY = 'sk_bench_merchant_key_00000001';
const MERCHANT = 'mch_bench';
const TICK_MS = 1000 / 100; // USER_HZ: /proc stat times are in 1/100 s on Linux
const UA_SAFARI = 'Mozilla/5.0 (iPhone; CPU iPhone OS 13_2_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0.3 Mobile/15E148 Safari/604.1';
const UA_WECHAT = 'Mozilla/5.0 (iPhone; CPU iPhone OS 11_2_6 like Mac OS X) AppleWebKit/604.5.6 (KHTML, like Gecko) Mobile/15D100 MicroMessenger/6.6.5 NetType/WIFI Language/zh_CN';
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- /proc accounting

function stat(pid: number): { ppid: number; cpuTicks: number; childTicks: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after "(comm) ": state ppid ... utime(14th overall = f[11]) stime cutime cstime
    return { ppid: Number(f[1]), cpuTicks: Number(f[11]) + Number(f[12]), childTicks: Number(f[13]) + Number(f[14]) };
  } catch {
    return null;
  }
}

function rssKb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** The process and its descendants (cluster workers, postgres backends). */
function tree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = stat(Number(d));
    if (s) (children.get(s.ppid) ?? children.set(s.ppid, []).get(s.ppid)!).push(Number(d));
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]!) ?? []));
  return out;
}

/** CPU ms of a process tree, counting exited children that were reaped (cutime). */
const cpuMs = (root: number) =>
  tree(root).reduce((sum, pid, i) => {
    const s = stat(pid);
    return sum + (s ? s.cpuTicks + (i === 0 ? s.childTicks : 0) : 0) * TICK_MS;
  }, 0);
const treeRssMb = (root: number) => tree(root).reduce((s, p) => s + rssKb(p), 0) / 1024;

function findPid(match: (cmd: string) => boolean): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (match(readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' '))) return Number(d);
    } catch {
      /* gone */
    }
  }
  throw new Error('process not found');
}

// ---------------------------------------------------------------- processes

function firstLine(child: ChildProcess, pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolveLine, reject) => {
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms`)), timeoutMs);
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      if (pattern.test(l)) {
        clearTimeout(timer);
        rl.close();
        child.stdout!.resume();
        resolveLine(l);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before ${pattern}`)));
  });
}

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

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    child.once('exit', () => r());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });
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

interface Row { name: string; peak: LoadResult; half?: LoadResult; cpu: Record<string, number>; rssMb: number }

async function main() {
  const t0 = Date.now();
  ensureBuild();
  const base = mkdtempSync(join(tmpdir(), 'gw-bench-'));
  chmodSync(base, 0o755);
  const quiet = () => undefined;
  const pgDir = join(base, 'pg');
  const pg = await startEmbeddedPostgres({ dataDir: pgDir, port: await freePort(), log: quiet });
  await applyMigrations(pg.url, quiet);
  const redisPort = await freePort();
  const redis = await startRedis({ port: redisPort, dir: join(base, 'redis'), log: quiet });
  const pgPid = Number(readFileSync(join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const redisPid = findPid((c) => c.startsWith('redis-server') && c.includes(`:${redisPort}`));
  const keysDir = join(tmpdir(), 'gateway-test-keys');
  loadOrCreateSandboxKeys(keysDir);
  const db = new Client({ connectionString: pg.url });
  await db.connect();
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
    await redis.stop().catch(() => undefined);
    await pg.stop().catch(() => undefined);
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

  try {
    const sim = node(['--import', 'tsx', 'src/simulator/main.ts'], { SIM_PORT: '0', SIM_KEYS_DIR: keysDir, SIM_H5_DOMAINS: '127.0.0.1' });
    const simUrl = /(http:\/\/\S+)/.exec(await firstLine(sim, /simulator on/))![1]!;
    const simPid = sim.pid!;

    const gatewayEnv = async (concurrency: number) => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const env = sandboxEnv({ keysDir, simulatorUrl: simUrl, databaseUrl: pg.url, redisUrl: redis.url, port, publicBaseUrl: url });
      return {
        url,
        env: { ...env, APP_MODE: 'production', NODE_ENV: 'production', LOG_LEVEL: 'info', WEB_CONCURRENCY: String(concurrency), QUEUE_PREFIX: 'bench' } as Record<string, string>,
      };
    };
    const startGw = async (concurrency: number, how: 'dist' | 'tsx') => {
      const { url, env } = await gatewayEnv(concurrency);
      const t = performance.now();
      const prof = CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : [];
      const gw = node([...prof, ...(how === 'dist' ? ['dist/src/main.js'] : ['--import', 'tsx', 'src/main.ts'])], env, `gateway-${how}-${concurrency}.log`);
      await waitHealthy(url, gw);
      const startMs = performance.now() - t;
      await sleep(1000);
      return { gw, url, startMs, idleRssMb: treeRssMb(gw.pid!) };
    };

    // Start-up both ways (one process each).
    const tsx = await startGw(1, 'tsx');
    await stop(tsx.gw);
    let { gw, url, startMs, idleRssMb } = await startGw(1, 'dist');

    // Unique data for the page and notify runs: open checkouts (and channel orders) inserted directly.
    const PER_SET = 12_000;
    const seedCheckouts = async (letter: string, o: { openid?: boolean; orders?: boolean; outTradePrefix?: string } = {}) => {
      await db.query(
        `INSERT INTO checkouts (id, merchant_id, out_trade_no, amount_fen, description, payer_openid, expires_at, updated_at)
         SELECT 'co_${letter}' || lpad(g::text, 19, '0'), $1, $2 || g, 100, 'bench', $3, now() + interval '3 hours', now()
         FROM generate_series(0, $4 - 1) g`,
        [MERCHANT, o.outTradePrefix ?? `seed_${letter}_`, o.openid ? 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' : null, PER_SET],
      );
      if (o.orders)
        await db.query(
          `INSERT INTO channel_orders (id, checkout_id, channel, trade_type, out_trade_no, payer_key, appid, mchid, updated_at)
           SELECT 'chor_${letter}' || g, 'co_${letter}' || lpad(g::text, 19, '0'), 'wechatpay', 'NATIVE', 'ot_${letter}_' || g, '', $1, $2, now()
           FROM generate_series(0, $3 - 1) g`,
          [SANDBOX_APPID, SANDBOX_MCHID, PER_SET],
        );
    };
    await seedCheckouts('h');
    await seedCheckouts('j', { openid: true });
    await seedCheckouts('n', { orders: true });
    await seedCheckouts('d', { orders: true });
    await seedCheckouts('l', { outTradePrefix: 'lim' });
    await db.query('VACUUM ANALYZE');
    const used: Record<string, number> = { h: 0, j: 0, n: 0, d: 0, l: 0 };

    let runNo = 0;
    const load = async (spec: Omit<LoadSpec, 'connections' | 'runTag'>, pids: Record<string, number>): Promise<{ r: LoadResult; cpu: Record<string, number>; rssMb: number }> => {
      const child = node(['--import', 'tsx', 'bench/load.ts', JSON.stringify({ ...spec, connections: CONNECTIONS, runTag: String(++runNo).padStart(3, '0') + String(Date.now() % 1e6) })], {});
      const lines = createInterface({ input: child.stdout! });
      const it = lines[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.value !== 'READY') throw new Error(`load: ${first.value}`);
      const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuMs(p)]));
      let rss = 0;
      const sampler = setInterval(() => (rss = Math.max(rss, treeRssMb(pids.gateway ?? pids.limit!))), 250);
      const last = await it.next();
      clearInterval(sampler);
      const after = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuMs(p)]));
      const r = JSON.parse(String(last.value)) as LoadResult;
      const ops = Math.max(1, r.ops);
      const cpu = Object.fromEntries(Object.keys(pids).map((k) => [k, (after[k]! - before[k]!) / ops]));
      if (r.non2xx || r.errors) log(`${spec.scenario}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      return { r, cpu, rssMb: rss };
    };

    const gwPids = () => ({ gateway: gw.pid!, postgres: pgPid, redis: redisPid, simulator: simPid });
    const dataSpec = (letter: string, count: number) => {
      const from = used[letter]!;
      used[letter]! += count;
      if (used[letter]! > PER_SET) throw new Error(`seed set ${letter} exhausted`);
      return { idLetter: letter, from, count };
    };
    const notifyData = (letter: string, count: number) => ({
      ...dataSpec(letter, count), outTradePrefix: `ot_${letter}_`, amountFen: 100, mchid: SANDBOX_MCHID, appid: SANDBOX_APPID, keysDir,
    });

    // Warm-up (JIT, pools): not reported.
    await load({ url, scenario: 'create', durationS: 2, apiKey: API_KEY }, gwPids());

    /** Peak run, then the same scenario at half the peak rate. `size` = unique items the run may use. */
    const rows: Row[] = [];
    const scenario = async (name: string, spec: (phase: 'peak' | 'half', rate?: number) => Omit<LoadSpec, 'connections' | 'runTag'>) => {
      const peak = await load(spec('peak'), gwPids());
      const half = await load({ ...spec('half', peak.r.rate / 2), durationS: Math.max(3, SECONDS / 2), rate: peak.r.rate / 2 }, gwPids());
      rows.push({ name, peak: peak.r, half: half.r, cpu: peak.cpu, rssMb: peak.rssMb });
      log(`${name}: ${peak.r.rate.toFixed(0)}/s p50 ${peak.r.p50} p99 ${peak.r.p99} ms; at ${(peak.r.rate / 2).toFixed(0)}/s p99 ${half.r.p99} ms`);
    };
    // Page and notify runs take their unique items from the seeded sets; the peak may use up to 1,500/s.
    const budget = (phase: 'peak' | 'half', rate?: number) => Math.ceil(phase === 'peak' ? SECONDS * 900 : (rate ?? 0) * Math.max(3, SECONDS / 2) * 1.2 + 100);
    await scenario('create `POST /v1/checkouts`', () => ({ url, scenario: 'create', durationS: SECONDS, apiKey: API_KEY }));
    await scenario('first page H5 `GET /checkout/{id}`', (p, rate) => ({ url, scenario: 'page', durationS: SECONDS, userAgent: UA_SAFARI, ...dataSpec('h', budget(p, rate)) }));
    await scenario('first page JSAPI (payer.openid)', (p, rate) => ({ url, scenario: 'page', durationS: SECONDS, userAgent: UA_WECHAT, ...dataSpec('j', budget(p, rate)) }));
    await scenario('full checkout (create + JSAPI page)', () => ({ url, scenario: 'full', durationS: SECONDS, apiKey: API_KEY }));
    await scenario('notify, unique, applied', (p, rate) => ({ url, scenario: 'notify', durationS: SECONDS, ...notifyData('n', budget(p, rate)) }));
    // The duplicate: one notify applied once, then replayed (WeChat's retries are exactly that).
    const dup = notifyData('d', 1);
    await load({ url, scenario: 'notify', durationS: 1, ...dup }, gwPids());
    await scenario('notify, duplicate', () => ({ url, scenario: 'notify-dup', durationS: SECONDS, ...dup, count: 1 }));

    // Memory: idle, then with 10,000 pending (delayed) split jobs in the queue.
    await sleep(1500);
    const idleAfterLoadMb = treeRssMb(gw.pid!);
    const q = new Queue('splits', { connection: { url: redis.url }, prefix: '{bench}' });
    for (let i = 0; i < 10; i++)
      await q.addBulk(Array.from({ length: 1000 }, (_, j) => ({ name: 'drive', data: { checkoutId: `co_pending${i}_${j}` }, opts: { jobId: `pay_pend_${i}_${j}`, delay: 3_600_000 } })));
    const pendingJobs = await q.getDelayedCount();
    await sleep(3000);
    const pendingRssMb = treeRssMb(gw.pid!);
    const redisRssMb = rssKb(redisPid) / 1024;
    await q.obliterate({ force: true });
    await q.close();
    await stop(gw);

    // The limit, same PostgreSQL, same run.
    const limit = node(['--import', 'tsx', 'bench/limit.ts'], { DATABASE_URL: pg.url, KEYS_DIR: keysDir, MERCHANT_ID: MERCHANT });
    const limitUrl = (await firstLine(limit, /^http/)).trim();
    const limitPids = { limit: limit.pid!, postgres: pgPid };
    await load({ url: limitUrl, scenario: 'limit-checkout', durationS: 2 }, limitPids);
    const limCheckout = await load({ url: limitUrl, scenario: 'limit-checkout', durationS: SECONDS }, limitPids);
    const limNotify = await load({ url: limitUrl, scenario: 'limit-notify', durationS: SECONDS, ...notifyData('l', budget('peak')), outTradePrefix: 'lim' }, limitPids);
    await stop(limit);

    // Both cores: creates with two gateway processes.
    const two = await startGw(2, 'dist');
    gw = two.gw;
    await load({ url: two.url, scenario: 'create', durationS: 2, apiKey: API_KEY }, gwPids());
    const create2 = await load({ url: two.url, scenario: 'create', durationS: SECONDS, apiKey: API_KEY }, gwPids());
    const full2 = await load({ url: two.url, scenario: 'full', durationS: SECONDS, apiKey: API_KEY }, gwPids());
    await stop(gw);

    // ------------------------------------------------------------ report
    const f = (n: number, d = 0) => n.toFixed(d);
    const out: string[] = [];
    out.push(`## npm run bench — ${new Date().toISOString()}`);
    out.push(`machine: ${cpus()[0]?.model} × ${availableParallelism()} cores, Node ${process.version}; ${SECONDS} s per peak run, ${CONNECTIONS} connections; other load on the machine: load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    out.push('');
    out.push('| scenario (1 gateway process) | req/s | p50 ms | p99 ms | p99 at half rate | gateway CPU ms/req | PostgreSQL | Redis | simulator | gateway RSS MB |');
    out.push('|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows)
      out.push(`| ${r.name} | ${f(r.peak.rate)} | ${r.peak.p50} | ${r.peak.p99} | ${r.half?.p99} (at ${f(r.peak.rate / 2)}/s) | ${f(r.cpu.gateway!, 2)} | ${f(r.cpu.postgres!, 2)} | ${f(r.cpu.redis!, 3)} | ${f(r.cpu.simulator!, 2)} | ${f(r.rssMb)} |`);
    const full = rows.find((r) => r.name.startsWith('full'))!;
    const uniq = rows.find((r) => r.name.startsWith('notify, unique'))!;
    out.push('');
    out.push('| path | gateway | its limit, same run | ratio | limit CPU ms/op (limit process, PostgreSQL) |');
    out.push('|---|---|---|---|---|');
    out.push(`| full checkout (create + JSAPI first page) | ${f(full.peak.rate)}/s | ${f(limCheckout.r.rate)}/s | **${f((100 * full.peak.rate) / limCheckout.r.rate)}%** | ${f(limCheckout.cpu.limit!, 2)}, ${f(limCheckout.cpu.postgres!, 2)} |`);
    out.push(`| payment notify, unique, applied | ${f(uniq.peak.rate)}/s | ${f(limNotify.r.rate)}/s | **${f((100 * uniq.peak.rate) / limNotify.r.rate)}%** | ${f(limNotify.cpu.limit!, 2)}, ${f(limNotify.cpu.postgres!, 2)} |`);
    out.push('');
    const create1 = rows[0]!;
    out.push(`Both cores (WEB_CONCURRENCY=2): creates ${f(create2.r.rate)}/s (p99 ${create2.r.p99} ms, gateway CPU ${f(create2.cpu.gateway!, 2)} ms/req) = **${f(create2.r.rate / create1.peak.rate, 2)}×** one process; full checkout ${f(full2.r.rate)}/s = ${f(full2.r.rate / full.peak.rate, 2)}×; RSS of the two workers + primary ${f(create2.rssMb)} MB.`);
    out.push(`Start-up to /healthz 200: compiled ${f(startMs)} ms (RSS ${f(idleRssMb)} MB idle), tsx ${f(tsx.startMs)} ms (RSS ${f(tsx.idleRssMb)} MB idle).`);
    out.push(`Memory (one process): idle after the runs ${f(idleAfterLoadMb)} MB; peak under create load ${f(create1.rssMb)} MB; with ${pendingJobs} pending split jobs ${f(pendingRssMb)} MB (Redis ${f(redisRssMb)} MB).`);
    out.push(`Whole bench: ${f((Date.now() - t0) / 1000)} s.`);
    process.stdout.write(`\n${out.join('\n')}\n`);
  } finally {
    await cleanup();
  }
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});

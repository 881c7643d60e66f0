import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { SANDBOX_APP_SECRET, sandboxEnv } from '../src/config/sandbox';
import { hashApiKey } from '../src/modules/merchants/merchant.service';
import { applyMigrations } from '../src/lib/migrations';
import { loadOrCreateSandboxKeys } from '../src/simulator/keys';
import { freePort, startEmbeddedPostgres, startRedis, type RunningService } from './services';

/**
 * `npm run chaos -- --minutes N [--seed S] [--settle-seconds S] [--keep]`: a bounded chaos run
 * (issue 8). Real processes — the gateway as `npm start` runs it (with its workers), an embedded
 * PostgreSQL, a redis-server without persistence, the WeChat Pay simulator in its own process —
 * under traffic (checkouts; payments at the simulator with duplicated and delayed notifies;
 * planned and on-demand splits, finishes), while a scheduler driven by a seeded RNG SIGKILLs and
 * restarts the gateway, Redis (its data lost) and PostgreSQL. Then, with everything up, it waits
 * (bounded) for quiescence and checks the invariants below against the simulator's own records.
 * It prints what it did and what it checked; a broken invariant exits 1.
 *
 * Extension points (after the refunds and webhooks branches merge): add an entry to INVARIANTS
 * (e.g. "every refund's effect once at the channel", "every merchant event delivered"), a traffic
 * step to `shopper()`, and a pending condition to `pendingWork()`.
 */

// ---- arguments, RNG -------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  return argv[i]!.includes('=') ? argv[i]!.split('=')[1] : argv[i + 1];
};
const MINUTES = Number(arg('minutes') ?? 2);
const SEED = Number(arg('seed') ?? Math.floor(Math.random() * 2 ** 31));
const SETTLE_S = Number(arg('settle-seconds') ?? 240);
const KEEP = argv.includes('--keep');
if (!(MINUTES > 0 && MINUTES <= 120) || !Number.isInteger(SEED)) {
  process.stderr.write('usage: npm run chaos -- --minutes N (0 < N ≤ 120) [--seed S] [--settle-seconds S] [--keep]\n');
  process.exit(2);
}

/** mulberry32: small, seeded, good enough to make a run repeatable in what it decides. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}
const chaosRng = rng(SEED);
const trafficRng = rng(SEED ^ 0x5bd1e995);

const t0 = Date.now();
const say = (m: string) => process.stdout.write(`[chaos +${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${m}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- the processes --------------------------------------------------------------------------------

const root = resolve(__dirname, '..');
const base = mkdtempSync(join(tmpdir(), 'gateway-chaos-'));
chmodSync(base, 0o755); // as root, postgres runs as the `postgres` user and must get through
const API_KEY = `sk_chaos_${randomBytes(8).toString('hex')}`;
const RATIO = 0.3;
const RECEIVER_LIMIT = 2;

interface Proc {
  name: string;
  up: boolean;
  kills: number;
}

const counters = { checkouts: 0, paid: 0, planned: 0, onDemand: 0, splitsPosted: 0, finishes: 0, requestErrors: 0, kills: {} as Record<string, number> };

function node(script: string, env: Record<string, string>, logName: string): ChildProcess {
  const log = createWriteStream(join(base, `${logName}.log`), { flags: 'a' });
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  return child;
}

async function waitHttp(url: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (r.status < 500) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > end) throw new Error(`${url} did not come up within ${timeoutMs} ms`);
    await sleep(200);
  }
}

async function main(): Promise<number> {
  say(`seed ${SEED} (repeat with --seed ${SEED}); ${MINUTES} min of traffic and kills; work dir ${base}`);
  const keysDir = join(tmpdir(), 'gateway-test-keys');
  loadOrCreateSandboxKeys(keysDir);

  // PostgreSQL (killed through the postmaster's pid; restarted on the same data directory).
  const pgDir = join(base, 'pg');
  const pgPort = await freePort();
  // Durable commits (no unsafeFast): PostgreSQL is SIGKILLed here, and with synchronous_commit=off a kill
  // loses the last committed transactions — a channel order row, say — which no production setup does.
  let pg: RunningService = await startEmbeddedPostgres({ dataDir: pgDir, port: pgPort, database: 'chaos', log: () => undefined });
  const dbUrl = pg.url;
  await applyMigrations(dbUrl, () => undefined);
  const db = new Client({ connectionString: dbUrl });
  await db.connect();
  await db.query(`INSERT INTO merchants (id, name) VALUES ('mch_chaos', 'Chaos Shop')`);
  // Keys live in merchant_api_keys (only their SHA-256), as `npm run admin -- key create` writes them.
  await db.query(`INSERT INTO merchant_api_keys (id, merchant_id, prefix, key_hash) VALUES ('key_chaos', 'mch_chaos', $1, $2)`, [API_KEY.slice(0, 12), hashApiKey(API_KEY)]);
  await db.end();

  // Redis without persistence: a kill loses everything it held.
  const redisPort = await freePort();
  let redis: RunningService = await startRedis({ port: redisPort, dir: join(base, 'redis'), persist: false, log: () => undefined });

  // The simulator in its own process, never killed: its records are what the invariants are checked against.
  const simPort = await freePort();
  const simUrl = `http://127.0.0.1:${simPort}`;
  const sim = node('src/simulator/main.ts', {
    SIM_PORT: String(simPort), SIM_KEYS_DIR: keysDir, SIM_APP_SECRET: SANDBOX_APP_SECRET, SIM_NOTIFY_URL_POLICY: 'any-no-query',
    SIM_PROFIT_SHARING_RESULT_DELAY_MS: '300', SIM_PROFIT_SHARING_MIN_DELAY_AFTER_PAY_MS: '0', SIM_PROFIT_SHARING_RECEIVER_LIMIT: String(RECEIVER_LIMIT),
  }, 'simulator');
  await waitHttp(`${simUrl}/_sim/calls`, 60_000);
  // Every notify twice at once, each first attempt 0–1.5 s late.
  await simPost('/_sim/notify-faults', { duplicate: 1, delayMs: 700 });

  const gwPort = await freePort();
  const gwUrl = `http://127.0.0.1:${gwPort}`;
  const gwEnv: Record<string, string> = {
    ...(sandboxEnv({ keysDir, simulatorUrl: simUrl, databaseUrl: dbUrl, redisUrl: redis.url, port: gwPort, publicBaseUrl: gwUrl }) as Record<string, string>),
    NODE_ENV: 'production', LOG_LEVEL: 'warn', RUN_WORKERS: 'true', QUEUE_PREFIX: 'chaos',
    PROFIT_SHARING_RECEIVER_LIMIT: String(RECEIVER_LIMIT), PROFIT_SHARING_MAX_RATIO: String(RATIO), PROFIT_SHARING_POLL_MS: '200',
    RECONCILE_INTERVAL_MS: '5000', SWEEPER_INTERVAL_MS: '1000', PAYMENT_QUERY_AFTER_SECONDS: '2',
  };
  let gateway = node('src/main.ts', gwEnv, 'gateway');
  await waitHttp(`${gwUrl}/healthz`, 90_000);
  say(`up: gateway ${gwUrl}, simulator ${simUrl}, PostgreSQL :${pgPort}, redis :${redisPort}`);

  const procs: Record<'gateway' | 'redis' | 'postgres', Proc> = {
    gateway: { name: 'gateway', up: true, kills: 0 },
    redis: { name: 'redis', up: true, kills: 0 },
    postgres: { name: 'postgres', up: true, kills: 0 },
  };
  const kill = async (which: keyof typeof procs) => {
    procs[which].kills++;
    counters.kills[which] = (counters.kills[which] ?? 0) + 1;
    procs[which].up = false;
    if (which === 'gateway') {
      const exited = new Promise((r) => gateway.once('exit', r));
      gateway.kill('SIGKILL');
      await exited;
    } else if (which === 'redis') {
      process.kill(redis.pid!, 'SIGKILL');
      await redis.stop(); // waits for the exit
    } else {
      const pid = Number(readFileSync(join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
    }
  };
  const restart = async (which: keyof typeof procs) => {
    if (which === 'gateway') {
      gateway = node('src/main.ts', gwEnv, 'gateway');
      await waitHttp(`${gwUrl}/openapi.json`, 90_000);
    } else if (which === 'redis') {
      redis = await startRedis({ port: redisPort, dir: join(base, 'redis'), persist: false, log: () => undefined });
    } else {
      // Backends of the killed postmaster may hold its shared memory for a moment: retry.
      for (let attempt = 1; ; attempt++) {
        try {
          pg = await startEmbeddedPostgres({ dataDir: pgDir, port: pgPort, database: 'chaos', log: () => undefined });
          break;
        } catch (err) {
          if (attempt >= 30) throw err;
          await sleep(500);
        }
      }
    }
    procs[which].up = true;
  };

  // ---- traffic ------------------------------------------------------------------------------------
  const ledger = new Ledger();
  const trafficEnd = Date.now() + MINUTES * 60_000;
  const api = (method: string, path: string, body?: unknown, key?: string) =>
    fetch(`${gwUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json', ...(key ? { 'Idempotency-Key': key } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
  /**
   * Retries through kills as a merchant would: the same request (same Idempotency-Key) until an
   * answer that is neither a 5xx nor "in progress" (a key left by a request the kill cut off is
   * taken over after its 60 s lease).
   */
  async function retrying(method: string, path: string, body?: unknown, key?: string, untilMs = 90_000): Promise<{ status: number; json: any } | null> {
    const end = Date.now() + untilMs;
    for (;;) {
      try {
        const r = await api(method, path, body, key);
        const json: any = await r.json().catch(() => null);
        if (r.status < 500 && json?.error?.code !== 'IDEMPOTENCY_IN_PROGRESS') return { status: r.status, json };
      } catch {
        /* gateway down */
      }
      counters.requestErrors++;
      if (Date.now() > end) return null;
      await sleep(300 + Math.floor(Math.random() * 700)); // not the seeded RNG: timing is not a decision
    }
  }

  async function shopper(n: number): Promise<void> {
    while (Date.now() < trafficEnd) {
      const amount = trafficRng.int(100, 50_000);
      const mode = trafficRng.pick(['planned', 'planned', 'on_demand', 'none'] as const);
      const budget = Math.floor(amount * RATIO);
      const plan = mode === 'planned' ? receiverList(`p${n}`, trafficRng.int(1, 5), budget) : null;
      const body = {
        out_trade_no: `CH${Date.now()}${n}${trafficRng.int(0, 1e6)}`, amount, description: '混沌测试 chaos',
        ...(mode === 'none' ? {} : { profit_sharing: plan ? { mode: 'planned', receivers: plan } : { mode: 'on_demand' } }),
      };
      const created = await retrying('POST', '/v1/checkouts', body, `ck-${body.out_trade_no}`);
      if (!created || created.status !== 201) continue;
      counters.checkouts++;
      const id = created.json.id as string;
      ledger.checkouts.set(id, { id, amount, mode });
      // The shopper's desktop browser: a Native order at the channel.
      let outTradeNo: string | null = null;
      for (let i = 0; i < 40 && !outTradeNo && Date.now() < trafficEnd + 30_000; i++) {
        try {
          const page = await fetch(`${gwUrl}/checkout/${id}`, { headers: { Accept: 'application/json', 'User-Agent': DESKTOP_UA }, signal: AbortSignal.timeout(15_000) });
          if (page.status === 200) {
            const c = await retrying('GET', `/v1/checkouts/${id}`);
            outTradeNo = (c?.json?.channel_orders?.[0]?.out_trade_no as string | undefined) ?? null;
          }
        } catch {
          /* down */
        }
        if (!outTradeNo) await sleep(500);
      }
      if (!outTradeNo) continue;
      // 90% pay; the rest stay unpaid (the sweeper's business).
      if (trafficRng.next() < 0.9) {
        const paid = await simPost(`/_sim/transactions/${outTradeNo}/pay`, {});
        if (paid.status === 200) {
          counters.paid++;
          ledger.paid.set(outTradeNo, { checkoutId: id, transactionId: paid.json.transaction_id, amount });
          if (mode === 'planned') counters.planned++;
        }
        // Sometimes the QR page polls (a lost notify is then queried at the channel).
        if (trafficRng.next() < 0.3) await retrying('GET', `/checkout/${id}/status?waiting=1`, undefined, undefined, 5_000).catch(() => null);
        if (mode === 'on_demand' && paid.status === 200) await onDemand(n, id, amount);
      }
    }
  }

  async function onDemand(n: number, id: string, amount: number): Promise<void> {
    counters.onDemand++;
    // Wait for the payment to reach us (notify, or the status poll's query).
    for (let i = 0; i < 60; i++) {
      const c = await retrying('GET', `/checkout/${id}/status?waiting=1`, undefined, undefined, 10_000);
      if (c?.json?.status === 'paid') break;
      await sleep(500);
    }
    let left = Math.floor(amount * RATIO);
    for (let s = 0; s < trafficRng.int(1, 2); s++) {
      const list = receiverList(`d${n}s${s}`, trafficRng.int(1, 3), Math.floor(left / 2));
      if (!list) break;
      const r = await retrying('POST', `/v1/checkouts/${id}/splits`, { receivers: list }, `sp-${id}-${s}`);
      if (r?.status === 201) {
        counters.splitsPosted++;
        left -= list.reduce((a, x) => a + x.amount, 0);
      }
    }
    if (trafficRng.next() < 0.6 && (await retrying('POST', `/v1/checkouts/${id}/splits/finish`))?.status === 202) counters.finishes++;
  }

  // ---- the kill scheduler -------------------------------------------------------------------------
  const scheduler = (async () => {
    await sleep(3000);
    while (Date.now() < trafficEnd) {
      await sleep(chaosRng.int(4000, 12000));
      if (Date.now() >= trafficEnd) break;
      const which = chaosRng.pick(['gateway', 'gateway', 'redis', 'redis', 'postgres'] as const);
      const down = chaosRng.int(300, 3000);
      say(`SIGKILL ${which}${which === 'redis' ? ' (its data lost)' : ''}; down for ${down} ms`);
      await kill(which);
      await sleep(down);
      const t = Date.now();
      await restart(which);
      say(`${which} back (restart took ${Date.now() - t} ms)`);
    }
  })();

  await Promise.all([scheduler, ...[1, 2, 3, 4].map((n) => shopper(n))]);
  say(`traffic over: ${JSON.stringify(counters)}`);

  // ---- quiescence, then the invariants ------------------------------------------------------------
  for (const p of Object.values(procs)) if (!p.up) throw new Error(`${p.name} is still down after the run`);
  await waitHttp(`${gwUrl}/healthz`, 60_000);
  const q = new Client({ connectionString: dbUrl });
  await q.connect();
  const settleEnd = Date.now() + SETTLE_S * 1000;
  let pending: string[] = [];
  for (;;) {
    // The shoppers still look at their QR pages: a notify lost in a kill is found by the status query.
    for (const [, p] of ledger.paid) await fetch(`${gwUrl}/checkout/${p.checkoutId}/status?waiting=1`, { signal: AbortSignal.timeout(5000) }).catch(() => null);
    pending = await pendingWork(q, ledger);
    if (pending.length === 0) break;
    if (Date.now() > settleEnd) break;
    await sleep(2000);
  }
  say(pending.length ? `NOT quiescent after ${SETTLE_S} s: ${pending.slice(0, 10).join('; ')}` : 'quiescent');
  // A reconciliation cycle after quiescence (the loop runs every 5 s).
  await sleep(7000);

  const ctx: CheckContext = { db: q, ledger, sim: { get: simGet }, ratio: RATIO, kills: Object.values(procs).reduce((a, p) => a + p.kills, 0) };
  let failed = pending.length ? 1 : 0;
  for (const inv of INVARIANTS) {
    const problems = await inv.check(ctx);
    say(`${problems.length ? 'FAIL' : 'ok  '} ${inv.name}${problems.length ? `: ${problems.length} problem(s)\n    ${problems.slice(0, 10).join('\n    ')}` : ''}`);
    if (problems.length) failed++;
  }
  await q.end();

  gateway.kill('SIGTERM');
  sim.kill('SIGTERM');
  await redis.stop();
  await pg.stop().catch(() => undefined);
  if (!KEEP && !failed) rmSync(base, { recursive: true, force: true });
  say(failed ? `FAILED (${failed}); logs in ${base}; seed ${SEED}` : `passed; seed ${SEED}`);
  return failed ? 1 : 0;

  async function simPost(path: string, body: unknown): Promise<{ status: number; json: any }> {
    const r = await fetch(`${simUrl}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, json: await r.json().catch(() => null) };
  }
  async function simGet(path: string): Promise<{ status: number; json: any }> {
    const r = await fetch(`${simUrl}${path}`);
    return { status: r.status, json: await r.json().catch(() => null) };
  }
}

const DESKTOP_UA = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/84.0.4147.89 Safari/537.36';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function receiverList(tag: string, n: number, budget: number) {
  const each = Math.floor(budget / n);
  if (each < 1) return null;
  return Array.from({ length: n }, (_, i) => ({
    type: 'MERCHANT_ID', account: `chaos-${tag}-${i}`, name: `混沌接收方 ${tag} ${i}`, amount: each, description: `分账 ${i}`, relation_type: 'PARTNER',
  }));
}

// ---- what was done, and what must hold --------------------------------------------------------------

class Ledger {
  checkouts = new Map<string, { id: string; amount: number; mode: string }>();
  /** out_trade_no -> what the simulator answered when the shopper paid. */
  paid = new Map<string, { checkoutId: string; transactionId: string; amount: number }>();
}

interface CheckContext {
  db: Client;
  ledger: Ledger;
  sim: { get(path: string): Promise<{ status: number; json: any }> };
  ratio: number;
  kills: number;
}

/** Work still in progress; empty = quiescent. */
async function pendingWork(db: Client, ledger: Ledger): Promise<string[]> {
  const out: string[] = [];
  const q = async (label: string, sql: string) => {
    const r = await db.query(sql).catch((e: Error) => ({ rows: [{ n: `query failed: ${e.message}` }] }));
    const n = r.rows[0]?.n;
    if (n !== '0' && n !== 0) out.push(`${label}: ${n}`);
  };
  // A row claimed by a killed gateway comes back when its lease (5 min) ends: bounded by design, so
  // only rows due now count as pending.
  await q('unprocessed outbox events due now', "SELECT count(*) AS n FROM outbox_events WHERE processed_at IS NULL AND available_at <= (now() AT TIME ZONE 'UTC')");
  await q('split batches pending/processing', "SELECT count(*) AS n FROM split_batches WHERE state IN ('pending','processing')");
  await q('unfreezes pending/processing', "SELECT count(*) AS n FROM split_unfreezes WHERE state IN ('pending','processing')");
  await q('payments with split work due', 'SELECT count(*) AS n FROM checkouts WHERE split_due_at IS NOT NULL');
  await q("planned payments not split yet", "SELECT count(*) AS n FROM checkouts WHERE status = 'paid' AND profit_sharing = 'planned' AND split_seq = 0");
  const paid = [...ledger.paid.keys()];
  if (paid.length) {
    const r = await db.query("SELECT count(*) AS n FROM channel_orders WHERE out_trade_no = ANY($1) AND status = 'paid'", [paid]).catch(() => null);
    const n = Number(r?.rows[0]?.n ?? -1);
    if (n !== paid.length) out.push(`payments not applied yet: ${paid.length - n}`);
  }
  return out;
}

interface Invariant {
  name: string;
  /** Problems found (empty = holds). */
  check(ctx: CheckContext): Promise<string[]>;
}

/** The invariants, checked in order. Add refunds / webhooks here once they exist. */
export const INVARIANTS: Invariant[] = [
  {
    name: 'the run exercised something: at least one payment and one kill',
    async check({ ledger, kills }) {
      return ledger.paid.size > 0 && kills > 0 ? [] : [`${ledger.paid.size} payments and ${kills} kills: a run that did nothing proves nothing`];
    },
  },
  {
    name: 'every order paid at the channel is applied once in our database, with its transaction and amount',
    async check({ db, ledger, sim }) {
      const problems: string[] = [];
      for (const [outTradeNo, p] of ledger.paid) {
        const tx = await sim.get(`/_sim/transactions/${outTradeNo}`);
        if (tx.json?.state !== 'SUCCESS' || tx.json?.transactionId !== p.transactionId) problems.push(`${outTradeNo}: the simulator says ${tx.json?.state} ${tx.json?.transactionId}`);
        const r = await db.query('SELECT c.status, c.transaction_id, c.paid_total_fen, o.status AS order_status FROM channel_orders o JOIN checkouts c ON c.id = o.checkout_id WHERE o.out_trade_no = $1', [outTradeNo]);
        const row = r.rows[0];
        if (!row || row.status !== 'paid' || row.order_status !== 'paid' || row.transaction_id !== p.transactionId || row.paid_total_fen !== p.amount)
          problems.push(`${outTradeNo}: ours ${JSON.stringify(row ?? null)}, channel ${p.transactionId} ${p.amount} fen`);
      }
      const events = await db.query("SELECT aggregate_id, count(*)::int AS n FROM outbox_events WHERE type = 'payment.succeeded' GROUP BY aggregate_id HAVING count(*) <> 1");
      for (const e of events.rows) problems.push(`checkout ${e.aggregate_id}: ${e.n} payment.succeeded events`);
      return problems;
    },
  },
  {
    name: 'no payment in our database the channel does not hold (every paid checkout paid once at the channel)',
    async check({ db, ledger }) {
      const known = new Set([...ledger.paid.values()].map((p) => p.transactionId));
      const r = await db.query("SELECT id, transaction_id FROM checkouts WHERE status = 'paid'");
      return r.rows.filter((c) => !known.has(c.transaction_id)).map((c) => `checkout ${c.id}: paid with ${c.transaction_id}, unknown to the shoppers' payments`);
    },
  },
  {
    name: 'every split batch has its effect once at the channel, and ours agree with it receiver by receiver',
    async check({ db, sim }) {
      const problems: string[] = [];
      const orders = ((await sim.get('/_sim/profitsharing/orders')).json?.orders ?? []) as Array<{ kind: string; out_order_no: string; transaction_id: string; receivers: Array<{ account: string; amount: number; result: string }> }>;
      const byNo = new Map(orders.map((o) => [o.out_order_no, o]));
      const batches = (await db.query('SELECT b.out_order_no, b.state, b.order_id FROM split_batches b')).rows;
      const receivers = (await db.query('SELECT b.out_order_no, r.account, r.amount_fen, r.state FROM split_receivers r JOIN split_batches b ON b.id = r.batch_id')).rows;
      const ours = new Set(batches.map((b) => b.out_order_no));
      for (const o of orders) if (o.kind === 'split' && !ours.has(o.out_order_no)) problems.push(`channel order ${o.out_order_no} is no batch of ours`);
      for (const b of batches) {
        const o = byNo.get(b.out_order_no);
        if (b.state === 'failed' && b.order_id === null) {
          if (o) problems.push(`batch ${b.out_order_no} failed here but the channel holds it`);
          continue;
        }
        if (!o) problems.push(`batch ${b.out_order_no} (${b.state}) unknown at the channel`);
      }
      for (const r of receivers) {
        const theirs = byNo.get(r.out_order_no)?.receivers.find((x) => x.account === r.account);
        if (!theirs) continue; // reported above when the batch is missing
        if (theirs.amount !== r.amount_fen || theirs.result !== r.state) problems.push(`${r.out_order_no}:${r.account}: ours ${r.state} ${r.amount_fen}, channel ${theirs.result} ${theirs.amount}`);
      }
      return problems;
    },
  },
  {
    name: 'every budget held: split ≤ ratio × paid at the channel and in our books, never over',
    async check({ db, sim, ratio }) {
      const problems: string[] = [];
      const orders = ((await sim.get('/_sim/profitsharing/orders')).json?.orders ?? []) as Array<{ kind: string; transaction_id: string; receivers: Array<{ amount: number; result: string }> }>;
      const committed = new Map<string, number>();
      for (const o of orders) if (o.kind === 'split') for (const r of o.receivers) if (r.result !== 'CLOSED') committed.set(o.transaction_id, (committed.get(o.transaction_id) ?? 0) + r.amount);
      const rows = (await db.query("SELECT id, transaction_id, paid_total_fen, split_reserved_fen FROM checkouts WHERE status = 'paid'")).rows;
      for (const c of rows) {
        const budget = Math.floor((c.paid_total_fen * Math.round(ratio * 10000)) / 10000);
        const atChannel = committed.get(c.transaction_id) ?? 0;
        if (atChannel > budget) problems.push(`checkout ${c.id}: ${atChannel} fen split at the channel, budget ${budget}`);
        if (c.split_reserved_fen > budget) problems.push(`checkout ${c.id}: ${c.split_reserved_fen} fen reserved, budget ${budget}`);
      }
      return problems;
    },
  },
  {
    name: 'nothing left pending, every finished payment unfrozen at the channel',
    async check({ db, sim }) {
      const problems = await pendingWork(db, new Ledger());
      const rows = (await db.query(
        `SELECT c.id, c.transaction_id FROM checkouts c JOIN split_unfreezes u ON u.checkout_id = c.id WHERE u.state = 'succeeded'`)).rows;
      for (const c of rows) {
        const a = await sim.get(`/_sim/profitsharing/amounts/${c.transaction_id}`);
        if (a.json?.unsplit_amount !== 0) problems.push(`checkout ${c.id}: unfrozen here, ${a.json?.unsplit_amount} fen still frozen at the channel`);
      }
      return problems;
    },
  },
  {
    name: 'reconciliation agrees (no open split mismatch)',
    async check({ db }) {
      const rows = (await db.query("SELECT checkout_id, kind, ref FROM split_mismatches WHERE NOT (detail ? 'resolved_at')")).rows;
      return rows.map((m) => `${m.checkout_id}: ${m.kind} ${m.ref}`);
    },
  },
];

if (require.main === module || process.argv[1]?.endsWith('chaos.ts')) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`chaos run aborted: ${err instanceof Error ? err.stack : String(err)}\nwork dir ${base}\n`);
      process.exit(1);
    },
  );
}


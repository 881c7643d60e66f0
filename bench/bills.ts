/**
 * Memory and time of one day's bill reconciliation at a large merchant's size.
 *
 * N payments paid "yesterday" (Beijing) are seeded twice, independently (test/support/bill-seed.ts):
 * in the WeChat Pay simulator's own records (it writes and gzips the day's bill from them) and in the
 * gateway's PostgreSQL (paid checkouts and channel orders). Then `admin reconcile --date <day>` runs
 * as production would run it: compiled (`npm run build` first), in its own process, under the gateway's heap cap
 * (`--max-old-space-size=${GATEWAY_HEAP_MB:-192}`), downloading the bill over signed HTTP from the
 * simulator (in this process). A probe preloaded into that process samples its heap every 10 ms.
 *
 * Beside each figure, its limit from the same run: the bill's own size (its uncompressed bytes,
 * which the run must hold at least once to check the channel's SHA1).
 *
 * Run: npm run build && node --import tsx bench/bills.ts [payments …] (default 30000 100000 250000)
 * BILLS_HISTORY=N: first, N paid payments of our own on 20 earlier days (an account's history, which a
 * day's run must not read).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SANDBOX_APP_SECRET, sandboxEnv } from '../src/config/sandbox';
import { beijingDate } from '../src/lib/beijing';
import { createPrisma, disconnectPrisma } from '../src/lib/prisma';
import { buildTradeBill } from '../src/simulator/bills/build';
import { getBillStore } from '../src/simulator/bills/store';
import { createMerchant } from '../src/modules/merchants/merchant.service';
import { startSimulator } from '../src/simulator/app';
import { loadOrCreateSandboxKeys } from '../src/simulator/keys';
import { runMain, stopInOrder } from './proc';
import { seedOurPayments, seedSimulatorPayments } from '../test/support/bill-seed';
import { startBenchServices } from './services';

const SIZES = process.argv.slice(2).map(Number).filter((n) => n > 0);
const HEAP_MB = Number(process.env.GATEWAY_HEAP_MB ?? 192);
const HISTORY = Number(process.env.BILLS_HISTORY ?? 0);
const ROOT = resolve(__dirname, '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'admin.js');

const PROBE = `
const { writeFileSync } = require('node:fs');
let heap = 0;
setInterval(() => { heap = Math.max(heap, process.memoryUsage().heapUsed); }, 10).unref();
process.on('exit', () => writeFileSync(process.env.BILL_PROBE_OUT, JSON.stringify({ heap, maxRss: process.resourceUsage().maxRSS * 1024 })));
`;

async function main() {
  const sizes = SIZES.length ? SIZES : [30_000, 100_000, 250_000];
  const services = await startBenchServices('bills-');
  const { pg, redis, keysDir } = services;
  const keys = loadOrCreateSandboxKeys(keysDir);
  const now = Date.now();
  const sim = await startSimulator({ keys, appSecret: SANDBOX_APP_SECRET, notifyUrlPolicy: 'any-no-query', bills: { publishImmediately: true } });
  const prisma = createPrisma(pg.url);
  await createMerchant(prisma, { id: 'mch_bills', name: 'Bills', apiKey: 'sk_test_bench_bills_000000' });
  const dir = mkdtempSync(join(tmpdir(), 'gw-bills-'));
  const probe = join(dir, 'probe.cjs');
  writeFileSync(probe, PROBE);
  const env = sandboxEnv({ keysDir, simulatorUrl: sim.url, databaseUrl: pg.url, redisUrl: redis.url, port: 0, publicBaseUrl: 'http://127.0.0.1:1' });

  // History: numbered from 10^9 on, 30 to 49 days back; never billed, never on a reconciled day.
  const HISTORY_DAYS = 20;
  const perDay = Math.ceil(HISTORY / HISTORY_DAYS);
  for (let d = 0; d < HISTORY_DAYS && HISTORY > 0; d++) await seedOurPayments(prisma, 'mch_bills', 1e9 + d * perDay, perDay, now - (30 + d) * 86_400_000);
  if (HISTORY > 0) process.stdout.write(`history: ${HISTORY} paid payments on ${HISTORY_DAYS} earlier days\n`);

  let seeded = 0;
  for (const [k, n] of sizes.entries()) {
    // Each size is its own Beijing day (yesterday, the day before, …): a run reads only its day.
    const paidAt = now - (k + 1) * 86_400_000;
    const day = beijingDate(new Date(paidAt));
    seedSimulatorPayments(sim.ctx, seeded, n, paidAt);
    await seedOurPayments(prisma, 'mch_bills', seeded, n, paidAt);
    seeded += n;
    const out = join(dir, `probe-${n}.json`);
    const t0 = performance.now();
    const r = await run(['--max-old-space-size=' + HEAP_MB, '--require', probe, CLI, 'reconcile', '--date', day], { ...process.env, ...env, LOG_LEVEL: 'error', BILL_PROBE_OUT: out });
    const seconds = (performance.now() - t0) / 1000;
    const billBytes = Buffer.byteLength(buildTradeBill(sim.ctx, getBillStore(sim.ctx), day, 'ALL', {}) ?? '');
    const f = r.exit === null ? { heap: 0, maxRss: 0 } : (JSON.parse(readFileSync(out, 'utf8')) as { heap: number; maxRss: number });
    const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
    process.stdout.write(
      `${n} payments (${day}): exit ${r.exit} in ${seconds.toFixed(1)} s; peak heap ${mb(f.heap)} MB (${(f.heap / n).toFixed(0)} B per line; heap cap ${HEAP_MB} MB), max RSS ${mb(f.maxRss)} MB; ` +
        `limit: the bill itself ${mb(billBytes)} MB (${(billBytes / n).toFixed(0)} B per line), peak heap ${(f.heap / Math.max(1, billBytes)).toFixed(2)}× it\n`,
    );
    if (r.exit !== 0) process.stdout.write(`  stderr: ${r.stderr.slice(-400)}\n`);
  }
  await disconnectPrisma(prisma);
  await stopInOrder(() => sim.close(), services.stop);
  rmSync(dir, { recursive: true, force: true });
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ exit: number | null; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => res({ exit: code, stderr }));
  });
}

runMain(main);

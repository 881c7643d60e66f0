import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * `npm run mutate [-- --only id,id] [-- --list]`: a small mutation check of the money paths.
 * Each mutant is one deliberate small break of the source (an exact text replaced once); the test
 * files that should notice it are run against it; the file is restored whatever happens (finally,
 * and on SIGINT/SIGTERM). A mutant the tests do not kill "survived": a blind spot. Exit 1 if any
 * survived. Run it on a green tree (the named tests must pass unmutated). Slow (minutes): not in CI.
 */

interface Mutant {
  id: string;
  file: string;
  find: string;
  replace: string;
  tests: string[];
  why: string;
}

export const MUTANTS: Mutant[] = [
  // ---- issue 8: the blind spots the audit found ----
  {
    id: 'driver-send-all-before-poll',
    why: 'pending batches sent before the batch in flight is polled (more than one batch in flight)',
    file: 'src/modules/splits/split.driver.ts',
    find: "where: { checkoutId, state: { in: ['pending', 'processing'] } },\n    orderBy: [{ split: { seq: 'asc' } }, { seq: 'asc' }],",
    replace: "where: { checkoutId, state: { in: ['pending', 'processing'] } },\n    orderBy: [{ state: 'asc' }, { split: { seq: 'asc' } }, { seq: 'asc' }],",
    tests: ['test/integration/split-inflight.test.ts'],
  },
  {
    id: 'worker-lock-without-nx',
    why: 'the per-payment lock taken without NX (two runs of one payment at once)',
    file: 'src/modules/splits/split.worker.ts',
    find: "redis.set(key(checkoutId), owner, 'PX', ttlMs, 'NX')",
    replace: "redis.set(key(checkoutId), owner, 'PX', ttlMs)",
    tests: ['test/integration/split-inflight.test.ts'],
  },
  {
    id: 'sync-close-without-status',
    why: 'the checkout close/expire update without its status condition (a payment overwritten)',
    file: 'src/modules/payments/payment.sync.ts',
    find: 'where: { id: checkoutId, status: { in: checkoutSourcesOf(to) } }, data: { status: to }',
    replace: 'where: { id: checkoutId }, data: { status: to }',
    tests: ['test/integration/close-race.test.ts'],
  },
  {
    id: 'oauth-any-nonce',
    why: 'any browser-nonce cookie accepted for the OAuth state',
    file: 'src/lib/signed.ts',
    find: 'if (browserNonce !== nonce) return null;',
    replace: 'if (!browserNonce) return null;',
    tests: ['test/integration/checkout-page.test.ts'],
  },
  {
    id: 'oauth-no-expiry',
    why: "the OAuth state's expiry ignored",
    file: 'src/lib/signed.ts',
    find: 'if (parseInt(exp, 36) * 1000 < nowMs) return null;',
    replace: '',
    tests: ['test/integration/checkout-page.test.ts'],
  },
  {
    id: 'reconcile-no-amount-mismatch',
    why: 'AMOUNT_MISMATCH detection switched off',
    file: 'src/modules/splits/split.reconcile.ts',
    find: 'if (theirs.amountFen !== mine.amountFen)',
    replace: 'if (false as boolean)',
    tests: ['test/integration/split-reconcile-kinds.test.ts'],
  },
  {
    id: 'reconcile-no-over-split-at-channel',
    why: 'OVER_SPLIT_AT_CHANNEL detection switched off',
    file: 'src/modules/splits/split.reconcile.ts',
    find: 'if (channelCommitted > budget)',
    replace: 'if (false as boolean)',
    tests: ['test/integration/split-reconcile-kinds.test.ts'],
  },
  {
    id: 'due-scan-off',
    why: 'the due scan never hands work back (split work stalls after Redis lost its data)',
    file: 'src/modules/splits/split.due.ts',
    find: '  for (const r of rows) {\n    try {\n      await queue.enqueue(',
    replace: '  for (const r of rows.slice(0, 0)) {\n    try {\n      await queue.enqueue(',
    tests: ['test/integration/split-redis-loss.test.ts'],
  },
  // ---- idempotency takeover ----
  {
    id: 'idem-takeover-any-age',
    why: 'a key in progress taken over at once, without waiting for the lease',
    file: 'src/http/idempotency.ts',
    find: 'responseCode: null, createdAt: { lt: new Date(Date.now() - IN_PROGRESS_LEASE_MS) } },',
    replace: 'responseCode: null },',
    tests: ['test/integration/idempotency-takeover.test.ts'],
  },
  {
    id: 'idem-effect-key-ignored',
    why: "a retry after a crash does not find the checkout its key created (DUPLICATE instead of the answer)",
    file: 'src/modules/checkout/checkout.service.ts',
    find: 'if (mine && mine.outTradeNo === input.out_trade_no && mine.amountFen === input.amount && mine.description === input.description) return mine;',
    replace: '',
    tests: ['test/integration/idempotency-takeover.test.ts'],
  },
  // ---- the split budget ----
  {
    id: 'budget-no-ratio',
    why: 'the reservation checks the paid amount instead of paid × ratio',
    file: 'src/modules/splits/split.budget.ts',
    find: 'AND split_reserved_fen + ${totalFen} <= (paid_total_fen::bigint * ${bp}) / 10000',
    replace: 'AND split_reserved_fen + ${totalFen} <= paid_total_fen',
    tests: ['test/integration/split-invariant.test.ts'],
  },
  {
    id: 'budget-no-request-cap',
    why: 'the request cap dropped from the reservation',
    file: 'src/modules/splits/split.budget.ts',
    find: 'AND split_requests + ${chunks.length} <= ${limits.maxRequests}',
    replace: '',
    tests: ['test/integration/split-invariant.test.ts'],
  },
  {
    id: 'budget-release-twice',
    why: 'a CLOSED receiver releases its money again on a repeated answer (no PENDING guard)',
    file: 'src/modules/splits/split.budget.ts',
    find: "WHERE id = ${r.id} AND state = 'PENDING'",
    replace: 'WHERE id = ${r.id}',
    tests: ['test/integration/split-release.test.ts'],
  },
  {
    id: 'driver-unknown-outcome-terminal',
    why: 'an accepted-but-unreadable answer treated as a refusal (budget released, batch failed)',
    file: 'src/modules/splits/split.driver.ts',
    find: 'return err.retryable || isOutcomeUnknown(err);',
    replace: 'return err.retryable;',
    tests: ['test/integration/split-driver.test.ts', 'test/integration/split-pipeline.test.ts'],
  },
  // ---- notify apply ----
  {
    id: 'apply-without-status-cas',
    why: 'the paid transition without its status condition (a duplicate notify applied twice)',
    file: 'src/modules/payments/payment.apply.ts',
    find: "where: { id: order.checkoutId, status: { in: checkoutSourcesOf('paid') } },",
    replace: 'where: { id: order.checkoutId },',
    tests: ['test/integration/notify.test.ts'],
  },
  {
    id: 'apply-no-amount-check',
    why: "a notify's amount not compared with the checkout's",
    file: 'src/modules/payments/payment.apply.ts',
    find: 'if (tx.amountTotalFen !== order.checkout.amountFen)',
    replace: 'if (false as boolean)',
    tests: ['test/integration/notify.test.ts'],
  },
];

const root = resolve(__dirname, '..');

function applyOnce(text: string, m: Mutant): string {
  const at = text.indexOf(m.find);
  if (at < 0 || text.indexOf(m.find, at + 1) >= 0) throw new Error(`mutant ${m.id}: its text must occur exactly once in ${m.file} (the source changed: update the mutant)`);
  return text.slice(0, at) + m.replace + text.slice(at + m.find.length);
}

function main(): number {
  const args = process.argv.slice(2);
  const onlyArg = args.find((a) => a.startsWith('--only'));
  const only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1]! : args[args.indexOf(onlyArg) + 1] ?? '').split(',').filter(Boolean) : [];
  const chosen = only.length ? MUTANTS.filter((m) => only.includes(m.id)) : MUTANTS;
  if (args.includes('--list')) {
    for (const m of MUTANTS) process.stdout.write(`${m.id.padEnd(36)} ${m.file}  →  ${m.tests.join(' ')}\n    ${m.why}\n`);
    return 0;
  }
  // Check every mutant still applies before spending minutes on the first.
  for (const m of chosen) applyOnce(readFileSync(join(root, m.file), 'utf8'), m);

  let restore: (() => void) | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    restore?.();
    process.kill(process.pid, sig);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results: Array<{ m: Mutant; killed: boolean; ms: number }> = [];
  for (const m of chosen) {
    const path = join(root, m.file);
    const original = readFileSync(path, 'utf8');
    restore = () => writeFileSync(path, original);
    const t = Date.now();
    let killed: boolean;
    try {
      writeFileSync(path, applyOnce(original, m));
      process.stdout.write(`\n--- mutant ${m.id}: ${m.why}\n    ${m.file}; running ${m.tests.join(' ')}\n`);
      const r = spawnSync('npx', ['jest', '--runInBand', '--silent', ...m.tests], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 600_000 });
      killed = r.status !== 0;
      const summary = (r.stderr ?? '').split('\n').filter((l) => /^Tests:|✕/.test(l.trim())).slice(0, 6).join('\n    ');
      process.stdout.write(`    ${killed ? 'KILLED' : 'SURVIVED'} in ${Math.round((Date.now() - t) / 1000)} s${summary ? `\n    ${summary}` : ''}\n`);
    } finally {
      restore();
      restore = null;
    }
    results.push({ m, killed, ms: Date.now() - t });
  }
  const survived = results.filter((r) => !r.killed);
  process.stdout.write(`\nmutation check: ${results.length - survived.length} of ${results.length} mutants killed${survived.length ? `; SURVIVED: ${survived.map((r) => r.m.id).join(', ')}` : ''}\n`);
  return survived.length ? 1 : 0;
}

// Only as a script: importing the list (e.g. from a check) must never mutate the tree.
if (require.main === module || process.argv[1]?.endsWith('mutate.ts')) process.exitCode = main();

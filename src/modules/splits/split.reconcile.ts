import type { PaymentChannel, SplitOrderResult } from '../../channels/channel';
import { channelsOf, type ChannelResolver } from '../merchants/channel-resolver';
import type { Config } from '../../config/config';
import { AppError, ChannelError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { Logger } from '../../lib/logger';
import { sqlUtc, type Prisma, type PrismaClient } from '../../lib/prisma';
import { splitLimitsOf } from '../checkout/checkout.service';
import { publishEvent } from '../webhooks/webhook.publish';
import { raiseAlert } from './split.driver';
import type { SplitQueue } from './split.queue';
import { MAX_FEE_RATE, splitBudget } from './split.rules';

interface Deps {
  prisma: PrismaClient;
  channel: PaymentChannel;
  channels?: ChannelResolver;
  config: Config;
  logger: Logger;
  now: () => Date;
}

export interface Finding {
  kind: string;
  ref: string;
  message: string;
  detail?: Prisma.InputJsonValue;
}

/** Process-wide count of mismatch observations (new or repeated), new ones, resolved ones: for metrics and tests. */
export const mismatchCounter = { observed: 0, created: 0, resolved: 0 };

/** Kinds decided from our own rows alone (evaluated every cycle, whatever the channel answered). */
const LOCAL_KINDS = new Set(['RESERVATION_DRIFT', 'OVER_SPLIT']);
const UNSPLIT = 'UNSPLIT_AMOUNT_MISMATCH';

/**
 * A mismatch no longer seen is marked resolved without a schema column: `resolved_at` (ISO time)
 * in its `detail` object. Seen again, the upsert replaces `detail` and so re-opens it.
 */
export function mismatchResolution(detail: unknown): { detail: unknown; resolvedAt: string | null } {
  if (detail === null || typeof detail !== 'object' || Array.isArray(detail) || !('resolved_at' in detail)) return { detail, resolvedAt: null };
  const { resolved_at: resolvedAt, ...rest } = detail as Record<string, unknown>;
  return { detail: 'previous' in rest ? rest.previous : rest, resolvedAt: typeof resolvedAt === 'string' ? resolvedAt : null };
}

/** `detail` marked resolved (plus who and why, when a person resolved it); a non-object detail is kept under `previous`. */
export function resolvedDetail(base: unknown, now: Date, by?: { resolved_by: string; resolution_note: string }): Prisma.InputJsonValue {
  const detail = (base !== null && typeof base === 'object' && !Array.isArray(base) ? { ...base } : { previous: base }) as Record<string, unknown>;
  detail.resolved_at = now.toISOString();
  if (by) Object.assign(detail, by);
  return detail as Prisma.InputJsonValue;
}

/**
 * A person resolves a mismatch with a note (console action): the same mark reconciliation sets when it
 * no longer sees it. Compare-and-set on last_seen_at, like the loop: if a cycle sees it again meanwhile,
 * that observation wins and the person is told. Seen again later, it reopens: the money still disagrees.
 * Returns false when it was already resolved (nothing changed).
 */
export async function resolveMismatch(db: Prisma.TransactionClient, m: { id: string; detail: unknown; lastSeenAt: Date }, by: { email: string; note: string }, now: Date): Promise<boolean> {
  if (mismatchResolution(m.detail).resolvedAt !== null) return false;
  // Also still open: two people resolving at once (last_seen_at unchanged by either) must not both win.
  const count = await db.$executeRaw`
    UPDATE split_mismatches
       SET detail = ${JSON.stringify(resolvedDetail(m.detail, now, { resolved_by: by.email, resolution_note: by.note }))}::jsonb
     WHERE id = ${m.id} AND last_seen_at = ${m.lastSeenAt}::timestamp AND (detail ->> 'resolved_at') IS NULL`;
  if (count === 1) return true;
  const fresh = await db.splitMismatch.findUnique({ where: { id: m.id } });
  if (fresh && mismatchResolution(fresh.detail).resolvedAt !== null) return false;
  throw new AppError('CONFLICT', '对账刚刚再次发现此不符，请刷新后再判断 · Reconciliation just saw this mismatch again: reload and decide again');
}

type Snapshot = NonNullable<Awaited<ReturnType<typeof readSnapshot>>>;

/** One consistent read of the checkout's split rows (the reserved column and the receivers are compared). */
function readSnapshot(prisma: PrismaClient, checkoutId: string) {
  return prisma.$transaction(
    (db) => db.checkout.findUnique({
      where: { id: checkoutId },
      include: { splitUnfreeze: true, splits: { include: { batches: { include: { receivers: true } } } } },
    }),
    { isolationLevel: 'RepeatableRead' },
  );
}

/** Everything a comparison depends on: equal fingerprints = nothing progressed between two reads. */
function fingerprint(c: Snapshot | null): string {
  if (!c) return 'gone';
  const uf = c.splitUnfreeze;
  return JSON.stringify([
    c.status, c.paidTotalFen, c.splitReservedFen, c.splitRequests, c.splitSeq, c.splitFinishedAt?.getTime() ?? null,
    uf ? [uf.state, uf.amountFen, uf.updatedAt.getTime()] : null,
    c.splits.map((sp) => [sp.id, sp.batches.map((b) => [b.id, b.state, b.updatedAt.getTime(), b.receivers.map((r) => [r.id, r.state, r.updatedAt.getTime()])])]),
  ]);
}

/** A channel's refusal is an expected answer: its code and text, not a stack trace. */
function failure(err: unknown): Record<string, unknown> {
  return err instanceof ChannelError ? { code: err.code, reason: err.message } : { err };
}

/**
 * Compares one payment's split records with the channel's answers (query per sent batch, the
 * unsplit amount) and with the paid amount. Pure comparison: no repair — a disagreement with the
 * channel about money needs a person, so it is stored, logged, counted and shown on the checkout.
 */
export async function reconcileCheckout(d: Deps, checkoutId: string): Promise<Finding[]> {
  d = { ...d, channel: (await channelsOf(d).forCheckout(checkoutId)).channel };
  const c = await readSnapshot(d.prisma, checkoutId);
  if (!c || !c.transactionId || c.paidTotalFen === null) return [];
  const findings: Finding[] = [];
  const base = c.paidTotalFen - c.merchantFundedFen;
  const budget = splitBudget(base, splitLimitsOf(d.config));
  const batches = c.splits.flatMap((s) => s.batches);
  const ourReceivers = batches.flatMap((b) => b.receivers);

  // Our own books: the reservation column equals the receivers not CLOSED, within the budget.
  const reserved = ourReceivers.filter((r) => r.state !== 'CLOSED').reduce((s, r) => s + r.amountFen, 0);
  if (reserved !== c.splitReservedFen)
    findings.push({ kind: 'RESERVATION_DRIFT', ref: checkoutId, message: `reserved column ${c.splitReservedFen} fen, open receivers ${reserved} fen`, detail: { column: c.splitReservedFen, receivers: reserved } });
  if (reserved > budget)
    findings.push({ kind: 'OVER_SPLIT', ref: checkoutId, message: `${reserved} fen split or reserved exceeds the budget of ${budget} fen`, detail: { reserved, budget } });

  let channelCommitted = 0;
  let channelComplete = true;
  for (const b of batches) {
    if (b.state === 'pending') continue;
    let q: SplitOrderResult | null;
    try {
      q = await d.channel.querySplitOrder(c.transactionId, b.outOrderNo);
    } catch (err) {
      channelComplete = false;
      d.logger.warn({ ...failure(err), checkoutId, outOrderNo: b.outOrderNo }, 'reconcile: query failed; next cycle');
      continue;
    }
    if (b.state === 'failed' && b.orderId === null) {
      // Refused when we sent it: the channel must not know it.
      if (q) findings.push({ kind: 'BATCH_ACCEPTED_BUT_FAILED_HERE', ref: b.outOrderNo, message: `the channel has order ${q.orderId} for a batch recorded as refused (${b.failCode})` });
      continue;
    }
    if (!q) {
      findings.push({ kind: 'BATCH_UNKNOWN_AT_CHANNEL', ref: b.outOrderNo, message: `the channel does not know batch ${b.outOrderNo} (${b.state} here)` });
      continue;
    }
    for (const r of q.receivers) if (r.result !== 'CLOSED') channelCommitted += r.amountFen;
    for (const mine of b.receivers) {
      const theirs = q.receivers.find((r) => r.type === mine.type && r.account === mine.account);
      const ref = `${b.outOrderNo}:${mine.account}`;
      if (!theirs) {
        findings.push({ kind: 'RECEIVER_UNKNOWN_AT_CHANNEL', ref, message: `receiver ${mine.account} is missing from the channel's answer` });
        continue;
      }
      if (theirs.amountFen !== mine.amountFen)
        findings.push({ kind: 'AMOUNT_MISMATCH', ref, message: `receiver ${mine.account}: ${mine.amountFen} fen here, ${theirs.amountFen} fen at the channel`, detail: { ours: mine.amountFen, channel: theirs.amountFen } });
      // PENDING here but final there: the pipeline is about to store it, not a disagreement.
      if (mine.state !== 'PENDING' && mine.state !== theirs.result)
        findings.push({
          kind: theirs.result === 'CLOSED' ? 'RECEIVER_CLOSED_AT_CHANNEL' : 'RECEIVER_STATE_MISMATCH',
          ref,
          message: `receiver ${mine.account}: ${mine.state} here, ${theirs.result}${theirs.failReason ? ` (${theirs.failReason})` : ''} at the channel`,
          detail: { ours: mine.state, channel: theirs.result, fail_reason: theirs.failReason ?? null },
        });
    }
    for (const theirs of q.receivers)
      if (!b.receivers.some((m) => m.type === theirs.type && m.account === theirs.account))
        findings.push({ kind: 'EXTRA_RECEIVER_AT_CHANNEL', ref: `${b.outOrderNo}:${theirs.account}`, message: `the channel split ${theirs.amountFen} fen to ${theirs.account}, unknown here` });
  }
  if (channelCommitted > budget)
    findings.push({ kind: 'OVER_SPLIT_AT_CHANNEL', ref: checkoutId, message: `the channel holds ${channelCommitted} fen of splits, over the budget of ${budget} fen`, detail: { channel: channelCommitted, budget } });

  // The remaining amount, once nothing is in flight: paid − split (or 0 once unfrozen).
  const settled = batches.every((b) => b.state !== 'pending' && b.state !== 'processing') &&
    (!c.splitUnfreeze || c.splitUnfreeze.state === 'succeeded' || c.splitUnfreeze.state === 'failed');
  let unsplitChecked = false;
  // After a refund WeChat alone knows how much of it came out of the frozen funds: not comparable.
  if (settled && channelComplete && c.profitSharing !== 'none' && c.refundedFen === 0) {
    // The channel keeps its fee out of the splittable amount and we are never told it: the channel
    // may hold up to MAX_FEE_RATE less than our books, never more.
    const expected = c.splitUnfreeze?.state === 'succeeded' ? 0 : base - reserved;
    const feeAllowance = c.splitUnfreeze?.state === 'succeeded' ? 0 : Math.ceil(base * MAX_FEE_RATE);
    try {
      const { unsplitAmountFen } = await d.channel.unsplitAmount(c.transactionId);
      unsplitChecked = true;
      if (unsplitAmountFen > expected || unsplitAmountFen < expected - feeAllowance)
        findings.push({ kind: UNSPLIT, ref: checkoutId, message: `unsplit amount ${unsplitAmountFen} fen at the channel, ${expected} fen expected`, detail: { channel: unsplitAmountFen, expected } });
    } catch (err) {
      if (!(err instanceof ChannelError)) throw err;
      d.logger.warn({ ...failure(err), checkoutId }, 'reconcile: unsplit amount query failed; next cycle');
    }
  }

  // The channel was read over a stretch of time while the pipeline may have moved on (a batch
  // answered, an unfreeze sent): comparing its answers with the first read would be a false
  // positive. Only a payment that did not change during the whole check is judged; otherwise the
  // next cycle checks it again (a settled payment stops changing).
  if (fingerprint(await readSnapshot(d.prisma, checkoutId)) !== fingerprint(c)) {
    d.logger.debug({ checkoutId }, 'reconcile: split records changed during the check; next cycle');
    return [];
  }
  const evaluated = (kind: string) => LOCAL_KINDS.has(kind) || (channelComplete && (kind !== UNSPLIT || unsplitChecked));
  await storeFindings(d, checkoutId, findings, evaluated);
  return findings;
}

/**
 * Upserts what was seen (counted once per (checkout, kind, ref)) and marks resolved the open
 * mismatches of the kinds this check evaluated that it no longer saw.
 */
async function storeFindings(d: Deps, checkoutId: string, findings: Finding[], evaluated: (kind: string) => boolean): Promise<void> {
  const now = d.now();
  const known = await d.prisma.splitMismatch.findMany({ where: { checkoutId } });
  const seen = new Set(findings.map((f) => `${f.kind}|${f.ref}`));
  for (const m of known) {
    if (seen.has(`${m.kind}|${m.ref}`) || !evaluated(m.kind) || mismatchResolution(m.detail).resolvedAt !== null) continue;
    // Compare-and-set on last_seen_at: a concurrent cycle that saw it again wins.
    const r = await d.prisma.splitMismatch.updateMany({ where: { id: m.id, lastSeenAt: m.lastSeenAt }, data: { detail: resolvedDetail(m.detail, now) } });
    if (r.count === 1) {
      mismatchCounter.resolved += 1;
      d.logger.info({ checkoutId, kind: m.kind, ref: m.ref }, 'split reconciliation mismatch resolved');
    }
  }
  const reopened = new Set(known.filter((m) => mismatchResolution(m.detail).resolvedAt !== null).map((m) => `${m.kind}|${m.ref}`));
  for (const f of findings) {
    mismatchCounter.observed += 1;
    // The row and its reconciliation.mismatch event commit together (new or reopened mismatches only).
    const rows = await d.prisma.$transaction(async (db) => {
      const r = await db.$queryRaw<Array<{ id: string; inserted: boolean; merchant_id: string }>>`
        INSERT INTO split_mismatches (id, checkout_id, kind, ref, message, detail, occurrences, first_seen_at, last_seen_at)
        VALUES (${newId('sm')}, ${checkoutId}, ${f.kind}, ${f.ref}, ${f.message}, ${JSON.stringify(f.detail ?? null)}::jsonb, 1, ${now}::timestamp, ${now}::timestamp)
        ON CONFLICT (checkout_id, kind, ref) DO UPDATE
          SET occurrences = split_mismatches.occurrences + 1, last_seen_at = EXCLUDED.last_seen_at, message = EXCLUDED.message, detail = EXCLUDED.detail
        RETURNING id, (xmax = 0) AS inserted, (SELECT merchant_id FROM checkouts WHERE id = ${checkoutId}) AS merchant_id`;
      if (r[0] && (r[0].inserted || reopened.has(`${f.kind}|${f.ref}`)))
        await publishEvent(db, { merchantId: r[0].merchant_id, type: 'reconciliation.mismatch', checkoutId, object: { kind: 'mismatch', id: r[0].id } });
      return r;
    });
    if (rows[0]?.inserted || reopened.has(`${f.kind}|${f.ref}`)) {
      mismatchCounter.created += 1;
      d.logger.error({ checkoutId, kind: f.kind, ref: f.ref, mismatch: f.message, reopened: !rows[0]?.inserted }, 'split reconciliation mismatch');
    }
  }
}

/**
 * One reconciliation cycle: every payment with a batch sent to the channel and touched within
 * `lookbackMs` (default 24 h; final answers are checked again each cycle for that long, so a
 * disagreement appearing after the channel's final answer is found within one interval).
 */
export async function reconcileOnce(d: Deps, opts: { lookbackMs?: number; limit?: number } = {}): Promise<{ checked: number; findings: number }> {
  const since = new Date(d.now().getTime() - (opts.lookbackMs ?? 24 * 3600_000));
  const rows = await d.prisma.splitBatch.groupBy({
    by: ['checkoutId'],
    where: { state: { not: 'pending' }, updatedAt: { gte: since } },
    _max: { updatedAt: true },
    orderBy: { _max: { updatedAt: 'desc' } },
    take: opts.limit ?? 1000,
  });
  let findings = 0;
  for (const r of rows) findings += (await reconcileCheckout(d, r.checkoutId)).length;
  return { checked: rows.length, findings };
}

/** How long after its window ended a still-frozen payment is alerted at the latest. */
const LATE_ALERT_DAYS = 7;

/**
 * Funds still frozen as the split window (PROFIT_SHARING_WINDOW_DAYS after payment) nears its end
 * (PROFIT_SHARING_ALERT_BEFORE_DAYS): WeChat then unfreezes to the merchant by itself and splitting
 * becomes impossible, so somebody must act now. Stored once per payment, logged, shown on the checkout.
 */
export async function alertFrozenFunds(d: Deps): Promise<number> {
  const day = 86_400_000;
  const days = d.config.PROFIT_SHARING_WINDOW_DAYS - d.config.PROFIT_SHARING_ALERT_BEFORE_DAYS;
  const before = new Date(d.now().getTime() - days * day);
  // Payments whose window ended more than LATE_ALERT_DAYS ago are past help (WeChat unfroze them)
  // and were alerted during their alert period unless the gateway was off for all of it: leaving
  // them out keeps this read to the payments of the alert period (a partial index of profit-sharing
  // payments by paid_at) instead of every profit-sharing payment ever made.
  const since = new Date(d.now().getTime() - (d.config.PROFIT_SHARING_WINDOW_DAYS + LATE_ALERT_DAYS) * day);
  const rows = await d.prisma.$queryRaw<Array<{ id: string; paidAt: Date }>>`
    SELECT c.id, c.paid_at AS "paidAt" FROM checkouts c
     WHERE c.profit_sharing <> 'none' AND c.status = 'paid'
       AND c.paid_at > ${sqlUtc(since)} AND c.paid_at <= ${sqlUtc(before)}
       AND NOT EXISTS (SELECT 1 FROM split_unfreezes u WHERE u.checkout_id = c.id AND u.state = 'succeeded')
       AND NOT EXISTS (SELECT 1 FROM split_alerts a WHERE a.checkout_id = c.id AND a.kind = 'FREEZE_WINDOW_ENDING')
     ORDER BY c.paid_at LIMIT 500`;
  let raised = 0;
  for (const r of rows) {
    const ends = new Date(r.paidAt.getTime() + d.config.PROFIT_SHARING_WINDOW_DAYS * day);
    if (await raiseAlert(d, r.id, 'FREEZE_WINDOW_ENDING', `funds are still frozen; the split window ends ${ends.toISOString()}`)) raised++;
  }
  return raised;
}

/**
 * Re-enqueues payments whose split work has made no progress for `staleMs` (a job lost with Redis,
 * an enqueue that failed after commit). Safe: the driver is idempotent and jobs are per-payment locked.
 */
export async function kickStalled(d: Deps, queue: SplitQueue, staleMs = 15 * 60_000): Promise<number> {
  const cutoff = new Date(d.now().getTime() - staleMs);
  const readyCutoff = new Date(cutoff.getTime() - d.config.PROFIT_SHARING_DELAY * 1000);
  // Every minute on every process: each read goes through an index that holds only open work (the
  // conditions spell the partial indexes' predicates, so PostgreSQL can use them with any parameter
  // values), not through every unfreeze and profit-sharing payment ever made (work-lists.test.ts).
  const [batches, unfreezes, plans] = await Promise.all([
    d.prisma.splitBatch.findMany({ where: { state: { in: ['pending', 'processing'] }, updatedAt: { lt: cutoff } }, select: { checkoutId: true }, distinct: ['checkoutId'], take: 500 }),
    d.prisma.$queryRaw<Array<{ checkoutId: string }>>`
      SELECT checkout_id AS "checkoutId" FROM split_unfreezes
       WHERE (state = 'pending' OR state = 'processing') AND updated_at < ${sqlUtc(cutoff)} LIMIT 500`,
    // Planned payments never split (their job and due time both lost), unless their plan was refused.
    d.prisma.$queryRaw<Array<{ id: string }>>`
      SELECT c.id FROM checkouts c
       WHERE c.profit_sharing = 'planned' AND c.split_seq = 0 AND c.status = 'paid' AND c.paid_at < ${sqlUtc(readyCutoff)}
         AND NOT EXISTS (SELECT 1 FROM split_alerts a WHERE a.checkout_id = c.id AND a.kind = 'PLAN_REJECTED')
       LIMIT 500`,
  ]);
  const ids = new Set([...batches.map((b) => b.checkoutId), ...unfreezes.map((u) => u.checkoutId), ...plans.map((p) => p.id)]);
  for (const id of ids) await queue.enqueue(`kick_${id}`, { checkoutId: id });
  return ids.size;
}

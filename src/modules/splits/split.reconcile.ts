import type { PaymentChannel, SplitOrderResult } from '../../channels/channel';
import type { Config } from '../../config/config';
import { ChannelError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { Logger } from '../../lib/logger';
import type { Prisma, PrismaClient } from '../../lib/prisma';
import { splitLimitsOf } from '../checkout/checkout.service';
import { raiseAlert } from './split.driver';
import type { SplitQueue } from './split.queue';
import { splitBudget } from './split.rules';

interface Deps {
  prisma: PrismaClient;
  channel: PaymentChannel;
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

/** Process-wide count of mismatch observations (new or repeated), for metrics and tests. */
export const mismatchCounter = { observed: 0, created: 0 };

/**
 * Compares one payment's split records with the channel's answers (query per sent batch, the
 * unsplit amount) and with the paid amount. Pure comparison: no repair — a disagreement with the
 * channel about money needs a person, so it is stored, logged, counted and shown on the checkout.
 */
export async function reconcileCheckout(d: Deps, checkoutId: string): Promise<Finding[]> {
  // One snapshot: the reserved column and the receivers are compared, so they must be read together.
  const c = await d.prisma.$transaction(
    (db) => db.checkout.findUnique({
      where: { id: checkoutId },
      include: { splitUnfreeze: true, splits: { include: { batches: { include: { receivers: true } } } } },
    }),
    { isolationLevel: 'RepeatableRead' },
  );
  if (!c || !c.transactionId || c.paidTotalFen === null) return [];
  const findings: Finding[] = [];
  const budget = splitBudget(c.paidTotalFen, splitLimitsOf(d.config));
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
      d.logger.warn({ err, checkoutId, outOrderNo: b.outOrderNo }, 'reconcile: query failed; next cycle');
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
  if (settled && channelComplete && c.profitSharing !== 'none') {
    const expected = c.splitUnfreeze?.state === 'succeeded' ? 0 : c.paidTotalFen - reserved;
    try {
      const { unsplitAmountFen } = await d.channel.unsplitAmount(c.transactionId);
      if (unsplitAmountFen !== expected)
        findings.push({ kind: 'UNSPLIT_AMOUNT_MISMATCH', ref: checkoutId, message: `unsplit amount ${unsplitAmountFen} fen at the channel, ${expected} fen expected`, detail: { channel: unsplitAmountFen, expected } });
    } catch (err) {
      if (!(err instanceof ChannelError)) throw err;
      d.logger.warn({ err, checkoutId }, 'reconcile: unsplit amount query failed; next cycle');
    }
  }
  await storeFindings(d, checkoutId, findings);
  return findings;
}

async function storeFindings(d: Deps, checkoutId: string, findings: Finding[]): Promise<void> {
  const now = d.now();
  for (const f of findings) {
    mismatchCounter.observed += 1;
    const rows = await d.prisma.$queryRaw<Array<{ inserted: boolean }>>`
      INSERT INTO split_mismatches (id, checkout_id, kind, ref, message, detail, occurrences, first_seen_at, last_seen_at)
      VALUES (${newId('sm')}, ${checkoutId}, ${f.kind}, ${f.ref}, ${f.message}, ${JSON.stringify(f.detail ?? null)}::jsonb, 1, ${now}::timestamp, ${now}::timestamp)
      ON CONFLICT (checkout_id, kind, ref) DO UPDATE
        SET occurrences = split_mismatches.occurrences + 1, last_seen_at = EXCLUDED.last_seen_at, message = EXCLUDED.message, detail = EXCLUDED.detail
      RETURNING (xmax = 0) AS inserted`;
    if (rows[0]?.inserted) {
      mismatchCounter.created += 1;
      d.logger.error({ checkoutId, kind: f.kind, ref: f.ref, mismatch: f.message }, 'split reconciliation mismatch');
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

/**
 * Funds still frozen as the split window (PROFIT_SHARING_WINDOW_DAYS after payment) nears its end
 * (PROFIT_SHARING_ALERT_BEFORE_DAYS): WeChat then unfreezes to the merchant by itself and splitting
 * becomes impossible, so somebody must act now. Stored once per payment, logged, shown on the checkout.
 */
export async function alertFrozenFunds(d: Deps): Promise<number> {
  const days = d.config.PROFIT_SHARING_WINDOW_DAYS - d.config.PROFIT_SHARING_ALERT_BEFORE_DAYS;
  const before = new Date(d.now().getTime() - days * 86_400_000);
  const rows = await d.prisma.checkout.findMany({
    where: {
      status: 'paid',
      profitSharing: { not: 'none' },
      paidAt: { lte: before },
      OR: [{ splitUnfreeze: null }, { splitUnfreeze: { state: { not: 'succeeded' } } }],
      splitAlerts: { none: { kind: 'FREEZE_WINDOW_ENDING' } },
    },
    select: { id: true, paidAt: true },
    take: 500,
  });
  let raised = 0;
  for (const r of rows) {
    const ends = new Date(r.paidAt!.getTime() + d.config.PROFIT_SHARING_WINDOW_DAYS * 86_400_000);
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
  const readyCutoff = new Date(cutoff.getTime() - d.config.PROFIT_SHARING_DELAY_MS);
  const [batches, unfreezes, plans] = await Promise.all([
    d.prisma.splitBatch.findMany({ where: { state: { in: ['pending', 'processing'] }, updatedAt: { lt: cutoff } }, select: { checkoutId: true }, distinct: ['checkoutId'], take: 500 }),
    d.prisma.splitUnfreeze.findMany({ where: { state: { in: ['pending', 'processing'] }, updatedAt: { lt: cutoff } }, select: { checkoutId: true }, take: 500 }),
    d.prisma.checkout.findMany({
      where: { status: 'paid', profitSharing: 'planned', splitSeq: 0, paidAt: { lt: readyCutoff }, splitAlerts: { none: { kind: 'PLAN_REJECTED' } } },
      select: { id: true },
      take: 500,
    }),
  ]);
  const ids = new Set([...batches.map((b) => b.checkoutId), ...unfreezes.map((u) => u.checkoutId), ...plans.map((p) => p.id)]);
  for (const id of ids) await queue.enqueue(`kick_${id}`, { checkoutId: id });
  return ids.size;
}

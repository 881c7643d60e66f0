/**
 * Daily bill reconciliation of one channel account for one Beijing day (issue 12 §2):
 *   claim the run (lease) → fetch both bills (hash checked by the channel) → parse → match with our
 *   records → payments only the bill knows are confirmed by an order query and recorded through the
 *   normal payment path → store the result (replacing the day's previous one) with its webhooks.
 * Any failure (bill not ready, bad hash, channel down, unreadable file) leaves the previous result in
 * place and schedules a retry; nothing is stored from a bill whose hash did not match.
 */
import type { BillKind, PaymentChannel } from '../../channels/channel';
import type { Config } from '../../config/config';
import { ChannelError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { Logger } from '../../lib/logger';
import { billMismatchesFound, type Metrics } from '../../lib/metrics';
import type { PrismaClient } from '../../lib/prisma';
import { channelsOf, type ChannelResolver } from '../merchants/channel-resolver';
import { applyPaidTransaction, PaymentMismatch } from '../payments/payment.apply';
import { publishEvent } from '../webhooks/webhook.publish';
import { BILL_COLUMNS, matchProfitSharingBill, matchTradeBill, type BillMismatch } from './bill.match';
import { BillFormatError, col, parseBill, type ParsedBill } from './bill.parse';
import { loadOurRecords, ownerOf } from './reconcile.records';
import { runSourcesOf } from './reconcile.states';

export interface ReconcileDeps {
  prisma: PrismaClient;
  config: Config;
  logger: Logger;
  metrics: Metrics;
  now: () => Date;
  channel: PaymentChannel;
  channels?: ChannelResolver;
}

/** accountKey of the default (WECHATPAY_* environment) account. */
export const DEFAULT_ACCOUNT = 'default';
/** A run's claim; longer than two bill downloads and the matching of a large day. */
const LEASE_MS = 10 * 60_000;
const SYSTEM = 'system';

export interface AccountRef {
  key: string;
  accountId: string | null;
}

/** Every account whose bills are reconciled: the default one and each merchant's channel account. */
export async function reconcilableAccounts(prisma: PrismaClient): Promise<AccountRef[]> {
  const rows = await prisma.channelAccount.findMany({ select: { id: true }, orderBy: { createdAt: 'asc' } });
  return [{ key: DEFAULT_ACCOUNT, accountId: null }, ...rows.map((a) => ({ key: a.id, accountId: a.id }))];
}

export async function accountRef(prisma: PrismaClient, key: string): Promise<AccountRef | null> {
  if (key === DEFAULT_ACCOUNT) return { key, accountId: null };
  const a = await prisma.channelAccount.findUnique({ where: { id: key }, select: { id: true } });
  return a ? { key: a.id, accountId: a.id } : null;
}

/** The run row of (account, day), created when missing. */
export async function ensureRun(prisma: PrismaClient, account: AccountRef, billDate: string) {
  await prisma.reconciliationRun.createMany({ data: [{ id: newId('rcn'), accountKey: account.key, accountId: account.accountId, billDate }], skipDuplicates: true });
  return prisma.reconciliationRun.findUniqueOrThrow({ where: { accountKey_billDate: { accountKey: account.key, billDate } } });
}

/**
 * Claims a run by compare-and-set on its lease: one process at a time, whichever instance it is.
 * `force` (a re-run by hand) also takes runs that are done or not yet due. Returns the lease (its
 * end), which every later write of this attempt names: a process whose lease expired and was taken
 * over writes nothing.
 */
export async function claimRun(prisma: PrismaClient, runId: string, now: Date, force = false): Promise<Date | null> {
  // Millisecond precision (PostgreSQL keeps microseconds, JavaScript milliseconds): equality must hold.
  const lease = new Date(now.getTime() + LEASE_MS);
  const claimed = await prisma.reconciliationRun.updateMany({
    where: {
      id: runId,
      OR: [{ leaseUntil: null }, { leaseUntil: { lt: now } }],
      ...(force ? {} : { status: { in: ['pending', 'retrying'] }, nextAttemptAt: { lte: now } }),
    },
    data: { leaseUntil: lease, attempts: { increment: 1 } },
  });
  return claimed.count === 1 ? lease : null;
}

/** Lost the run's lease to another process: this attempt stops and writes nothing. */
class LeaseLost extends Error {}

const EMPTY_BILL: ParsedBill = { header: [], rows: [], summaryHeader: [], summary: null };

async function readBill(channel: PaymentChannel, kind: BillKind, day: string): Promise<ParsedBill> {
  const bytes = await channel.fetchBill(kind, day);
  return bytes === null ? EMPTY_BILL : parseBill(bytes, BILL_COLUMNS[kind]);
}

interface Found extends BillMismatch {
  bill: BillKind;
  resolvedBy?: string;
  note?: string;
}

/**
 * The worst case: the channel billed a payment we never recorded (notify lost, never queried). If the
 * order is ours, ask the channel (never trust the bill alone) and record it through the payment path,
 * which settles a checkout exactly once however many reporters race.
 */
async function recoverPayment(d: ReconcileDeps, channel: PaymentChannel, accountId: string | null, outTradeNo: string): Promise<boolean> {
  const order = await d.prisma.channelOrder.findUnique({ where: { outTradeNo }, select: { accountId: true, status: true } });
  if (!order || (order.accountId ?? null) !== accountId) return false;
  const tx = await channel.queryOrder(outTradeNo);
  if (tx?.tradeState !== 'SUCCESS' && tx?.tradeState !== 'REFUND') return false;
  try {
    const r = await applyPaidTransaction(d.prisma, channel.name, tx, d.now(), accountId);
    d.logger.warn({ outTradeNo, outcome: r.outcome, checkoutId: r.checkoutId }, 'reconciliation: payment found in the bill recorded');
    return true;
  } catch (err) {
    if (!(err instanceof PaymentMismatch)) throw err;
    d.logger.error({ outTradeNo, code: err.code }, `reconciliation: billed payment cannot be recorded: ${err.message}`);
    return false;
  }
}

export interface RunResult {
  runId: string;
  accountKey: string;
  billDate: string;
  status: 'succeeded' | 'retrying' | 'failed';
  open: number;
  mismatches: number;
  recovered: number;
  error?: string;
}

/** Does a claimed run; never throws for channel or bill trouble (the run records it and is retried). */
export async function executeRun(d: ReconcileDeps, runId: string, lease: Date): Promise<RunResult> {
  const run = await d.prisma.reconciliationRun.findUniqueOrThrow({ where: { id: runId } });
  const base = { runId, accountKey: run.accountKey, billDate: run.billDate };
  try {
    const channel = await channelsOf(d).forAccount(run.accountId);
    const trade = await readBill(channel, 'trade', run.billDate);
    const sharing = await readBill(channel, 'profitsharing', run.billDate);
    const billed = {
      outTradeNos: trade.rows.filter((r) => col(r, '交易状态') !== 'REFUND').map((r) => col(r, '商户订单号')),
      outRefundNos: trade.rows.filter((r) => col(r, '交易状态') === 'REFUND').map((r) => col(r, '商户退款单号')),
      outOrderNos: sharing.rows.map((r) => col(r, '商户分账/回退单号')),
    };
    const ours = await loadOurRecords(d.prisma, run.accountId, run.billDate, billed);
    const t = matchTradeBill(trade, ours);
    const s = matchProfitSharingBill(sharing, ours.splits);
    const found: Found[] = [...t.mismatches.map((m) => ({ ...m, bill: 'trade' as const })), ...s.mismatches.map((m) => ({ ...m, bill: 'profitsharing' as const }))];

    let recovered = 0;
    for (const m of found) {
      const unrecorded = m.kind === 'PAYMENT_MISSING_OURS' || (m.kind === 'PAYMENT_STATE_DIFFERS' && m.ours === 'unpaid');
      if (unrecorded && (await recoverPayment(d, channel, run.accountId, m.ref))) {
        recovered++;
        m.resolvedBy = SYSTEM;
        m.note = '账单中的支付已经订单查询确认并入账 · Payment confirmed by an order query and recorded';
      }
    }
    const totals = { payments: t.payments, refunds: t.refunds, paidFen: t.paidFen, refundedFen: t.refundedFen, feesFen: t.feesFen, splitFen: s.splitFen, returnedFen: s.returnedFen, recovered };
    const { created, open } = await storeResult(d, { ...run, lease }, found, totals);
    const counter = billMismatchesFound(d.metrics);
    for (const m of created) counter.inc({ bill: m.bill, kind: m.kind });
    d.logger[open ? 'warn' : 'info']({ ...base, mismatches: found.length, open, recovered }, 'bill reconciliation done');
    return { ...base, status: 'succeeded', open, mismatches: found.length, recovered };
  } catch (err) {
    if (err instanceof LeaseLost) return { ...base, status: 'retrying', error: err.message, open: 0, mismatches: 0, recovered: 0 };
    if (!(err instanceof ChannelError) && !(err instanceof BillFormatError)) {
      await giveBack(d, { ...run, lease }, err);
      throw err;
    }
    return { ...base, ...(await giveBack(d, { ...run, lease }, err)), open: 0, mismatches: 0, recovered: 0 };
  }
}

/** A failed attempt: the previous result stays; retried after RECONCILE_BILLS_RETRY_MS, or failed for good. */
async function giveBack(d: ReconcileDeps, run: { id: string; attempts: number; lease: Date }, err: unknown): Promise<{ status: 'retrying' | 'failed'; error: string }> {
  const error = err instanceof ChannelError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
  const status = run.attempts >= d.config.RECONCILE_BILLS_MAX_ATTEMPTS ? 'failed' : 'retrying';
  await d.prisma.reconciliationRun.updateMany({
    where: { id: run.id, leaseUntil: run.lease, status: { in: runSourcesOf(status) } },
    data: { status, lastError: error.slice(0, 1000), leaseUntil: null, nextAttemptAt: new Date(d.now().getTime() + d.config.RECONCILE_BILLS_RETRY_MS) },
  });
  d.logger.warn({ runId: run.id, status, error }, 'bill reconciliation attempt failed');
  return { status, error };
}

const sameLine = (a: { bill: string; kind: string; ref: string }, b: { bill: string; kind: string; ref: string }) => a.bill === b.bill && a.kind === b.kind && a.ref === b.ref;

/**
 * Replaces the run's mismatches in one transaction with the run's totals and the webhook events of
 * lines not in the previous result (a re-run does not notify the same line twice). A person's
 * resolution of an identical line (same values) is kept. Returns the newly found lines and how many stay open.
 */
async function storeResult(d: ReconcileDeps, run: { id: string; billDate: string; lease: Date }, found: Found[], totals: Record<string, number>): Promise<{ created: Found[]; open: number }> {
  const owners = await Promise.all(found.map((m) => ownerOf(d.prisma, m.bill, m.kind, m.ref)));
  const fallbackMerchant = await accountMerchant(d.prisma, run.id);
  return d.prisma.$transaction(async (db) => {
    // First, and under the row lock: only the lease holder replaces the result.
    const mine = await db.reconciliationRun.updateMany({
      where: { id: run.id, leaseUntil: run.lease, status: { in: runSourcesOf('succeeded') } },
      data: { ...totals, status: 'succeeded', lastError: null, leaseUntil: null, finishedAt: d.now() },
    });
    if (mine.count === 0) throw new LeaseLost(`run ${run.id}: the lease was taken over; this attempt wrote nothing`);
    const previous = await db.billMismatch.findMany({ where: { runId: run.id } });
    await db.billMismatch.deleteMany({ where: { runId: run.id } });
    const fresh: Found[] = [];
    let open = 0;
    for (const [i, m] of found.entries()) {
      const before = previous.find((p) => sameLine(p, m));
      const kept = before && before.status === 'resolved' && before.ours === (m.ours ?? null) && before.theirs === (m.theirs ?? null) ? before : null;
      const owner = owners[i];
      const merchantId = owner?.merchantId ?? fallbackMerchant;
      const resolved = m.resolvedBy ? { resolvedBy: m.resolvedBy, note: m.note ?? null, resolvedAt: d.now() } : kept ? { resolvedBy: kept.resolvedBy, note: kept.note, resolvedAt: kept.resolvedAt } : null;
      const row = await db.billMismatch.create({
        data: {
          id: before?.id ?? newId('bmm'),
          runId: run.id,
          billDate: run.billDate,
          bill: m.bill,
          kind: m.kind,
          ref: m.ref,
          ours: m.ours ?? null,
          theirs: m.theirs ?? null,
          detail: m.detail,
          merchantId,
          checkoutId: owner?.checkoutId ?? null,
          status: resolved ? 'resolved' : 'open',
          ...(resolved ?? {}),
        },
      });
      if (!resolved) open++;
      if (before) continue;
      fresh.push(m);
      if (merchantId && !resolved)
        await publishEvent(db, { merchantId, type: 'reconciliation.mismatch', checkoutId: row.checkoutId, object: { kind: 'bill_mismatch', id: row.id } });
    }
    return { created: fresh, open };
  });
}

/** A merchant's own account (direct or sub-merchant): its bill's lines are that merchant's. The default account serves many. */
async function accountMerchant(prisma: PrismaClient, runId: string): Promise<string | null> {
  const run = await prisma.reconciliationRun.findUniqueOrThrow({ where: { id: runId }, select: { accountId: true } });
  if (!run.accountId) return null;
  return (await prisma.channelAccount.findUnique({ where: { id: run.accountId }, select: { merchantId: true } }))?.merchantId ?? null;
}

/**
 * Reconciles a day now (CLI, tests): every account (or one), re-running days already done. A run
 * another process holds is reported as such, not waited for.
 */
export async function reconcileDay(d: ReconcileDeps, billDate: string, only?: AccountRef): Promise<Array<RunResult | { accountKey: string; billDate: string; status: 'busy' }>> {
  const accounts = only ? [only] : await reconcilableAccounts(d.prisma);
  const out: Array<RunResult | { accountKey: string; billDate: string; status: 'busy' }> = [];
  for (const a of accounts) {
    const run = await ensureRun(d.prisma, a, billDate);
    const lease = await claimRun(d.prisma, run.id, d.now(), true);
    out.push(lease ? await executeRun(d, run.id, lease) : { accountKey: a.key, billDate, status: 'busy' });
  }
  return out;
}

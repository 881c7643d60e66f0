/**
 * What the console shows, read straight from the tables the API writes. Every query takes the viewer's
 * scope: a merchant user's merchantId is part of every WHERE, so another merchant's rows are never read
 * (an unknown or foreign id is the same "not found").
 */
import { fenToYuan } from '../../lib/money';
import { beijingDate, beijingDayStart } from '../../lib/beijing';
import { Prisma, type PrismaClient } from '../../lib/prisma';
import { mismatchResolution } from '../splits/split.reconcile';

/** null = an operator (every merchant). */
export type Scope = { merchantId: string | null };

const scoped = (s: Scope, col = Prisma.sql`c.merchant_id`) => (s.merchantId ? Prisma.sql`AND ${col} = ${s.merchantId}` : Prisma.empty);


export interface PeriodFigures {
  created: number;
  paid: number;
  paidFen: number;
  /** paid ÷ created, of the checkouts created in the period. */
  conversion: number | null;
  byTradeType: Array<{ tradeType: string; count: number; fen: number }>;
}

async function period(prisma: PrismaClient, scope: Scope, from: Date): Promise<PeriodFigures> {
  const [counts] = await prisma.$queryRaw<Array<{ created: bigint; created_paid: bigint }>>`
    SELECT count(*) AS created, count(*) FILTER (WHERE c.status = 'paid') AS created_paid
      FROM checkouts c WHERE c.created_at >= ${from} ${scoped(scope)}`;
  const byType = await prisma.$queryRaw<Array<{ trade_type: string; n: bigint; fen: bigint | null }>>`
    SELECT o.trade_type::text AS trade_type, count(DISTINCT c.id) AS n, sum(c.paid_total_fen) AS fen
      FROM checkouts c JOIN channel_orders o ON o.checkout_id = c.id AND o.status = 'paid' AND o.transaction_id = c.transaction_id
     WHERE c.status = 'paid' AND c.paid_at >= ${from} ${scoped(scope)}
     GROUP BY o.trade_type ORDER BY o.trade_type`;
  const byTradeType = byType.map((r) => ({ tradeType: r.trade_type, count: Number(r.n), fen: Number(r.fen ?? 0) }));
  const created = Number(counts?.created ?? 0);
  return {
    created,
    paid: byTradeType.reduce((s, r) => s + r.count, 0),
    paidFen: byTradeType.reduce((s, r) => s + r.fen, 0),
    conversion: created ? Number(counts!.created_paid) / created : null,
    byTradeType,
  };
}

export interface Overview {
  today: PeriodFigures;
  last30: PeriodFigures;
  /** Paid fen per Beijing day, oldest first, 30 entries. */
  daily: Array<{ date: string; fen: number; count: number }>;
  splitBacklog: { batches: number; oldestAt: Date | null };
  failedSplits: number;
  openMismatches: number;
  frozenNearDeadline: number;
}

export async function overview(prisma: PrismaClient, scope: Scope, now: Date): Promise<Overview> {
  const todayStart = beijingDayStart(now);
  const from30 = beijingDayStart(now, 29);
  const [today, last30] = [await period(prisma, scope, todayStart), await period(prisma, scope, from30)];
  const days = await prisma.$queryRaw<Array<{ day: string; fen: bigint | null; n: bigint }>>`
    SELECT to_char(c.paid_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD') AS day, sum(c.paid_total_fen) AS fen, count(*) AS n
      FROM checkouts c WHERE c.status = 'paid' AND c.paid_at >= ${from30} ${scoped(scope)} GROUP BY 1`;
  const byDay = new Map(days.map((d) => [d.day, d]));
  const daily = Array.from({ length: 30 }, (_, i) => {
    const date = beijingDate(beijingDayStart(now, 29 - i));
    const d = byDay.get(date);
    return { date, fen: Number(d?.fen ?? 0), count: Number(d?.n ?? 0) };
  });
  const [backlog] = await prisma.$queryRaw<Array<{ n: bigint; oldest: Date | null }>>`
    SELECT count(*) AS n, min(b.created_at) AS oldest FROM split_batches b JOIN checkouts c ON c.id = b.checkout_id
     WHERE b.state IN ('pending', 'processing') ${scoped(scope)}`;
  const [failed] = await prisma.$queryRaw<Array<{ n: bigint }>>`
    SELECT count(*) AS n FROM split_batches b JOIN checkouts c ON c.id = b.checkout_id
     WHERE b.state IN ('failed', 'partially_failed') AND b.updated_at >= ${from30} ${scoped(scope)}`;
  const [mism] = await prisma.$queryRaw<Array<{ n: bigint }>>`
    SELECT count(*) AS n FROM split_mismatches m JOIN checkouts c ON c.id = m.checkout_id
     WHERE NOT (m.detail IS NOT NULL AND jsonb_typeof(m.detail) = 'object' AND m.detail ? 'resolved_at') ${scoped(scope)}`;
  // Bill mismatches may name no checkout of ours (a line only the channel has): scoped by their merchant.
  const [billMism] = await prisma.$queryRaw<Array<{ n: bigint }>>`
    SELECT count(*) AS n FROM bill_mismatches bm WHERE bm.status = 'open' ${scoped(scope, Prisma.sql`bm.merchant_id`)}`;
  const [frozen] = await prisma.$queryRaw<Array<{ n: bigint }>>`
    SELECT count(*) AS n FROM split_alerts a JOIN checkouts c ON c.id = a.checkout_id
     WHERE a.kind = 'FREEZE_WINDOW_ENDING' AND c.split_finished_at IS NULL ${scoped(scope)}`;
  return {
    today,
    last30,
    daily,
    splitBacklog: { batches: Number(backlog?.n ?? 0), oldestAt: backlog?.oldest ?? null },
    failedSplits: Number(failed?.n ?? 0),
    openMismatches: Number(mism?.n ?? 0) + Number(billMism?.n ?? 0),
    frozenNearDeadline: Number(frozen?.n ?? 0),
  };
}

export interface CheckoutSearch {
  q?: string;
  status?: string;
  /** Yuan as typed ("12.34"), matched exactly. */
  amount?: string;
  /** YYYY-MM-DD (Beijing), inclusive. */
  from?: string;
  to?: string;
}

const STATUSES = new Set(['open', 'paid', 'expired', 'closed']);

/** Exact yuan → fen, or null when it is not an amount. */
export function parseYuan(s: string): number | null {
  const m = /^(\d{1,9})(?:\.(\d{1,2}))?$/.exec(s.trim());
  return m ? Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0')) : null;
}

export async function searchCheckouts(prisma: PrismaClient, scope: Scope, s: CheckoutSearch, limit = 50) {
  const where: Prisma.CheckoutWhereInput[] = [];
  if (scope.merchantId) where.push({ merchantId: scope.merchantId });
  const q = s.q?.trim();
  // Our id, the merchant's out_trade_no, a channel order's out_trade_no or WeChat's transaction_id.
  if (q) where.push({ OR: [{ id: q }, { outTradeNo: q }, { transactionId: q }, { channelOrders: { some: { OR: [{ outTradeNo: q }, { transactionId: q }] } } }] });
  if (s.status && STATUSES.has(s.status)) where.push({ status: s.status as 'open' });
  const fen = s.amount ? parseYuan(s.amount) : null;
  if (fen !== null) where.push({ amountFen: fen });
  const day = (v: string | undefined) => (v && /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00+08:00`)) ? new Date(`${v}T00:00:00+08:00`) : null);
  const from = day(s.from);
  const to = day(s.to);
  if (from) where.push({ createdAt: { gte: from } });
  if (to) where.push({ createdAt: { lt: new Date(to.getTime() + 24 * 3600_000) } });
  return prisma.checkout.findMany({
    where: { AND: where },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: limit,
    include: { merchant: { select: { name: true } } },
  });
}

export interface TimelineEntry {
  at: Date;
  kind: 'checkout' | 'channel_order' | 'notify' | 'split' | 'receiver' | 'unfreeze' | 'mismatch' | 'alert' | 'event' | 'refund' | 'webhook' | 'action';
  title: string;
  detail?: string;
  tone?: 'ok' | 'warn' | 'err';
  /** Console actions on this entry (each opens its confirm page). */
  links?: Array<{ href: string; label: string }>;
}

export async function checkoutTimeline(prisma: PrismaClient, scope: Scope, id: string) {
  const checkout = await prisma.checkout.findFirst({
    where: { id, ...(scope.merchantId ? { merchantId: scope.merchantId } : {}) },
    include: {
      merchant: { select: { name: true } },
      channelOrders: { orderBy: { createdAt: 'asc' } },
      splits: { orderBy: { seq: 'asc' }, include: { batches: { orderBy: { seq: 'asc' }, include: { receivers: { orderBy: { position: 'asc' } } } } } },
      splitUnfreeze: true,
      splitMismatches: { orderBy: { firstSeenAt: 'asc' } },
      splitAlerts: { orderBy: { createdAt: 'asc' } },
    },
  });
  if (!checkout) return null;
  const outTradeNos = checkout.channelOrders.map((o) => o.outTradeNo);
  const [notifies, events, audit, refunds, merchantEvents, billMismatches] = await Promise.all([
    outTradeNos.length ? prisma.notifyLog.findMany({ where: { outTradeNo: { in: outTradeNos } }, orderBy: { receivedAt: 'asc' }, take: 200 }) : [],
    prisma.outboxEvent.findMany({ where: { aggregateId: checkout.id }, orderBy: { id: 'asc' }, take: 200 }),
    prisma.consoleAudit.findMany({ where: { target: { startsWith: checkout.id } }, orderBy: { createdAt: 'asc' }, take: 200 }),
    prisma.refund.findMany({ where: { checkoutId: checkout.id }, orderBy: { seq: 'asc' }, take: 200 }),
    prisma.merchantEvent.findMany({ where: { checkoutId: checkout.id, merchantId: checkout.merchantId }, orderBy: { seq: 'asc' }, take: 200 }),
    prisma.billMismatch.findMany({ where: { checkoutId: checkout.id }, orderBy: { createdAt: 'asc' }, take: 200 }),
  ]);
  const [users, deliveries] = await Promise.all([
    audit.length ? prisma.consoleUser.findMany({ where: { id: { in: [...new Set(audit.map((a) => a.userId))] } }, select: { id: true, email: true } }) : [],
    merchantEvents.length ? prisma.webhookDelivery.findMany({ where: { eventId: { in: merchantEvents.map((e) => e.id) } }, orderBy: { createdAt: 'asc' } }) : [],
  ]);
  const emailOf = new Map(users.map((u) => [u.id, u.email]));
  const actions = audit.map((a) => ({ ...a, by: emailOf.get(a.userId) ?? a.userId }));
  const base = `/console/checkouts/${encodeURIComponent(checkout.id)}`;
  const t: TimelineEntry[] = [{ at: checkout.createdAt, kind: 'checkout', title: 'created 创建', detail: `${checkout.outTradeNo} · ${checkout.description}` }];
  if (checkout.paidAt) t.push({ at: checkout.paidAt, kind: 'checkout', title: 'paid 已支付', detail: `${checkout.transactionId ?? ''}`, tone: 'ok' });
  if (checkout.status === 'expired' || checkout.status === 'closed') t.push({ at: checkout.updatedAt, kind: 'checkout', title: `${checkout.status} ${checkout.status === 'expired' ? '已过期' : '已关闭'}` });
  for (const o of checkout.channelOrders)
    t.push({ at: o.createdAt, kind: 'channel_order', title: `${o.tradeType} order 下单`, detail: `${o.outTradeNo} · ${o.mchid} · ${o.status}`, tone: o.status === 'paid' ? 'ok' : undefined });
  for (const n of notifies)
    t.push({ at: n.receivedAt, kind: 'notify', title: `notify 通知: ${n.outcome}`, detail: n.error ?? n.eventId ?? undefined, tone: /applied|duplicate/.test(n.outcome) ? 'ok' : n.outcome === 'received' ? undefined : 'err' });
  for (const sp of checkout.splits)
    for (const b of sp.batches) {
      t.push({
        at: b.createdAt, kind: 'split', title: `split batch 分账批次 ${b.outOrderNo}: ${b.state}`,
        detail: [`${b.amountFen} fen`, b.failCode && `${b.failCode} ${b.failMessage ?? ''}`].filter(Boolean).join(' · '),
        tone: b.state === 'succeeded' ? 'ok' : b.state.includes('fail') ? 'err' : undefined,
        links: b.state.includes('fail') ? [{ href: `${base}/batches/${encodeURIComponent(b.outOrderNo)}/retry`, label: '重试 Retry' }] : undefined,
      });
      for (const r of b.receivers)
        if (r.finishedAt) t.push({ at: r.finishedAt, kind: 'receiver', title: `receiver 接收方 ${r.account}: ${r.state}`, detail: [`${r.amountFen} fen`, r.failReason].filter(Boolean).join(' · '), tone: r.state === 'SUCCESS' ? 'ok' : 'err' });
    }
  if (checkout.splitUnfreeze) {
    const u = checkout.splitUnfreeze;
    t.push({ at: u.finishedAt ?? u.createdAt, kind: 'unfreeze', title: `unfreeze 解冻: ${u.state}`, detail: u.amountFen !== null ? `${u.amountFen} fen` : undefined, tone: u.state === 'succeeded' ? 'ok' : u.state === 'failed' ? 'err' : undefined });
  }
  for (const m of checkout.splitMismatches) {
    const res = mismatchResolution(m.detail);
    const by = res.detail && typeof res.detail === 'object' && 'resolved_by' in res.detail ? (res.detail as { resolved_by: string; resolution_note?: string }) : null;
    t.push({
      at: m.firstSeenAt, kind: 'mismatch', title: `mismatch 对账不符 ${m.kind}${res.resolvedAt ? ' (resolved 已解决)' : ''}`,
      detail: [`${m.message} ×${m.occurrences}`, by && `${by.resolved_by}: ${by.resolution_note ?? ''}`].filter(Boolean).join(' · '),
      tone: res.resolvedAt ? undefined : 'warn',
      links: res.resolvedAt ? undefined : [{ href: `${base}/mismatches/${encodeURIComponent(m.id)}/resolve`, label: '处理 Resolve' }],
    });
  }
  for (const m of billMismatches)
    t.push({
      at: m.createdAt, kind: 'mismatch', title: `bill mismatch 账单不符 ${m.billDate} ${m.bill} ${m.kind}${m.status === 'open' ? '' : ` (${m.status})`}`,
      detail: [m.detail, m.note && `${m.resolvedBy ?? ''}: ${m.note}`].filter(Boolean).join(' · '),
      tone: m.status === 'open' ? 'warn' : undefined,
      links: [{ href: `/console/reconciliation/mismatches/${encodeURIComponent(m.id)}`, label: m.status === 'open' ? '处理 Resolve' : '查看 View' }],
    });
  for (const a of checkout.splitAlerts) t.push({ at: a.createdAt, kind: 'alert', title: `alert 提醒 ${a.kind}`, detail: a.message, tone: 'warn' });
  for (const e of events)
    t.push({ at: e.createdAt, kind: 'event', title: `event 事件 ${e.type}`, detail: e.processedAt ? `handled after ${e.attempts} attempt(s)` : `pending, ${e.attempts} attempt(s)${e.lastError ? `: ${e.lastError}` : ''}` });
  for (const r of refunds)
    t.push({ at: r.createdAt, kind: 'refund', title: `refund 退款 ${r.id} ¥${fenToYuan(r.amountFen)}: ${r.status}`, detail: [r.reason, r.failureReason].filter(Boolean).join(' · ') || undefined, tone: r.status === 'succeeded' ? 'ok' : r.status === 'failed' ? 'err' : undefined });
  for (const e of merchantEvents) {
    const ds = deliveries.filter((d) => d.eventId === e.id);
    t.push({
      at: e.createdAt, kind: 'webhook', title: `webhook ${e.type}`,
      detail: ds.length ? ds.map((d) => `${d.endpointId}: ${d.status} (${d.attempts} attempt(s))`).join(' · ') : 'no endpoint 无端点',
      tone: ds.some((d) => d.status === 'failed') ? 'err' : ds.length && ds.every((d) => d.status === 'delivered') ? 'ok' : undefined,
      links: [{ href: `${base}/events/${encodeURIComponent(e.id)}/redeliver`, label: '重新推送 Redeliver' }],
    });
  }
  for (const a of actions)
    t.push({ at: a.createdAt, kind: 'action', title: `action 操作 ${a.action} · ${a.by}`, detail: [a.target, a.note, a.outcome ?? 'in progress 进行中'].filter(Boolean).join(' · ') });
  t.sort((a, b) => a.at.getTime() - b.at.getTime());
  return { checkout, timeline: t, actions };
}

export interface ReceiverTotals {
  account: string;
  type: string;
  succeededFen: number;
  inFlightFen: number;
  closedFen: number;
  receivers: number;
}

/** What was split to each receiver account; days are Beijing days of the channel's answer (or the send). */
export async function receiverTotals(prisma: PrismaClient, scope: Scope, opts: { byDay?: boolean; account?: string } = {}) {
  const acc = opts.account ? Prisma.sql`AND r.account = ${opts.account}` : Prisma.empty;
  const day = opts.byDay ? Prisma.sql`to_char(coalesce(r.finished_at, b.sent_at, b.created_at) AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')` : Prisma.sql`''`;
  const rows = await prisma.$queryRaw<Array<{ day: string; account: string; type: string; ok: bigint; flight: bigint; closed: bigint; n: bigint }>>`
    SELECT ${day} AS day, r.account, r.type,
           coalesce(sum(r.amount_fen) FILTER (WHERE r.state = 'SUCCESS'), 0) AS ok,
           coalesce(sum(r.amount_fen) FILTER (WHERE r.state = 'PENDING' AND b.state NOT IN ('failed')), 0) AS flight,
           coalesce(sum(r.amount_fen) FILTER (WHERE r.state = 'CLOSED'), 0) AS closed,
           count(*) AS n
      FROM split_receivers r JOIN split_batches b ON b.id = r.batch_id JOIN checkouts c ON c.id = r.checkout_id
     WHERE true ${scoped(scope)} ${acc}
     GROUP BY 1, 2, 3 ORDER BY 1 DESC, 4 DESC, 2 LIMIT 2000`;
  return rows.map((r) => ({ day: r.day, account: r.account, type: r.type, succeededFen: Number(r.ok), inFlightFen: Number(r.flight), closedFen: Number(r.closed), receivers: Number(r.n) }));
}

import { Pool } from 'pg';
import { modules, outboxHandlers } from '../../src/gateway';
import { createPrisma, type PrismaClient } from '../../src/lib/prisma';
import { dispatchOutboxOnce } from '../../src/jobs/outbox.dispatcher';
import { SWEEP_BATCH, sweepExpiredCheckouts } from '../../src/modules/payments/payment.sync';
import { alertFrozenFunds, kickStalled } from '../../src/modules/splits/split.reconcile';
import { purgeNotifyLogs } from '../../src/modules/payments/payment.notify';
import { WebhookDispatcher } from '../../src/modules/webhooks/webhook.dispatcher';
import { eventRenderers } from '../../src/modules/webhooks/webhook.module';
import { observedPool } from '../support/observed-pool';
import { beijingDate } from '../../src/lib/beijing';
import { loadOurRecords } from '../../src/modules/reconciliation/reconcile.records';
import { checkoutBody, startHarness, type Harness } from '../support/harness';
import { startReceiver } from '../support/webhook-receiver';

/**
 * Background loops read what their work costs, not what the tables hold: each statement of a pass is
 * replayed under EXPLAIN (ANALYZE, BUFFERS) with its own parameters and must touch few pages while
 * thousands of rows are done. No timing: page counts.
 *   - webhook dispatcher: thousands of deliveries and events done, a thousand pending behind their
 *     checkouts' first events (before: the claim's window read every pending row, 18 ms per claim at
 *     2,000 pending; the renderer walked every rendered event in seq order);
 *   - sweeper: 20,000 ended checkouts (before: the typed OR with an EXISTS per row read every
 *     checkout that ever ended, 447-733 pages);
 *   - outbox: 20,000 processed rows before a few new ones (rows are never purged, and a walk of the
 *     primary key in claim order would pass every processed row);
 *   - frozen-funds alert: 20,000 profit-sharing payments of past months (before: every paid
 *     profit-sharing payment past its alert point, checked against its unfreeze and alerts).
 */
const DONE = 3000;
const PENDING_CHECKOUTS = 100;
const PER_CHECKOUT = 10;
/** Pages one statement of a pass may touch here; the old statements touched thousands. */
const PAGES = 300;

let h: Harness;

/** Replays each read under EXPLAIN (ANALYZE, BUFFERS) with its own parameters; fails above PAGES. */
async function withinPages(reads: Array<{ text: string; values: unknown[] }>, o: { rollback?: boolean } = {}) {
  const explain = new Pool({ connectionString: h.db.url, max: 1 });
  const client = await explain.connect();
  try {
    for (const r of reads) {
      if (o.rollback) await client.query('BEGIN');
      const [{ 'QUERY PLAN': plan }] = (await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${r.text}`, r.values)).rows as Array<{ 'QUERY PLAN': Array<{ Plan: Record<string, number> }> }>;
      if (o.rollback) await client.query('ROLLBACK');
      const pages = plan[0]!.Plan['Shared Hit Blocks']! + plan[0]!.Plan['Shared Read Blocks']!;
      if (pages > PAGES) throw new Error(`${pages} pages (budget ${PAGES}) for:\n${r.text}`);
    }
  } finally {
    client.release();
    await explain.end();
  }
}
const readsOf = (statements: Array<{ text: string; values: unknown[] }>) => statements.filter((s) => /^\s*(SELECT|WITH RECURSIVE)/i.test(s.text));
let pool: Pool;
let prisma: PrismaClient;
const seen: Array<{ text: string; values: unknown[] }> = [];

beforeAll(async () => {
  // The sweeper runs only when a test calls it (or starts the loops).
  h = await startHarness({ env: { SWEEPER_INTERVAL_MS: '600000' } });
  pool = observedPool(h.db.url, (q) => seen.push(q));
  prisma = createPrisma(pool);
});
afterAll(async () => {
  await prisma?.$disconnect();
  await pool?.end();
  await h?.close();
});

it('When thousands of deliveries are done and a thousand wait behind their checkouts, then a dispatcher pass sends each checkout\'s first event and none of its statements reads more than a few pages', async () => {
  const rx = await startReceiver();
  try {
    const ep = (await h.api('post', '/v1/webhook_endpoints').send({ url: rx.url }).expect(201)).body as { id: string };
    const body = `json_build_object('id', e.id, 'type', 'checkout.closed', 'data', json_build_object('object', json_build_object('id', e.checkout_id)))::text`;
    await h.db.prisma.$executeRawUnsafe(`
      INSERT INTO merchant_events (id, merchant_id, type, checkout_id, object_kind, object_id, body, rendered_at)
      SELECT 'evt_done_' || g, 'mch_test', 'checkout.closed', 'co_done_' || (g % 500), 'checkout', 'co_done_' || (g % 500), '{}', now()
        FROM generate_series(1, ${DONE}) g`);
    await h.db.prisma.$executeRawUnsafe(`
      INSERT INTO webhook_deliveries (id, event_id, endpoint_id, checkout_id, event_seq, status, attempts, delivered_at, updated_at)
      SELECT 'whd_' || e.id, e.id, '${ep.id}', e.checkout_id, e.seq, 'delivered', 1, now(), now()
        FROM merchant_events e WHERE e.id LIKE 'evt_done_%'`);
    // Pending: event k of checkout c, published round-robin (as a burst of payments' events would be).
    await h.db.prisma.$executeRawUnsafe(`
      INSERT INTO merchant_events (id, merchant_id, type, checkout_id, object_kind, object_id, rendered_at)
      SELECT 'evt_wait_' || k || '_' || c, 'mch_test', 'checkout.closed', 'co_wait_' || c, 'checkout', 'co_wait_' || c, now()
        FROM generate_series(1, ${PER_CHECKOUT}) k, generate_series(1, ${PENDING_CHECKOUTS}) c ORDER BY k, c`);
    await h.db.prisma.$executeRawUnsafe(`UPDATE merchant_events e SET body = ${body} WHERE id LIKE 'evt_wait_%'`);
    await h.db.prisma.$executeRawUnsafe(`
      INSERT INTO webhook_deliveries (id, event_id, endpoint_id, checkout_id, event_seq, updated_at)
      SELECT 'whd_' || e.id, e.id, '${ep.id}', e.checkout_id, e.seq, now() FROM merchant_events e WHERE e.id LIKE 'evt_wait_%'`);
    await h.db.prisma.$executeRawUnsafe('ANALYZE merchant_events, webhook_deliveries');

    const dispatcher = new WebhookDispatcher({ ...h.deps, prisma }, eventRenderers({ ...h.deps, prisma }, modules));
    seen.length = 0;
    try {
      // One endpoint gets a quarter of the slots, each for a checkout's first event.
      expect(await dispatcher.tick()).toBe(dispatcher.perEndpoint);
    } finally {
      await dispatcher.close(); // no more claims; the sends in flight (and any their completions started) finish
    }
    const got = rx.got.map((g) => g.json.id as string);
    expect(got.slice(0, dispatcher.perEndpoint).every((id) => id.startsWith('evt_wait_1_'))).toBe(true);
    // Every checkout's events arrived in order, none twice.
    const next = new Map<string, number>();
    for (const id of got) {
      const [, k, c] = /^evt_wait_(\d+)_(\d+)$/.exec(id)!;
      expect(Number(k)).toBe((next.get(c!) ?? 0) + 1);
      next.set(c!, Number(k));
    }

    const reads = readsOf(seen);
    expect(reads.some((r) => r.text.includes('webhook_deliveries'))).toBe(true); // the claim
    expect(reads.some((r) => r.text.includes('merchant_events') && r.text.includes('rendered_at'))).toBe(true); // the renderer's list
    await withinPages(reads);
  } finally {
    await rx.close();
  }
});

it('When 20,000 checkouts have ended and a few are due, then a sweep handles the due ones and its read touches few pages', async () => {
  // History: ended long ago, orders closed and marked done (as the sweeper leaves them).
  await h.db.prisma.$executeRawUnsafe(`
    INSERT INTO checkouts (id, merchant_id, out_trade_no, amount_fen, description, expires_at, updated_at, status, orders_closed_at)
    SELECT 'co_hist' || lpad(g::text, 18, '0'), 'mch_test', 'hist_' || g, 100, 'history', now() - interval '2 days', now(),
           (CASE WHEN g % 2 = 0 THEN 'closed' ELSE 'expired' END)::"CheckoutStatus", now() - interval '2 days'
      FROM generate_series(1, 20000) g`);
  // Due: open past expiry (never opened: no order to close).
  const due = [];
  for (let i = 0; i < 3; i++) due.push((await h.api('post', '/v1/checkouts').send(checkoutBody({ expires_in: 60 })).expect(201)).body.id as string);
  await h.db.prisma.checkout.updateMany({ where: { id: { in: due } }, data: { expiresAt: new Date(Date.now() - 1000) } });
  await h.db.prisma.$executeRawUnsafe('ANALYZE checkouts, channel_orders');

  seen.length = 0;
  expect(await sweepExpiredCheckouts({ ...h.deps, prisma })).toMatchObject({ expired: 3, failed: 0 });
  const reads = readsOf(seen);
  await withinPages(reads);
  expect(reads.some((r) => r.text.includes('orders_closed_at'))).toBe(true);
});

it('When 20,000 profit-sharing payments of past months are done, then the frozen-funds alert reads only the payments of its alert period and alerts the one still frozen there', async () => {
  const h2 = h.db.prisma;
  // History: paid 40-100 days ago, their split windows long over (WeChat unfroze them itself). No
  // alert rows: past help, they are not alerted now (the old read listed them, 500 at a time).
  await h2.$executeRawUnsafe(`
    INSERT INTO checkouts (id, merchant_id, out_trade_no, amount_fen, description, expires_at, updated_at, status, paid_at, profit_sharing, transaction_id)
    SELECT 'co_old' || lpad(g::text, 19, '0'), 'mch_test', 'old_' || g, 1000, 'old', now() - interval '100 days', now(), 'paid',
           now() - interval '40 days' - (g % 60) * interval '1 day', 'on_demand', 'tx_old_' || g
      FROM generate_series(1, 20000) g`);
  // One payment in its alert period (27.5 days ago with a 30-day window, alerts from day 27), still frozen.
  await h2.$executeRawUnsafe(`
    INSERT INTO checkouts (id, merchant_id, out_trade_no, amount_fen, description, expires_at, updated_at, status, paid_at, profit_sharing, transaction_id)
    VALUES ('co_frozen0000000000001', 'mch_test', 'frozen_1', 1000, 'frozen', now() - interval '28 days', now(), 'paid', (now() AT TIME ZONE 'UTC') - interval '27.5 days', 'on_demand', 'tx_frozen_1')`);
  await h2.$executeRawUnsafe('ANALYZE checkouts');

  seen.length = 0;
  const config = { ...h.config, PROFIT_SHARING_WINDOW_DAYS: 30, PROFIT_SHARING_ALERT_BEFORE_DAYS: 3 };
  expect(await alertFrozenFunds({ ...h.deps, prisma, config } as Parameters<typeof alertFrozenFunds>[0])).toBe(1);
  expect(await h2.splitAlert.findMany({ where: { kind: 'FREEZE_WINDOW_ENDING' }, select: { checkoutId: true } })).toEqual([{ checkoutId: 'co_frozen0000000000001' }]);
  await withinPages(readsOf(seen).filter((r) => r.text.includes('paid_at')));
});

it('When 20,000 outbox events are processed and a few are new, then a pass handles the new ones and its claim touches few pages', async () => {
  await h.db.prisma.$executeRawUnsafe(`
    INSERT INTO outbox_events (type, aggregate_id, payload, processed_at, attempts)
    SELECT 't.history', 'done_' || g, jsonb_build_object('checkoutId', 'co_' || lpad(g::text, 20, '0'), 'transactionId', '4200' || lpad(g::text, 24, '0'),
             'outTradeNo', lpad(g::text, 24, '0') || '_N1234', 'amountFen', 1000, 'paidAt', now(), 'profitSharing', 'none'), now(), 1
      FROM generate_series(1, 20000) g`); // a payment.succeeded payload's size
  await h.db.prisma.outboxEvent.createMany({ data: [1, 2, 3].map((i) => ({ type: 't.new', aggregateId: `new_${i}`, payload: {} })) });
  await h.db.prisma.$executeRawUnsafe('ANALYZE outbox_events');
  const handled: string[] = [];
  seen.length = 0;
  expect(await dispatchOutboxOnce({ ...h.deps, prisma }, { 't.new': [async (e) => void handled.push(e.aggregateId)] })).toBe(3);
  expect(handled).toEqual(['new_1', 'new_2', 'new_3']);
  const claim = seen.filter((q) => q.text.includes('outbox_events') && q.text.includes('SKIP LOCKED'));
  expect(claim).toHaveLength(1);
  // The claim is an UPDATE: replayed in a transaction that is rolled back.
  await withinPages(claim, { rollback: true });
});

it('When thousands of payments wait for their follow-ups and 30,000 channel orders exist, then a claim judges only its own rows and touches few pages', async () => {
  // What a claim with the real handlers reads to decide "nothing to do" (the sibling close's check of
  // the checkout's other orders). Judged inside the pick, the planner sized that check by the backlog
  // and read every channel order (a full scan per claim from ~2,000 waiting rows on).
  const n = 30_000;
  await h.db.prisma.$executeRawUnsafe(`
    INSERT INTO checkouts (id, merchant_id, out_trade_no, amount_fen, description, expires_at, updated_at, status, paid_at, transaction_id)
    SELECT 'co_wl' || lpad(g::text, 17, '0'), 'mch_test', 'wl_' || g, 100, 'd', now(), now(), 'paid', now(), 'tx_wl_' || g FROM generate_series(1, ${n}) g`);
  await h.db.prisma.$executeRawUnsafe(`
    INSERT INTO channel_orders (id, checkout_id, channel, trade_type, out_trade_no, payer_key, appid, mchid, updated_at, status)
    SELECT 'chor_wl' || g, 'co_wl' || lpad(g::text, 17, '0'), 'wechatpay', 'NATIVE', 'otn_wl' || g, '', 'a', 'm', now(), 'paid' FROM generate_series(1, ${n}) g`);
  await h.db.prisma.$executeRawUnsafe(`UPDATE outbox_events SET processed_at = now() WHERE processed_at IS NULL`);
  await h.db.prisma.$executeRawUnsafe(`
    INSERT INTO outbox_events (type, aggregate_id, payload)
    SELECT 'payment.succeeded', 'co_wl' || lpad(g::text, 17, '0'), '{"profitSharing":"none"}' FROM generate_series(1, 3000) g`);
  for (const t of ['checkouts', 'channel_orders', 'outbox_events']) await h.db.prisma.$executeRawUnsafe(`ANALYZE ${t}`);
  seen.length = 0;
  // A pass of 5: its 5 updates leave the page budget to the reads (each non-HOT update is ~15 pages).
  expect(await dispatchOutboxOnce({ ...h.deps, prisma }, outboxHandlers({ ...h.deps, prisma }), { batch: 5 })).toBe(5);
  expect(await h.db.prisma.outboxEvent.count({ where: { type: 'payment.succeeded', processedAt: { not: null }, aggregateId: { startsWith: 'co_wl' } } })).toBe(5);
  const claim = seen.filter((q) => q.text.includes('outbox_events') && q.text.includes('SKIP LOCKED'));
  expect(claim).toHaveLength(1);
  await withinPages(claim, { rollback: true });
  await h.db.prisma.$executeRawUnsafe(`UPDATE outbox_events SET processed_at = now() WHERE processed_at IS NULL`);
});

/**
 * A channel account's ledger in SQL: n paid checkouts, each with its paid channel order, a sent refund,
 * a sent split batch with one receiver and a succeeded return, all at `at` (an SQL expression of g, the
 * row's number). Numbers: otn_/crn_/oon_/orn_ + prefix + g.
 */
async function seedLedger(prefix: string, n: number, at: string) {
  const q = n;
  const run = (sql: string) => h.db.prisma.$executeRawUnsafe(sql);
  await run(`INSERT INTO checkouts (id, merchant_id, out_trade_no, amount_fen, description, expires_at, updated_at, status, paid_at, transaction_id, channel)
    SELECT 'co_${prefix}' || g, 'mch_test', 'm_${prefix}' || g, 1000, 'ledger', ${at}, now(), 'paid', ${at}, 'tx_${prefix}' || g, 'wechatpay' FROM generate_series(1, ${n}) g`);
  await run(`INSERT INTO channel_orders (id, checkout_id, channel, trade_type, out_trade_no, payer_key, appid, mchid, updated_at, status, transaction_id)
    SELECT 'chor_${prefix}' || g, 'co_${prefix}' || g, 'wechatpay', 'NATIVE', 'otn_${prefix}' || g, '', 'a', 'm', now(), 'paid', 'tx_${prefix}' || g FROM generate_series(1, ${n}) g`);
  await run(`INSERT INTO refunds (id, checkout_id, merchant_id, seq, amount_fen, out_refund_no, channel_refund_no, status, channel_refund_id, sent_at, updated_at)
    SELECT 'rf_${prefix}' || g, 'co_${prefix}' || g, 'mch_test', 1, 100, 'crn_${prefix}' || g, 'crn_${prefix}' || g, 'succeeded', 'rid_${prefix}' || g, ${at}, now() FROM generate_series(1, ${q}) g`);
  await run(`INSERT INTO splits (id, checkout_id, seq, kind, total_fen) SELECT 'sp_${prefix}' || g, 'co_${prefix}' || g, 1, 'planned', 100 FROM generate_series(1, ${q}) g`);
  await run(`INSERT INTO split_batches (id, split_id, checkout_id, seq, out_order_no, state, amount_fen, sent_at, updated_at)
    SELECT 'sb_${prefix}' || g, 'sp_${prefix}' || g, 'co_${prefix}' || g, 1, 'oon_${prefix}' || g, 'succeeded', 100, ${at}, now() FROM generate_series(1, ${q}) g`);
  await run(`INSERT INTO split_receivers (id, batch_id, checkout_id, position, type, account, amount_fen, description, state, updated_at)
    SELECT 'sr_${prefix}' || g, 'sb_${prefix}' || g, 'co_${prefix}' || g, 1, 'MERCHANT_ID', '1900000109', 100, 'ledger', 'SUCCESS', now() FROM generate_series(1, ${q}) g`);
  await run(`INSERT INTO refund_returns (id, refund_id, checkout_id, position, account, out_order_no, amount_fen, out_return_no, state, finished_at, updated_at)
    SELECT 'rr_${prefix}' || g, 'rf_${prefix}' || g, 'co_${prefix}' || g, 1, '1900000109', 'oon_${prefix}' || g, 50, 'orn_${prefix}' || g, 'succeeded', ${at}, now() FROM generate_series(1, ${q}) g`);
}

it('When an account has 40,000 payments (each refunded, split and returned) on other days, then the reconciliation of a day reads that day\'s records and the billed ones, not the history', async () => {
  // The day: 10 days ago in Beijing, 10 payments (each refunded, split and returned) at its noon.
  const day = beijingDate(new Date(Date.now() - 10 * 86_400_000));
  const noon = `'${day}T12:00:00+08:00'::timestamptz AT TIME ZONE 'UTC'`;
  // History: 12 to 92 days ago, 500 payments a day spread over its hours (timestamps as real ones are:
  // a few shared values would be taken for frequent ones and skew the planner's estimate of a day).
  await seedLedger('hist', 40_000, `(now() AT TIME ZONE 'UTC') - interval '12 days' - (g % 80) * interval '1 day' - (g * 7 % 86400) * interval '1 second'`);
  await seedLedger('day', 10, noon);
  for (const t of ['checkouts', 'channel_orders', 'refunds', 'split_batches', 'split_receivers', 'refund_returns']) await h.db.prisma.$executeRawUnsafe(`ANALYZE ${t}`);

  // Billed: the day's numbers, and one of each kind from history (a record the channel billed late).
  const nums = (p: string, n: number) => Array.from({ length: n }, (_, i) => `${p}${i + 1}`);
  const billed = {
    outTradeNos: [...nums('otn_day', 10), 'otn_hist7'],
    outRefundNos: [...nums('crn_day', 10), 'crn_hist7'],
    outOrderNos: [...nums('oon_day', 10), ...nums('orn_day', 10), 'oon_hist7', 'orn_hist7'],
  };
  seen.length = 0;
  const ours = await loadOurRecords(prisma, null, day, billed);
  expect([ours.payments.length, ours.payments.filter((p) => p.dueOnDay).length]).toEqual([11, 10]);
  expect([ours.refunds.length, ours.refunds.filter((r) => r.dueOnDay).length]).toEqual([11, 10]);
  expect([ours.splits.length, ours.splits.filter((s) => s.dueOnDay).length]).toEqual([22, 20]);
  // Read-only statements (a WITH of SELECTs each), so they are replayed as they are.
  const reads = seen.filter((q) => /^\s*(SELECT|WITH)\b/i.test(q.text) && !/\b(INSERT|UPDATE|DELETE)\b/i.test(q.text));
  expect(reads).toHaveLength(3);
  await withinPages(reads);
});

it('When 20,000 verified notifies are within their retention, then the purge of rejected ones finds those due without reading the verified ones', async () => {
  const run = (sql: string) => h.db.prisma.$executeRawUnsafe(sql);
  // Verified (an event id from their insert on), 8 to 170 days old: kept for NOTIFY_RETENTION_DAYS.
  await run(`INSERT INTO notify_logs (id, channel, kind, received_at, headers, body, outcome, event_id, out_trade_no, source_ip, body_bytes)
    SELECT 'ntf_wl_ok_' || g, 'wechatpay', 'payment', (now() AT TIME ZONE 'UTC') - interval '8 days' - (g % 162) * interval '1 day' - (g % 86400) * interval '1 second',
           '{}', repeat('x', 1000), 'applied', 'EV-' || g, 'otn_' || g, '127.0.0.1', 1000 FROM generate_series(1, 20000) g`);
  // Rejected (never decrypted): five past the 7-day retention, three within it.
  await run(`INSERT INTO notify_logs (id, channel, kind, received_at, headers, body, outcome, source_ip, body_bytes)
    SELECT 'ntf_wl_bad_' || g, 'wechatpay', CASE WHEN g % 2 = 0 THEN 'payment' ELSE 'refund' END,
           (now() AT TIME ZONE 'UTC') - CASE WHEN g <= 5 THEN interval '9 days' ELSE interval '1 day' END, '{}', 'forged', 'rejected', '203.0.113.1', 6
      FROM generate_series(1, 8) g`);
  await run('ANALYZE notify_logs');
  seen.length = 0;
  expect(await purgeNotifyLogs(prisma, { retentionDays: 180, rejectedRetentionDays: 7 }, new Date())).toEqual({ rejected: 5, verified: 0 });
  expect(await h.db.prisma.notifyLog.count({ where: { id: { startsWith: 'ntf_wl_' } } })).toBe(20_003);
  const deletes = seen.filter((q) => /^\s*DELETE FROM notify_logs/i.test(q.text));
  expect(deletes).toHaveLength(2);
  await withinPages(deletes, { rollback: true });
});

it('When 40,000 planned payments of past months were split and unfrozen, then the stalled-split check finds the three stalled ones and reads few pages', async () => {
  const run = (sql: string) => h.db.prisma.$executeRawUnsafe(sql);
  // History: planned payments split and unfrozen 40 to 100 days ago.
  await run(`INSERT INTO checkouts (id, merchant_id, out_trade_no, amount_fen, description, expires_at, updated_at, status, paid_at, profit_sharing, split_seq, transaction_id)
    SELECT 'co_plan' || lpad(g::text, 18, '0'), 'mch_test', 'plan_' || g, 1000, 'plan', now() - interval '100 days', now(), 'paid',
           (now() AT TIME ZONE 'UTC') - interval '40 days' - (g % 60) * interval '1 day' - (g % 86400) * interval '1 second', 'planned', 1, 'tx_plan_' || g
      FROM generate_series(1, 40000) g`);
  await run(`INSERT INTO split_unfreezes (id, checkout_id, method, out_order_no, state, updated_at)
    SELECT 'uf_plan' || g, 'co_plan' || lpad(g::text, 18, '0'), 'explicit', 'uf_plan_' || g, 'succeeded', now() - interval '40 days' FROM generate_series(1, 40000) g`);
  // Stalled: two planned payments of yesterday never split, one unfreeze open for an hour.
  await run(`INSERT INTO checkouts (id, merchant_id, out_trade_no, amount_fen, description, expires_at, updated_at, status, paid_at, profit_sharing, split_seq, transaction_id)
    SELECT 'co_stall' || lpad(g::text, 17, '0'), 'mch_test', 'stall_' || g, 1000, 'stalled', now(), now(), 'paid', (now() AT TIME ZONE 'UTC') - interval '1 day',
           CASE WHEN g < 3 THEN 'planned' ELSE 'on_demand' END::"ProfitSharingMode", CASE WHEN g < 3 THEN 0 ELSE 1 END, 'tx_stall_' || g
      FROM generate_series(1, 3) g`);
  await run(`INSERT INTO split_unfreezes (id, checkout_id, method, out_order_no, state, updated_at)
    VALUES ('uf_stall3', 'co_stall' || lpad('3', 17, '0'), 'explicit', 'uf_stall_3', 'processing', (now() AT TIME ZONE 'UTC') - interval '1 hour')`);
  for (const t of ['checkouts', 'split_unfreezes']) await run(`ANALYZE ${t}`);

  const kicked: string[] = [];
  const queue = { prefix: 'test', enqueue: async (_job: string, data: { checkoutId: string }) => void kicked.push(data.checkoutId), close: async () => undefined };
  seen.length = 0;
  expect(await kickStalled({ ...h.deps, prisma } as Parameters<typeof kickStalled>[0], queue)).toBe(3);
  expect(kicked.sort()).toEqual([1, 2, 3].map((g) => `co_stall${String(g).padStart(17, '0')}`));
  const reads = readsOf(seen).filter((r) => /split_unfreezes|split_seq/.test(r.text));
  expect(reads).toHaveLength(2);
  await withinPages(reads);
});

// Last: it starts the background loops, whose outbox dispatcher would take the other tests' events.
it('When more checkouts expire than one sweep batch, then the sweeper loop goes on at once instead of waiting for its next tick', async () => {
  const ids: string[] = [];
  for (let i = 0; i < SWEEP_BATCH + 10; i++) ids.push((await h.api('post', '/v1/checkouts').send(checkoutBody({ expires_in: 60 })).expect(201)).body.id as string);
  await h.db.prisma.checkout.updateMany({ where: { id: { in: ids } }, data: { expiresAt: new Date(Date.now() - 1000) } });
  await h.startBackground(); // the sweeper's first tick; the next would be 10 minutes later
  const end = Date.now() + 20_000;
  while ((await h.db.prisma.checkout.count({ where: { id: { in: ids }, status: 'expired' } })) < ids.length) {
    if (Date.now() > end) throw new Error('not every expired checkout was swept by the first run of the loop');
    await new Promise((r) => setTimeout(r, 100));
  }
});

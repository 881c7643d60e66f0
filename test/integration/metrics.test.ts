import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { Queue } from 'bullmq';
import { createSplitQueue, queueKeyPrefix, SPLIT_QUEUE } from '../../src/modules/splits/split.queue';
import { checkoutBody, startHarness, type Harness } from '../support/harness';
import { buildNotify, openNativeCheckout } from '../support/notify';
import { startReceiver } from '../support/webhook-receiver';
import { buildRefundNotify } from './refund-support';
import { paidCheckout, receivers, splitRequests, waitFor, waitForSplitStatus } from './split-support';

const TOKEN = 'test-metrics-token-0123456789';
let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    env: {
      METRICS_TOKEN: TOKEN,
      // Five receivers at two per request: three batches, which the 1/s limiter makes wait.
      PROFIT_SHARING_RECEIVER_LIMIT: '2',
      PROFIT_SHARING_RATE_PER_SECOND: '1',
      PROFIT_SHARING_POLL_MS: '20',
      WEBHOOK_POLL_MS: '50',
      // One retry, then the delivery fails.
      WEBHOOK_RETRY_SCHEDULE: '0.2',
    },
  });
});
afterAll(async () => h?.close());

const scrape = async () => (await request(h.app).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200)).text;

/** `name{labels} value` lines of a Prometheus text answer: the first whose labels include `labels`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const s of samples(text, name)) if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
  return undefined;
}
function samples(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  return text.split('\n').flatMap((line) => {
    // Label values may hold braces (endpoint templates): skip over quoted strings.
    const m = /^([a-z_:]+)(?:\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) return [];
    return [{ labels: Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!])), value: Number(m[3]) }];
  });
}

it('When /metrics is asked without the token or with a wrong one, then it is refused', async () => {
  await request(h.app).get('/metrics').expect(401);
  await request(h.app).get('/metrics').set('Authorization', 'Bearer wrong-token-0123456789').expect(401);
});

it('When split work waits in BullMQ and in the due table (no worker running), then the backlog gauges show it', async () => {
  const queue = createSplitQueue(h.deps.redis, queueKeyPrefix(h.config.QUEUE_PREFIX));
  const c = await h.api('post', '/v1/checkouts').send(checkoutBody()).expect(201);
  try {
    await queue.enqueue('metrics_probe_now', { checkoutId: c.body.id });
    await queue.enqueue('metrics_probe_later', { checkoutId: c.body.id }, 3_600_000);
    await h.db.prisma.checkout.update({ where: { id: c.body.id }, data: { splitDueAt: new Date(Date.now() - 60_000) } });
    const text = await scrape();
    expect(sample(text, 'gateway_split_queue_jobs', { state: 'wait' })).toBe(1);
    expect(sample(text, 'gateway_split_queue_jobs', { state: 'delayed' })).toBe(1);
    expect(sample(text, 'gateway_split_queue_jobs', { state: 'active' })).toBe(0);
    expect(sample(text, 'gateway_split_queue_oldest_waiting_seconds')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'gateway_split_due_overdue_payments')).toBe(1);
    expect(sample(text, 'gateway_split_due_oldest_overdue_seconds')).toBeGreaterThanOrEqual(60);
  } finally {
    const q = new Queue(SPLIT_QUEUE, { connection: h.deps.redis as never, prefix: queueKeyPrefix(h.config.QUEUE_PREFIX) });
    await q.obliterate({ force: true });
    await h.db.prisma.checkout.update({ where: { id: c.body.id }, data: { splitDueAt: null } });
  }
  const after = await scrape();
  expect(sample(after, 'gateway_split_queue_jobs', { state: 'wait' })).toBe(0);
  expect(sample(after, 'gateway_split_due_overdue_payments')).toBe(0);
});

it('When a scripted run has happened, then every counter matches what the simulator and the database saw', async () => {
  await h.startBackground();
  const before = await scrape();
  const base = (name: string, labels: Record<string, string> = {}) => sample(before, name, labels) ?? 0;

  const okHooks = await startReceiver(() => 200);
  const badHooks = await startReceiver(() => 500);
  try {
    for (const url of [okHooks.url, badHooks.url]) await h.api('post', '/v1/webhook_endpoints').send({ url, events: ['checkout.paid'] }).expect(201);

    // A: paid at the simulator (its notify), split in three batches.
    const a = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'planned', receivers: receivers(5, 100, 'met-') } });
    // Another request of this merchant "in flight" for the next few seconds: the 1/s limiter must make
    // A's batches wait, however fast or slow this machine gets from one batch to the next.
    const [sec, usec] = await h.deps.redis.time();
    await h.deps.redis.zadd(`${queueKeyPrefix(h.config.QUEUE_PREFIX)}:split-rate:${h.config.WECHATPAY_MCHID}`, Number(sec) * 1000 + Math.floor(Number(usec) / 1000) + 5_000, 'metrics-test-blocker');
    // B: paid by our own WeChat-signed notify, sent twice, and a forged copy.
    const b = await openNativeCheckout(h, 2_000);
    const n = buildNotify(h, b.tx);
    await h.http().post('/notify/wechatpay/transactions').set(n.headers).send(n.body).expect(204);
    await h.http().post('/notify/wechatpay/transactions').set(n.headers).send(n.body).expect(204);
    const forged = buildNotify(h, b.tx, { signature: randomBytes(256).toString('base64') });
    const rejected = await h.http().post('/notify/wechatpay/transactions').set(forged.headers).send(forged.body);
    expect(rejected.status).toBe(401);
    // C: created, never paid.
    await h.api('post', '/v1/checkouts').send(checkoutBody()).expect(201);

    await waitForSplitStatus(h, a.id, ['succeeded'], 60_000);
    await waitFor(async () => (await h.db.prisma.webhookDelivery.count({ where: { status: 'pending' } })) === 0 && (await h.db.prisma.webhookDelivery.count()) === 4, 20_000, 'webhook deliveries to end');
    await waitFor(async () => (await h.db.prisma.outboxEvent.count({ where: { processedAt: null } })) === 0, 10_000, 'the outbox to drain');

    const text = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => (sample(text, name, labels) ?? 0) - base(name, labels);

    expect(delta('gateway_checkouts_created_total')).toBe(3);
    expect(delta('gateway_checkouts_paid_total', { trade_type: 'NATIVE' })).toBe(2);
    expect(delta('gateway_notifies_total', { kind: 'payment', outcome: 'applied' })).toBe(2);
    expect(delta('gateway_notifies_total', { kind: 'payment', outcome: 'duplicate' })).toBe(1);
    const log = await h.db.prisma.notifyLog.findFirstOrThrow({ where: { outcome: 'rejected' } });
    expect(delta('gateway_notifies_total', { kind: 'payment', outcome: `rejected:${log.error}` })).toBe(1);

    // Split requests: exactly the batches the simulator accepted; the limiter held at least one of them.
    const sent = splitRequests(h, a.transactionId);
    expect(sent.filter((r) => r.status === 200)).toHaveLength(3);
    expect(delta('gateway_split_requests_total', { kind: 'order', outcome: 'accepted' })).toBe(3);
    expect(samples(text, 'gateway_split_requests_total').filter((s) => s.labels.outcome !== 'accepted')).toEqual([]);
    const waits = delta('gateway_split_rate_limiter_waits_total');
    expect(waits).toBeGreaterThanOrEqual(1);
    expect(waits).toBeLessThanOrEqual(3);
    expect(delta('gateway_split_rate_limiter_wait_seconds_total')).toBeGreaterThan(0);

    // Channel calls: one series per endpoint template, together exactly the calls the simulator answered.
    const calls = samples(text, 'gateway_channel_call_duration_seconds_count');
    const total = calls.reduce((s, c) => s + c.value, 0) - samples(before, 'gateway_channel_call_duration_seconds_count').reduce((s, c) => s + c.value, 0);
    expect(total).toBe(h.sim.control.calls.length);
    const simCount = (method: string, re: RegExp) => h.sim.control.calls.filter((c) => c.method === method && re.test(c.path.split('?')[0]!)).length;
    expect(delta('gateway_channel_call_duration_seconds_count', { endpoint: 'POST /v3/pay/transactions/native', result: 'ok' })).toBe(simCount('POST', /^\/v3\/pay\/transactions\/native$/));
    expect(delta('gateway_channel_call_duration_seconds_count', { endpoint: 'POST /v3/profitsharing/orders', result: 'ok' })).toBe(3);
    expect(delta('gateway_channel_call_duration_seconds_count', { endpoint: 'GET /v3/profitsharing/orders/{id}', result: 'ok' })).toBe(simCount('GET', /^\/v3\/profitsharing\/orders\/[^/]+$/));
    // Low cardinality: no id of this run in any label.
    for (const c of calls) expect(c.labels.endpoint).not.toMatch(/\d{4,}|met-|co_/);
    expect(text).not.toContain(a.id);
    expect(text).not.toContain(a.transactionId);

    // Webhooks: each endpoint got both checkout.paid events; the failing one twice each (one retry).
    const attempts = await h.db.prisma.webhookAttempt.findMany();
    expect(delta('gateway_webhook_deliveries_total', { outcome: 'delivered' })).toBe(attempts.filter((x) => x.httpStatus === 200).length);
    expect(delta('gateway_webhook_deliveries_total', { outcome: 'delivered' })).toBe(2);
    expect(delta('gateway_webhook_deliveries_total', { outcome: 'retry' })).toBe(2);
    expect(delta('gateway_webhook_deliveries_total', { outcome: 'failed' })).toBe(await h.db.prisma.webhookDelivery.count({ where: { status: 'failed' } }));
    expect(delta('gateway_webhook_deliveries_total', { outcome: 'failed' })).toBe(2);

    // HTTP: by route pattern, never the raw URL.
    expect(delta('gateway_http_request_duration_seconds_count', { method: 'POST', route: '/v1/checkouts', status: '201' })).toBe(3);
    expect(delta('gateway_http_request_duration_seconds_count', { method: 'POST', route: '/notify/wechatpay/transactions', status: '204' })).toBe(3); // the simulator's + ours twice
    expect(delta('gateway_http_request_duration_seconds_count', { method: 'POST', route: '/notify/wechatpay/transactions', status: '401' })).toBe(1);

    // Backlog gauges against the database, everything done.
    expect(sample(text, 'gateway_split_batches', { state: 'pending' })).toBe(0);
    expect(sample(text, 'gateway_split_batches', { state: 'processing' })).toBe(0);
    expect(sample(text, 'gateway_outbox_pending_events')).toBe(0);
    expect(sample(text, 'gateway_reconciliation_mismatches_open')).toBe(0);
    expect(sample(text, 'gateway_frozen_near_deadline_payments')).toBe(0);
    expect(sample(text, 'gateway_process_resident_memory_bytes')).toBeGreaterThan(0);
  } finally {
    await okHooks.close();
    await badHooks.close();
  }
});

it('When a split request fails at the channel, then it is counted by outcome and the call by its error code', async () => {
  const before = await scrape();
  h.sim.control.faults.failNext(1, { pathPrefix: '/v3/profitsharing/orders', method: 'POST' });
  const a = await paidCheckout(h, { amount: 5_000, profit_sharing: { mode: 'planned', receivers: receivers(1, 100, 'err-') } });
  await waitForSplitStatus(h, a.id, ['succeeded'], 30_000);
  const text = await scrape();
  const delta = (name: string, labels: Record<string, string>) => (sample(text, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
  expect(delta('gateway_split_requests_total', { kind: 'order', outcome: 'retry' })).toBe(1);
  expect(delta('gateway_split_requests_total', { kind: 'order', outcome: 'accepted' })).toBe(1);
  expect(delta('gateway_channel_call_duration_seconds_count', { endpoint: 'POST /v3/profitsharing/orders', result: 'SYSTEM_ERROR' })).toBe(1);
});

it('When refund notifies arrive for an unknown refund and with a forged signature, then each is counted by kind and reason', async () => {
  const before = await scrape();
  const resource = { mchid: h.config.WECHATPAY_MCHID, out_trade_no: 'T0000001', transaction_id: '4200000000000001', out_refund_no: 'rf_unknown_1', refund_id: '5030000001', refund_status: 'SUCCESS', success_time: '2026-12-02T12:00:00+08:00', user_received_account: '支付用户零钱', amount: { total: 100, refund: 10, payer_total: 100, payer_refund: 10 } };
  const unknown = buildRefundNotify(h, resource, { eventType: 'REFUND.SUCCESS' });
  expect((await request(h.app).post('/notify/wechatpay/refunds').set(unknown.headers).send(unknown.body)).status).toBe(404);
  const forged = buildRefundNotify(h, resource, { eventType: 'REFUND.SUCCESS', badSignature: true });
  expect((await request(h.app).post('/notify/wechatpay/refunds').set(forged.headers).send(forged.body)).status).toBe(401);
  const log = await h.db.prisma.notifyLog.findFirstOrThrow({ where: { kind: 'refund', outcome: 'rejected' } });
  const text = await scrape();
  const delta = (labels: Record<string, string>) => (sample(text, 'gateway_notifies_total', labels) ?? 0) - (sample(before, 'gateway_notifies_total', labels) ?? 0);
  expect(delta({ kind: 'refund', outcome: 'mismatch:UNKNOWN_REFUND' })).toBe(1);
  expect(delta({ kind: 'refund', outcome: `rejected:${log.error}` })).toBe(1);
});

it('When no token is configured, then /metrics does not exist', async () => {
  const bare = await startHarness({ env: { METRICS_TOKEN: '' } });
  try {
    await request(bare.app).get('/metrics').expect(404);
  } finally {
    await bare.close();
  }
});

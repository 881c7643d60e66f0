/**
 * Console actions over HTTP and the database, against the simulator: each is confirmed (a page that
 * states what will happen), needs the CSRF token, happens once per actionKey (double submit, reload),
 * is recorded in console_audit and on the timeline, and another merchant's object is a 404.
 */
import type request from 'supertest';
import { createConsoleUser } from '../../src/modules/console/console.users';
import { newId } from '../../src/lib/ids';
import { mismatchResolution } from '../../src/modules/splits/split.reconcile';
import { startHarness, type Harness } from '../support/harness';
import { startReceiver } from '../support/webhook-receiver';
import { confirmPage, signIn } from './console-support';
import { ENV as REFUND_ENV, waitForRefund } from './refund-support';
import { paidCheckout, receivers, splitOf, splitRequests, waitFor, waitForSplitStatus } from './split-support';

let h: Harness;
let ops: request.Agent;
let staff: request.Agent;
let other: request.Agent;

beforeAll(async () => {
  h = await startHarness({
    env: { ...REFUND_ENV, PROFIT_SHARING_RECEIVER_LIMIT: '5', PROFIT_SHARING_POLL_MS: '20', WEBHOOK_POLL_MS: '50', WEBHOOK_RETRY_SCHEDULE: '0.2,0.3', RECONCILE_INTERVAL_MS: '600000' },
  });
  await h.startBackground();
  await createConsoleUser(h.db.prisma, { email: 'ops@example.com', role: 'operator', password: 'operator password 1' });
  await createConsoleUser(h.db.prisma, { email: 'staff@test.example', role: 'merchant', merchantId: 'mch_test', password: 'merchant password 1' });
  await createConsoleUser(h.db.prisma, { email: 'staff@other.example', role: 'merchant', merchantId: 'mch_other', password: 'merchant password 2' });
  ops = (await signIn(h, 'ops@example.com', 'operator password 1')).agent;
  staff = (await signIn(h, 'staff@test.example', 'merchant password 1')).agent;
  other = (await signIn(h, 'staff@other.example', 'merchant password 2')).agent;
}, 60_000);
afterAll(async () => h?.close());

/** POSTs a confirmed form as the browser would. */
function submit(agent: request.Agent, url: string, form: { csrf: string | null; key: string | null; stamp?: string | null }, fields: Record<string, string> = {}) {
  return agent.post(url).type('form').send({ ...(form.csrf ? { _csrf: form.csrf } : {}), ...(form.key ? { actionKey: form.key } : {}), ...(form.stamp ? { stamp: form.stamp } : {}), ...fields });
}

const mismatchResolutionOf = (detail: unknown) => mismatchResolution(detail).resolvedAt;
const auditOf = (actionKey: string) => h.db.prisma.consoleAudit.findMany({ where: { actionKey } });

describe('refund', () => {
  it('When an operator confirms a refund twice with the same actionKey, then one refund is made (its idempotency key the actionKey), recorded and shown on the timeline', async () => {
    const { id } = await paidCheckout(h, { amount: 1000 });
    const url = `/console/checkouts/${id}/refund`;
    const form = await confirmPage(ops, url, { amount: '3', reason: '商品破损' });
    expect(form.status).toBe(200);
    expect(form.text).toContain('¥3.00 (300 fen)');
    expect(form.text).toContain('商品破损');

    // No CSRF token: refused, nothing done.
    await submit(ops, url, { csrf: null, key: form.key }, { amount: '3' }).expect(403);
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id } })).toBe(0);

    const first = await submit(ops, url, form, { amount: '3', reason: '商品破损', split_return: 'none' }).expect(303);
    expect(first.headers.location).toBe(`/console/checkouts/${id}?done=${form.key}#outcome`);
    const again = await submit(ops, url, form, { amount: '3', reason: '商品破损', split_return: 'none' }).expect(303);
    expect(again.headers.location).toBe(first.headers.location);

    const refunds = await h.db.prisma.refund.findMany({ where: { checkoutId: id } });
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({ amountFen: 300, reason: '商品破损', idempotencyKey: form.key });
    const audit = await auditOf(form.key!);
    expect(audit).toHaveLength(1);
    expect(audit[0]!.outcome).toContain(refunds[0]!.id);
    await waitForRefund(h, refunds[0]!.id, ['succeeded']);

    const page = await ops.get(first.headers.location).expect(200);
    expect(page.text).toContain('操作结果 · Outcome');
    expect(page.text).toContain(`refund 退款 ${refunds[0]!.id} ¥3.00: succeeded`);
    expect(page.text).toContain('action 操作 refund · ops@example.com');
  });

  it('When the amount is not valid or more than is refundable, then the page says why, nothing is refunded or recorded, and the corrected form still works', async () => {
    const { id } = await paidCheckout(h, { amount: 500 });
    const url = `/console/checkouts/${id}/refund`;
    const bad = await confirmPage(ops, url, { amount: '1.234' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('请输入退款金额');

    const form = await confirmPage(ops, url, { amount: '6' });
    expect(form.status).toBe(200);
    const tooMuch = await submit(ops, url, form, { amount: '6' });
    expect(tooMuch.status).toBe(422);
    // The refunds service's own message, as the API gives it.
    expect(tooMuch.text).toContain('600 fen is more than the 500 fen left to refund');
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id } })).toBe(0);
    expect(await auditOf(form.key!)).toHaveLength(0);

    await submit(ops, url, form, { amount: '5' }).expect(303);
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id } })).toBe(1);
  });

  it('When a merchant user acts on its own checkout it works; on another merchant\'s checkout every action is a 404 and nothing happens', async () => {
    const { id } = await paidCheckout(h, { amount: 800 });
    for (const path of ['refund', 'splits/finish']) {
      expect((await confirmPage(other, `/console/checkouts/${id}/${path}`, { amount: '1' })).status).toBe(404);
      const mine = await confirmPage(staff, `/console/checkouts/${id}/${path}`, { amount: '1' });
      // Another merchant's user replaying a valid form (token of its own session) gets a 404 as well.
      const theirs = await confirmPage(other, '/console/checkouts');
      const r = await submit(other, `/console/checkouts/${id}/${path}`, { csrf: theirs.csrf, key: mine.key }, { amount: '1' });
      expect(r.status).toBe(404);
      expect(r.text).toContain('没有这个订单');
    }
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id } })).toBe(0);
    const form = await confirmPage(staff, `/console/checkouts/${id}/refund`, { amount: '1' });
    await submit(staff, `/console/checkouts/${id}/refund`, form, { amount: '1' }).expect(303);
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id } })).toBe(1);
  });

  it('When the gateway crashed after the refund but before its audit row was completed, then the same form completes the record without refunding again', async () => {
    const { id } = await paidCheckout(h, { amount: 1000 });
    const url = `/console/checkouts/${id}/refund`;
    const form = await confirmPage(ops, url, { amount: '2' });
    const user = await h.db.prisma.consoleUser.findUniqueOrThrow({ where: { email: 'ops@example.com' } });
    // The state a crash leaves: the claim (outcome null) and the refund made under the actionKey.
    await h.db.prisma.consoleAudit.create({ data: { id: newId('ca'), userId: user.id, action: 'refund', target: id, actionKey: form.key! } });
    const made = await h.api('post', `/v1/checkouts/${id}/refunds`).set('Idempotency-Key', form.key!).send({ amount: 200 }).expect(201);
    const page = await ops.get(`/console/checkouts/${id}?done=${form.key}`).expect(200);
    expect(page.text).toContain('进行中，请刷新');

    await submit(ops, url, form, { amount: '2' }).expect(303);
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id } })).toBe(1);
    const audit = await auditOf(form.key!);
    expect(audit).toHaveLength(1);
    expect(audit[0]!.outcome).toContain(made.body.id);
  });

  it('When the same form is submitted twice at the same moment, then there is still one refund and one record', async () => {
    const { id } = await paidCheckout(h, { amount: 1000 });
    const url = `/console/checkouts/${id}/refund`;
    const form = await confirmPage(ops, url, { amount: '4' });
    const both = await Promise.all([submit(ops, url, form, { amount: '4' }), submit(ops, url, form, { amount: '4' })]);
    expect(both.map((r) => r.status)).toEqual([303, 303]);
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id } })).toBe(1);
    const audit = await auditOf(form.key!);
    expect(audit).toHaveLength(1);
    expect(audit[0]!.outcome).toContain('¥4.00');
  });

  it('When a form\'s actionKey was used for another action, then it is refused', async () => {
    const { id } = await paidCheckout(h, { amount: 900 });
    const form = await confirmPage(ops, `/console/checkouts/${id}/refund`, { amount: '1' });
    await submit(ops, `/console/checkouts/${id}/refund`, form, { amount: '1' }).expect(303);
    const { id: id2 } = await paidCheckout(h, { amount: 900 });
    const r = await submit(ops, `/console/checkouts/${id2}/refund`, form, { amount: '1' });
    expect(r.status).toBe(409);
    expect(r.text).toContain('此表单已用于另一操作');
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id2 } })).toBe(0);
  });
});

describe('split batch retry', () => {
  /** An on-demand payment whose split closed receiver `<tag>001` at the channel (rt-000 paid). */
  async function failedSplit(tag: string, amount = 1000) {
    const { id, transactionId } = await paidCheckout(h, { amount, profit_sharing: { mode: 'on_demand' } });
    h.sim.control.profitSharing.failReceiver(`${tag}001`, 'ACCOUNT_ABNORMAL');
    await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', `k-${tag}`).send({ receivers: receivers(2, 100, tag) }).expect(201);
    const s = await waitForSplitStatus(h, id, ['partially_failed']);
    h.sim.control.profitSharing.failReceiver(`${tag}001`, null);
    return { id, transactionId, batch: s.batches[0]!.out_order_no };
  }

  it('When an operator retries a partly failed batch (double submit, then a second tab), then only the closed receiver is split again, once, under a new out_order_no', async () => {
    const { id, transactionId, batch } = await failedSplit('rt-');
    const page = await ops.get(`/console/checkouts/${id}`).expect(200);
    const url = `/console/checkouts/${id}/batches/${batch}/retry`;
    expect(page.text).toContain(`href="${url}"`);

    const form = await confirmPage(ops, url);
    expect(form.status).toBe(200);
    expect(form.text).toContain('接收方 Receiver rt-001');
    expect(form.text).toContain('ACCOUNT_ABNORMAL');
    expect(form.text).not.toContain('接收方 Receiver rt-000');
    expect(form.text).toContain(`${id}-s2-b1`);

    await submit(ops, url, { csrf: null, key: form.key }).expect(403);
    expect((await other.get(url)).status).toBe(404);
    const first = await submit(ops, url, form).expect(303);
    await submit(ops, url, form).expect(303);
    // A second confirm page (another tab opened before): already retried, says so, does nothing.
    const late = await confirmPage(ops, url);
    expect(late.status).toBe(409);
    expect(late.text).toContain(`${id}-s2-b1`);

    const s = await waitForSplitStatus(h, id, ['partially_failed', 'succeeded']);
    await waitFor(async () => (await splitOf(h, id)).batches.find((b) => b.out_order_no === `${id}-s2-b1`)?.state === 'succeeded', 15_000, 'retry batch');
    const after = await splitOf(h, id);
    expect(after.batches.map((b) => b.out_order_no)).toEqual([batch, `${id}-s2-b1`]);
    expect(after.batches[1]!.receivers).toEqual([expect.objectContaining({ account: 'rt-001', amount: 100, state: 'SUCCESS' })]);
    expect(s.budget.reserved_amount).toBe(200);
    expect(new Set(splitRequests(h, transactionId).map((r) => r.outOrderNo))).toEqual(new Set([batch, `${id}-s2-b1`]));

    const done = await ops.get(first.headers.location).expect(200);
    expect(done.text).toContain(`retried as`);
    expect(done.text).toContain('action 操作 split.retry · ops@example.com');
    expect(await auditOf(form.key!)).toHaveLength(1);
  });

  it('When the budget no longer has room for the failed amount, then the retry is refused with the budget message and splits nothing', async () => {
    const { id, batch } = await failedSplit('rb-');
    // 30% of 1000 = 300: 100 kept by rb-000, the merchant splits the other 200 meanwhile.
    await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', 'k-rb-2').send({ receivers: receivers(1, 200, 'rb2-') }).expect(201);
    const url = `/console/checkouts/${id}/batches/${batch}/retry`;
    const form = await confirmPage(ops, url);
    const r = await submit(ops, url, form);
    expect(r.status).toBe(422);
    expect(r.text).toContain('exceeds the remaining budget of 0 fen');
    expect(await h.db.prisma.split.count({ where: { checkoutId: id } })).toBe(2);
    expect(await auditOf(form.key!)).toHaveLength(0);
  });

  it('When the batch is not failed or belongs to another merchant, then there is no retry', async () => {
    const { id } = await paidCheckout(h, { amount: 1000, profit_sharing: { mode: 'on_demand' } });
    await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', 'k-ok').send({ receivers: receivers(1, 100, 'ok-') }).expect(201);
    const s = await waitForSplitStatus(h, id, ['succeeded']);
    const url = `/console/checkouts/${id}/batches/${s.batches[0]!.out_order_no}/retry`;
    const blocked = await confirmPage(ops, url);
    expect(blocked.status).toBe(409);
    expect(blocked.text).toContain('只有失败的批次可以重试');
    expect(blocked.key).toBeNull();
    expect((await confirmPage(ops, `/console/checkouts/${id}/batches/nope/retry`)).status).toBe(404);
    // Junk in the path (NUL, which PostgreSQL refuses) is "not found", never a 500.
    for (const path of [`/console/checkouts/${id}/batches/a%00b/retry`, '/console/checkouts/co_%00/refund', '/console/checkouts/x%00y', `/console/checkouts/${id}/events/%00/redeliver`])
      expect((await ops.get(path)).status).toBe(404);
  });
});

describe('finish an on-demand split', () => {
  it('When an operator finishes twice with the same form, then splitting ends once and the remainder is unfrozen', async () => {
    const { id } = await paidCheckout(h, { amount: 1000, profit_sharing: { mode: 'on_demand' } });
    const url = `/console/checkouts/${id}/splits/finish`;
    expect((await ops.get(`/console/checkouts/${id}`)).text).toContain(`href="${url}"`);
    const form = await confirmPage(ops, url);
    expect(form.text).toContain(`${id}-unfreeze`);
    await submit(ops, url, { csrf: 'wrong', key: form.key }).expect(403);
    expect((await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).splitFinishedAt).toBeNull();
    const first = await submit(ops, url, form).expect(303);
    await submit(ops, url, form).expect(303);
    const s = await waitForSplitStatus(h, id, ['none', 'succeeded']);
    expect(s.unfreeze).toMatchObject({ method: 'explicit', state: 'succeeded', out_order_no: `${id}-unfreeze` });
    expect(h.sim.control.profitSharing.requests().filter((r) => r.kind === 'unfreeze' && r.outOrderNo === `${id}-unfreeze`).length).toBeGreaterThanOrEqual(1);
    expect(await auditOf(form.key!)).toHaveLength(1);
    expect((await ops.get(first.headers.location)).text).toContain('action 操作 split.finish');
    // Finished: the confirm page says so instead of offering it again.
    expect((await confirmPage(ops, url)).status).toBe(409);
  });
});

describe('webhook redelivery', () => {
  it('When an operator redelivers an event (double submit), then the endpoint gets it once more, and the redelivery is recorded', async () => {
    const rx = await startReceiver();
    try {
      await h.db.prisma.webhookEndpoint.updateMany({ where: { deletedAt: null }, data: { deletedAt: new Date() } });
      await h.api('post', '/v1/webhook_endpoints').send({ url: rx.url, events: ['checkout.paid'] }).expect(201);
      const { id } = await paidCheckout(h, { amount: 700 });
      const mine = () => rx.got.filter((g) => (g.json.data.object as { id?: string }).id === id);
      await waitFor(async () => mine().length === 1, 10_000, 'first delivery');
      const ev = await h.db.prisma.merchantEvent.findFirstOrThrow({ where: { checkoutId: id, type: 'checkout.paid' } });
      const url = `/console/checkouts/${id}/events/${ev.id}/redeliver`;
      expect((await ops.get(`/console/checkouts/${id}`)).text).toContain(`href="${url}"`);
      expect((await other.get(url)).status).toBe(404);

      const form = await confirmPage(ops, url);
      expect(form.text).toContain(rx.url);
      const first = await submit(ops, url, form).expect(303);
      await submit(ops, url, form).expect(303);
      await waitFor(async () => mine().length === 2, 10_000, 'redelivery');
      await new Promise((r) => setTimeout(r, 500));
      expect(mine()).toHaveLength(2);
      expect(mine()[1]!.json.id).toBe(ev.id);
      const audit = await auditOf(form.key!);
      expect(audit).toHaveLength(1);
      expect(audit[0]!.target).toBe(`${id} ${ev.id}`);
      expect((await ops.get(first.headers.location)).text).toContain('redelivering to 1 endpoint(s)');
    } finally {
      await rx.close();
      await h.db.prisma.webhookEndpoint.updateMany({ where: { deletedAt: null }, data: { deletedAt: new Date() } });
    }
  });
});

describe('split mismatch resolution', () => {
  it('When an operator resolves a mismatch, then a note is required, it is marked resolved once with who and why, and shown so', async () => {
    const { id } = await paidCheckout(h, { amount: 600 });
    const m = await h.db.prisma.splitMismatch.create({
      data: { id: newId('sm'), checkoutId: id, kind: 'RECEIVER_CLOSED_AT_CHANNEL', ref: `${id}-s1-b1:acc`, message: 'the channel closed a receiver we recorded as paid' },
    });
    const url = `/console/checkouts/${id}/mismatches/${m.id}/resolve`;
    expect((await ops.get(`/console/checkouts/${id}`)).text).toContain(`href="${url}"`);
    expect((await other.get(url)).status).toBe(404);

    const form = await confirmPage(ops, url);
    expect(form.text).toContain('RECEIVER_CLOSED_AT_CHANNEL');
    await submit(ops, url, { csrf: null, key: form.key }, { note: 'x' }).expect(403);
    const noNote = await submit(ops, url, form, { note: '  ' });
    expect(noNote.status).toBe(400);
    expect(noNote.text).toContain('请填写处理说明');
    expect(await auditOf(form.key!)).toHaveLength(0);

    const first = await submit(ops, url, form, { note: '已与微信核实，接收方账户已修复' }).expect(303);
    await submit(ops, url, form, { note: '已与微信核实，接收方账户已修复' }).expect(303);
    const row = await h.db.prisma.splitMismatch.findUniqueOrThrow({ where: { id: m.id } });
    expect(row.detail).toMatchObject({ resolved_by: 'ops@example.com', resolution_note: '已与微信核实，接收方账户已修复' });
    const audit = await auditOf(form.key!);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: 'mismatch.resolve', note: '已与微信核实，接收方账户已修复', outcome: '已解决 resolved' });
    const page = await ops.get(first.headers.location).expect(200);
    expect(page.text).toContain('(resolved 已解决)');
    expect(page.text).not.toContain(`href="${url}"`);
    expect((await confirmPage(ops, url)).status).toBe(409);
  });
});

describe('review: money paths of the console actions', () => {
  const ps = () => h.sim.control.profitSharing;

  it('When WeChat accepted a batch whose answer was lost (recorded as refused here), then its retry is refused: nobody is paid twice', async () => {
    const { id, transactionId } = await paidCheckout(h, { amount: 1000, profit_sharing: { mode: 'on_demand' } });
    // The channel takes the request, then the answer is replaced by a terminal refusal: failed here, accepted there.
    h.sim.control.faults.failNext(1, { pathPrefix: '/v3/profitsharing/orders', method: 'POST', status: 400, code: 'INVALID_REQUEST', message: '输入源异常', afterProcessing: true });
    await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', 'k-lost-').send({ receivers: receivers(2, 100, 'lost-') }).expect(201);
    const s = await waitForSplitStatus(h, id, ['failed']);
    const batch = s.batches[0]!.out_order_no;
    await waitFor(async () => (ps().orders() as Array<{ out_order_no?: string; state?: string }>).find((o) => o.out_order_no === batch)?.state === 'FINISHED', 15_000, 'the channel finishes the batch');

    const url = `/console/checkouts/${id}/batches/${batch}/retry`;
    const form = await confirmPage(ops, url);
    const r = await submit(ops, url, form);
    expect(r.status).toBe(409);
    expect(r.text).toContain(batch);
    expect(await h.db.prisma.split.count({ where: { checkoutId: id } })).toBe(1);
    expect(splitRequests(h, transactionId).map((x) => x.outOrderNo)).toEqual([batch]);
    expect(await auditOf(form.key!)).toHaveLength(0);
  });

  it('When the channel still has the failed batch\'s receiver PENDING (a late success on its way), then the retry is refused', async () => {
    const { id, transactionId } = await paidCheckout(h, { amount: 1000, profit_sharing: { mode: 'on_demand' } });
    const before = ps().setOptions({});
    ps().setOptions({ resultDelayMs: 60_000 });
    try {
      h.sim.control.faults.failNext(1, { pathPrefix: '/v3/profitsharing/orders', method: 'POST', status: 400, code: 'INVALID_REQUEST', message: '输入源异常', afterProcessing: true });
      await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', 'k-late-').send({ receivers: receivers(1, 100, 'late-') }).expect(201);
      const s = await waitForSplitStatus(h, id, ['failed']);
      const batch = s.batches[0]!.out_order_no;
      const url = `/console/checkouts/${id}/batches/${batch}/retry`;
      const form = await confirmPage(ops, url);
      const r = await submit(ops, url, form);
      expect(r.status).toBe(409);
      expect(await h.db.prisma.split.count({ where: { checkoutId: id } })).toBe(1);
      expect(splitRequests(h, transactionId)).toHaveLength(1);
    } finally {
      ps().setOptions({ resultDelayMs: before.resultDelayMs });
    }
  });

  it('When the same retry form is submitted twice at once and one submit is refused (WeChat query failed), then the retry that was made keeps its audit record (no 500)', async () => {
    const { id } = await paidCheckout(h, { amount: 1000, profit_sharing: { mode: 'on_demand' } });
    ps().failReceiver('twin-001', 'ACCOUNT_ABNORMAL');
    await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', 'k-twin-').send({ receivers: receivers(2, 100, 'twin-') }).expect(201);
    const s = await waitForSplitStatus(h, id, ['partially_failed']);
    ps().failReceiver('twin-001', null);
    const batch = s.batches[0]!.out_order_no;
    const url = `/console/checkouts/${id}/batches/${batch}/retry`;
    const form = await confirmPage(ops, url);
    h.sim.control.faults.failNext(1, { pathPrefix: `/v3/profitsharing/orders/${batch}`, method: 'GET' });
    const both = await Promise.all([submit(ops, url, form), submit(ops, url, form)]);
    expect(both.map((r) => r.status).sort()).toEqual([303, 502]);
    expect(await h.db.prisma.split.count({ where: { checkoutId: id } })).toBe(2);
    const audit = await auditOf(form.key!);
    expect(audit).toHaveLength(1);
    expect(audit[0]!.outcome).toContain('retried as');
  });

  it('When the 30-day split window of the payment has ended, then a failed batch is not retried (WeChat unfroze the rest to the merchant)', async () => {
    const { id, transactionId } = await paidCheckout(h, { amount: 1000, profit_sharing: { mode: 'on_demand' } });
    ps().failReceiver('win-001', 'ACCOUNT_ABNORMAL');
    await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', 'k-win-').send({ receivers: receivers(2, 100, 'win-') }).expect(201);
    const s = await waitForSplitStatus(h, id, ['partially_failed']);
    ps().failReceiver('win-001', null);
    const batch = s.batches[0]!.out_order_no;
    const url = `/console/checkouts/${id}/batches/${batch}/retry`;
    const form = await confirmPage(ops, url);
    expect(form.status).toBe(200);
    await h.db.prisma.checkout.update({ where: { id }, data: { paidAt: new Date(Date.now() - 31 * 86_400_000) } });
    const page = await confirmPage(ops, url);
    expect(page.status).toBe(409);
    expect(page.key).toBeNull();
    const r = await submit(ops, url, form);
    expect(r.status).toBe(409);
    expect(await h.db.prisma.split.count({ where: { checkoutId: id } })).toBe(1);
    expect(splitRequests(h, transactionId)).toHaveLength(1);
    expect(await auditOf(form.key!)).toHaveLength(0);
  });

  it('When the same form refunding everything is submitted twice at the same moment, then both show the one refund: no "more than refundable" error, no lost record', async () => {
    for (let i = 0; i < 3; i++) {
      const { id } = await paidCheckout(h, { amount: 500 });
      const url = `/console/checkouts/${id}/refund`;
      const form = await confirmPage(ops, url, { amount: '5' });
      const both = await Promise.all([submit(ops, url, form, { amount: '5' }), submit(ops, url, form, { amount: '5' })]);
      expect(both.map((r) => r.status)).toEqual([303, 303]);
      const refunds = await h.db.prisma.refund.findMany({ where: { checkoutId: id } });
      expect(refunds).toHaveLength(1);
      const audit = await auditOf(form.key!);
      expect(audit).toHaveLength(1);
      expect(audit[0]!.outcome).toContain(refunds[0]!.id);
    }
  });

  it('When two operators resolve the same mismatch at the same moment (two forms), then one resolution is recorded as made and the other is not told it resolved it', async () => {
    for (let i = 0; i < 3; i++) {
      const { id } = await paidCheckout(h, { amount: 600 });
      const m = await h.db.prisma.splitMismatch.create({ data: { id: newId('sm'), checkoutId: id, kind: 'BATCH_UNKNOWN_AT_CHANNEL', ref: `${id}-s1-b1`, message: 'x' } });
      const url = `/console/checkouts/${id}/mismatches/${m.id}/resolve`;
      const [a, b] = await Promise.all([confirmPage(ops, url), confirmPage(staff, url)]);
      await Promise.all([submit(ops, url, a, { note: 'note A' }), submit(staff, url, b, { note: 'note B' })]);
      const row = await h.db.prisma.splitMismatch.findUniqueOrThrow({ where: { id: m.id } });
      const kept = (row.detail as { resolution_note: string }).resolution_note;
      const audit = await h.db.prisma.consoleAudit.findMany({ where: { actionKey: { in: [a.key!, b.key!] }, outcome: '已解决 resolved' } });
      // Only the resolution that stands says "resolved".
      expect(audit.map((x) => x.note)).toEqual([kept]);
    }
  });

  it('When the refund amount is beyond any payment (more than 2^31 fen), then it is refused as too much, never a 500', async () => {
    const { id } = await paidCheckout(h, { amount: 1000 });
    const url = `/console/checkouts/${id}/refund`;
    expect((await confirmPage(ops, url, { amount: '99999999' })).status).toBe(400);
    // A form confirmed for a small amount, its hidden amount changed.
    const form = await confirmPage(ops, url, { amount: '1' });
    const r = await submit(ops, url, form, { amount: '99999999' });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id } })).toBe(0);
    expect(await auditOf(form.key!)).toHaveLength(0);
  });

  it('When an action gets a malformed request (too many fields, a body too large, an undecodable path), then it is a 4xx page, never a 500, and nothing is done', async () => {
    const { id } = await paidCheckout(h, { amount: 1000 });
    const url = `/console/checkouts/${id}/refund`;
    const form = await confirmPage(ops, url, { amount: '1' });
    const many = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`x${i}`, 'y']));
    const statuses = [
      (await submit(ops, url, form, { amount: '1', ...many })).status,
      (await submit(ops, url, form, { amount: '1', reason: 'x'.repeat(30_000) })).status,
      (await ops.get(`/console/checkouts/${id}/mismatches/%ff/resolve`)).status,
      (await ops.get(`/console/checkouts/${id}/batches/%E0%A4%A/retry`)).status,
    ];
    expect(statuses).toEqual([413, 413, 400, 400]);
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id } })).toBe(0);
    expect(await auditOf(form.key!)).toHaveLength(0);
  });

  it('When a second refund form was confirmed before another refund was made (two operators, two tabs), then it is refused as stale and shown again with the new totals; confirmed again, it works', async () => {
    const { id } = await paidCheckout(h, { amount: 1000 });
    const url = `/console/checkouts/${id}/refund`;
    const a = await confirmPage(ops, url, { amount: '3' });
    const b = await confirmPage(staff, url, { amount: '3' });
    expect(b.text).toContain('¥0.00 · 0 笔 refund(s)');
    await submit(ops, url, a, { amount: '3' }).expect(303);
    // What B confirmed ("refunded so far ¥0.00") is no longer true: not a second refund behind its back.
    const stale = await submit(staff, url, b, { amount: '3' });
    expect(stale.status).toBe(409);
    expect(stale.text).toContain('¥3.00 · 1 笔 refund(s)');
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id } })).toBe(1);
    expect(await auditOf(b.key!)).toHaveLength(0);
    // The page shown again carries the new state: confirming it is a deliberate second refund.
    const again = { key: /name="actionKey" value="([^"]+)"/.exec(stale.text)![1]!, csrf: b.csrf, stamp: /name="stamp" value="([^"]+)"/.exec(stale.text)?.[1] ?? null };
    await submit(staff, url, again, { amount: '3' }).expect(303);
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id } })).toBe(2);
  });

  it('When a refund reason or a resolution note holds a NUL (PostgreSQL refuses it), then the form says so (400), never a 500, and nothing is done or recorded', async () => {
    const { id } = await paidCheckout(h, { amount: 1000 });
    const url = `/console/checkouts/${id}/refund`;
    const form = await confirmPage(ops, url, { amount: '1' });
    const r = await submit(ops, url, form, { amount: '1', reason: 'a\u0000b' });
    expect(r.status).toBe(400);
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id } })).toBe(0);
    expect(await auditOf(form.key!)).toHaveLength(0);
    expect((await confirmPage(ops, url, { amount: '1', reason: 'a\u0000b' })).status).toBe(400);

    const m = await h.db.prisma.splitMismatch.create({ data: { id: newId('sm'), checkoutId: id, kind: 'BATCH_UNKNOWN_AT_CHANNEL', ref: `${id}-s1-b1`, message: 'x' } });
    const murl = `/console/checkouts/${id}/mismatches/${m.id}/resolve`;
    const mform = await confirmPage(ops, murl);
    const mr = await submit(ops, murl, mform, { note: 'checked\u0000' });
    expect(mr.status).toBe(400);
    expect(await auditOf(mform.key!)).toHaveLength(0);
    expect(mismatchResolutionOf((await h.db.prisma.splitMismatch.findUniqueOrThrow({ where: { id: m.id } })).detail)).toBeNull();
  });
});

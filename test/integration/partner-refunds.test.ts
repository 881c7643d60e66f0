import request from 'supertest';
import { channelsOf } from '../../src/modules/merchants/channel-resolver';
import { addPartnerAccountOnOwnSimulator, type PartnerFixture } from '../support/accounts';
import { OTHER_API_KEY, startHarness, type Harness } from '../support/harness';
import { buildRefundNotify, newKey, postRefund, waitForRefund } from './refund-support';
import { paidCheckout, receivers, waitForSplitStatus } from './split-support';

/**
 * Refunds of a sub-merchant's payments (mch_other, partner account on the SP's own simulator): sub_mchid
 * on the refund and its query, the REFUND.* notify (sp_mchid + sub_mchid) at the account's own notify URL,
 * verified with the SP's keys and checked against the account's sub-merchant; returns carry sub_mchid.
 * No query before a minute (REFUND_QUERY_AFTER_MS, set here; the sandbox's is 5 s): a refund that
 * succeeds here succeeded by notify. (On a loaded machine this once failed: the simulator's settle timer
 * fired before its clock read due and was never armed again, so no notify came; fixed there.)
 */
let h: Harness;
let p: PartnerFixture;
beforeAll(async () => {
  h = await startHarness({ env: { REFUND_QUERY_AFTER_MS: '60000' } });
  p = await addPartnerAccountOnOwnSimulator(h, 'mch_other');
  await h.startBackground();
});
afterAll(async () => {
  await h?.close();
  await p?.sim.close();
});

const asPartner = { apiKey: OTHER_API_KEY, get sim() { return p.sim; } };
const refundPosts = () => p.sim.control.calls.filter((c) => c.method === 'POST' && c.path === '/v3/refund/domestic/refunds');

it('When a sub-merchant refunds, then the refund carries sub_mchid, its notify (sp_mchid + sub_mchid) reaches the account\'s URL and the refund succeeds', async () => {
  const { id, transactionId } = await paidCheckout(h, { amount: 1000 }, asPartner);
  const r = await postRefund(h, id, { amount: 300 }, newKey(), OTHER_API_KEY).expect(201);
  const done = await waitForRefund(h, r.body.id, ['succeeded'], 15_000, OTHER_API_KEY);
  expect(done).toMatchObject({ amount: 300, status: 'succeeded' });

  const sent = refundPosts().find((c) => (c.body as { out_refund_no: string }).out_refund_no === r.body.out_refund_no)!;
  expect(sent).toMatchObject({ status: 200, body: { sub_mchid: p.subMchid, transaction_id: transactionId, notify_url: `${h.gatewayUrl}/notify/wechatpay/${p.accountId}/refunds` } });
  const notify = p.sim.control.notifyRecords.find((n) => n.ref === r.body.out_refund_no)!;
  expect(notify.plaintext).toMatchObject({ sp_mchid: p.spMchid, sub_mchid: p.subMchid, refund_status: 'SUCCESS' });
  expect(notify.delivered).toBe(true);
  expect(p.sim.control.calls.filter((c) => c.method === 'GET' && c.path.startsWith('/v3/refund/domestic/refunds/'))).toEqual([]);
  // The query the driver falls back to (no notify within REFUND_QUERY_AFTER_MS) names the sub-merchant.
  const channel = await channelsOf(h.deps).forAccount(p.accountId);
  expect(await channel.queryRefund(r.body.out_refund_no)).toMatchObject({ status: 'SUCCESS', refundFen: 300 });
  expect(p.sim.control.calls.at(-1)).toMatchObject({ method: 'GET', path: `/v3/refund/domestic/refunds/${r.body.out_refund_no}?sub_mchid=${p.subMchid}`, status: 200 });
});

it('When a refund notify for the partner account names another sub-merchant of the same SP, then it is refused and nothing changes', async () => {
  const { id } = await paidCheckout(h, { amount: 1000 }, asPartner);
  p.sim.control.notifyFaults({ hold: true }); // keep WeChat's own notify back: ours is the only one
  try {
    const r = await postRefund(h, id, { amount: 100 }, newKey(), OTHER_API_KEY).expect(201);
    await waitForRefund(h, r.body.id, ['processing'], 15_000, OTHER_API_KEY);
    const resource = { sp_mchid: p.spMchid, sub_mchid: '1900000888', out_refund_no: r.body.out_refund_no, refund_id: '50300000000000000000000001', refund_status: 'SUCCESS', amount: { total: 1000, refund: 100 } };
    const n = buildRefundNotify(h, resource, { keys: p.keys });
    const res = await request(h.app).post(`/notify/wechatpay/${p.accountId}/refunds`).set(n.headers).send(n.body);
    expect([res.status, res.body.message]).toEqual([400, 'SUB_MCHID_MISMATCH']);
    // The right sub-merchant, signed by the SP: accepted.
    const good = buildRefundNotify(h, { ...resource, sub_mchid: p.subMchid }, { keys: p.keys });
    expect((await request(h.app).post(`/notify/wechatpay/${p.accountId}/refunds`).set(good.headers).send(good.body)).status).toBe(204);
    expect((await waitForRefund(h, r.body.id, ['succeeded'], 5_000, OTHER_API_KEY)).status).toBe('succeeded');
  } finally {
    p.sim.control.notifyFaults({ hold: false });
    p.sim.control.releaseNotifies();
  }
});

it('When a split partner payment is refunded with proportional returns, then the return orders carry sub_mchid and the refund succeeds', async () => {
  const { id } = await paidCheckout(h, { amount: 1000, profit_sharing: { mode: 'on_demand' } }, asPartner);
  await h.api('post', `/v1/checkouts/${id}/splits`, OTHER_API_KEY).set('Idempotency-Key', newKey()).send({ receivers: receivers(2, 100, 'prr-') }).expect(201);
  await waitForSplitStatus(h, id, ['succeeded'], 15_000, OTHER_API_KEY);
  const r = await postRefund(h, id, { amount: 500, split_return: 'proportional' }, newKey(), OTHER_API_KEY).expect(201);
  const done = await waitForRefund(h, r.body.id, ['succeeded'], 15_000, OTHER_API_KEY);
  expect(done.split_returns.map((x) => [x.account, x.amount, x.state])).toEqual([['prr-000', 50, 'succeeded'], ['prr-001', 50, 'succeeded']]);
  const returns = p.sim.control.calls.filter((c) => c.method === 'POST' && c.path === '/v3/profitsharing/return-orders' && String((c.body as { out_return_no: string }).out_return_no).startsWith(r.body.id));
  expect(returns).toHaveLength(2);
  expect(returns.every((c) => (c.body as { sub_mchid?: string }).sub_mchid === p.subMchid && c.status === 200)).toBe(true);
  expect(p.sim.control.profitSharing.returns().filter((x) => x.sub_mchid === p.subMchid)).toHaveLength(2);
});

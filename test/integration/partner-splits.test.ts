import { reconcileCheckout } from '../../src/modules/splits/split.reconcile';
import { addPartnerAccountOnOwnSimulator, type PartnerFixture } from '../support/accounts';
import { checkoutBody, OTHER_API_KEY, startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, splitRequests, waitForSplitStatus } from './split-support';

/**
 * Profit sharing of a sub-merchant (mch_other) through its service provider's WeChat (the fixture's own
 * simulator, where the sub-merchant authorised 20%): sub_mchid on every call, receivers per sub-merchant,
 * the budget capped by the authorised ratio before anything is sent.
 */
let h: Harness;
let p: PartnerFixture;
beforeAll(async () => {
  h = await startHarness({ env: { PROFIT_SHARING_RECEIVER_LIMIT: '5', PROFIT_SHARING_POLL_MS: '20', RECONCILE_INTERVAL_MS: '60000' } });
  p = await addPartnerAccountOnOwnSimulator(h, 'mch_other');
  await h.startBackground();
});
afterAll(async () => {
  await h?.close();
  await p?.sim.close();
});

const psCalls = (path: string) => p.sim.control.calls.filter((c) => c.path.split('?')[0] === path);
const ratioQueries = () => p.sim.control.calls.filter((c) => c.path.startsWith('/v3/profitsharing/merchant-configs/'));
const asPartner = { apiKey: OTHER_API_KEY, get sim() { return p.sim; } };

it('When a sub-merchant\'s 30-receiver plan is paid with a limit of 5, then exactly 6 split requests reach the SP\'s WeChat, each carrying sub_mchid', async () => {
  const plan = receivers(30, 100, 'ps30-');
  const { id, transactionId } = await paidCheckout(h, { amount: 20_000, profit_sharing: { receivers: plan } }, asPartner);
  const s = await waitForSplitStatus(h, id, ['succeeded', 'partially_failed', 'failed'], 20_000, OTHER_API_KEY);
  expect(s.status).toBe('succeeded');

  const reqs = splitRequests(h, transactionId, p.sim);
  expect(reqs).toHaveLength(6);
  expect(reqs.map((r) => [r.subMchid, r.status])).toEqual(Array.from({ length: 6 }, () => [p.subMchid, 200]));
  const orders = psCalls('/v3/profitsharing/orders').filter((c) => c.method === 'POST' && (c.body as { transaction_id?: string }).transaction_id === transactionId);
  expect(orders).toHaveLength(6);
  expect(orders.every((c) => (c.body as { sub_mchid?: string }).sub_mchid === p.subMchid)).toBe(true);
  // Receivers were added under the sub-merchant, once each, and remembered for it.
  const adds = psCalls('/v3/profitsharing/receivers/add').filter((c) => String((c.body as { account?: string }).account).startsWith('ps30-'));
  expect(adds).toHaveLength(30);
  expect(adds.every((c) => (c.body as { sub_mchid?: string }).sub_mchid === p.subMchid && c.status === 200)).toBe(true);
  expect(p.sim.control.profitSharing.receivers().filter((r) => r.account.startsWith('ps30-')).every((r) => r.subMchid === p.subMchid)).toBe(true);
  expect(await h.db.prisma.channelReceiver.count({ where: { mchid: p.subMchid, appid: p.spAppid, account: { startsWith: 'ps30-' } } })).toBe(30);
  // The SP's ratio grant was read from the channel and remembered on the account.
  expect(ratioQueries().length).toBeGreaterThanOrEqual(1);
  expect(await h.db.prisma.channelAccount.findUniqueOrThrow({ where: { id: p.accountId } })).toMatchObject({ maxRatioBp: 2000, maxRatioAt: expect.any(Date) });
  expect(s.budget.max_amount).toBe(4000); // 20% of 20000, not the configured 30%
});

it('When a sub-merchant plans a split above the ratio it authorised, then the checkout is refused with SPLIT_RATIO_EXCEEDED and WeChat sees no request', async () => {
  const before = p.sim.control.calls.length;
  // 2001 fen of 10000 is within the gateway's 30% but above the sub-merchant's 20%.
  const res = await h.api('post', '/v1/checkouts', OTHER_API_KEY).send(checkoutBody({ amount: 10_000, profit_sharing: { receivers: receivers(1, 2001, 'over-') } })).expect(422);
  expect(res.body.error).toMatchObject({ code: 'SPLIT_RATIO_EXCEEDED', message: expect.stringContaining('20%') });
  expect(p.sim.control.calls.slice(before)).toEqual([]); // the remembered ratio: not even a ratio query
  await h.api('post', '/v1/checkouts', OTHER_API_KEY).send(checkoutBody({ amount: 10_000, profit_sharing: { receivers: receivers(1, 2000, 'atmax-') } })).expect(201);
});

it('When an on-demand split of a paid partner payment is above the authorised ratio, then 422 before any split request', async () => {
  const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } }, asPartner);
  const res = await h.api('post', `/v1/checkouts/${id}/splits`, OTHER_API_KEY).set('Idempotency-Key', `od-${id}`).send({ receivers: receivers(2, 1001, 'od-') }).expect(422);
  expect(res.body.error.code).toBe('SPLIT_RATIO_EXCEEDED');
  expect(splitRequests(h, transactionId, p.sim)).toEqual([]);
  expect(psCalls('/v3/profitsharing/receivers/add').filter((c) => String((c.body as { account?: string }).account).startsWith('od-'))).toEqual([]);
});

it('When the remembered ratio is older than a day, then it is read again: a ratio lowered at WeChat refuses what it allowed before', async () => {
  p.sim.control.partner.bind(p.subMchid, { maxRatioBp: 1000 });
  const plan = { amount: 10_000, profit_sharing: { receivers: receivers(1, 1500, 'low-') } };
  // Still fresh: the remembered 20% is used (WeChat would refuse later; the driver records that).
  await h.api('post', '/v1/checkouts', OTHER_API_KEY).send(checkoutBody(plan)).expect(201);
  await h.db.prisma.channelAccount.update({ where: { id: p.accountId }, data: { maxRatioAt: new Date(Date.now() - 25 * 3600_000) } });
  const queries = ratioQueries().length;
  const res = await h.api('post', '/v1/checkouts', OTHER_API_KEY).send(checkoutBody(plan)).expect(422);
  expect(res.body.error.code).toBe('SPLIT_RATIO_EXCEEDED');
  expect(ratioQueries()).toHaveLength(queries + 1);
  expect((await h.db.prisma.channelAccount.findUniqueOrThrow({ where: { id: p.accountId } })).maxRatioBp).toBe(1000);

  // No grant at all (NO_AUTH at WeChat): every split is refused with its own code, re-read each time.
  p.sim.control.partner.bind(p.subMchid, { maxRatioBp: null });
  await h.db.prisma.channelAccount.update({ where: { id: p.accountId }, data: { maxRatioAt: new Date(Date.now() - 25 * 3600_000) } });
  const none = await h.api('post', '/v1/checkouts', OTHER_API_KEY).send(checkoutBody({ amount: 10_000, profit_sharing: { receivers: receivers(1, 1, 'none-') } })).expect(422);
  expect(none.body.error.code).toBe('SPLIT_NOT_AUTHORISED');
  p.sim.control.partner.bind(p.subMchid, { maxRatioBp: 2000 });
  await h.api('post', '/v1/checkouts', OTHER_API_KEY).send(checkoutBody({ amount: 10_000, profit_sharing: { receivers: receivers(1, 1, 'again-') } })).expect(201);
});

it('When the sub-merchant lowered its grant since we read it, then WeChat\'s refusal fails the batch and makes the next split read the ratio again', async () => {
  p.sim.control.partner.bind(p.subMchid, { maxRatioBp: 1000 });
  try {
    // Remembered 20% (fresh): 15% passes our check; WeChat, at 10% now, refuses it.
    const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(1, 1500, 'lowered-') } }, asPartner);
    const s = await waitForSplitStatus(h, id, ['failed'], 15_000, OTHER_API_KEY);
    expect(s.batches[0]!.error).toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringContaining('最大分账比例') });
    expect((await h.db.prisma.channelAccount.findUniqueOrThrow({ where: { id: p.accountId } })).maxRatioAt).toBeNull();
    const res = await h.api('post', '/v1/checkouts', OTHER_API_KEY).send(checkoutBody({ amount: 10_000, profit_sharing: { receivers: receivers(1, 1500, 'lowered2-') } })).expect(422);
    expect(res.body.error.code).toBe('SPLIT_RATIO_EXCEEDED');
  } finally {
    p.sim.control.partner.bind(p.subMchid, { maxRatioBp: 2000 });
  }
});

it('When a paid partner split is reconciled, then its queries carry sub_mchid and nothing disagrees', async () => {
  const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(2, 500, 'rec-') } }, asPartner);
  await waitForSplitStatus(h, id, ['succeeded'], 15_000, OTHER_API_KEY);
  const before = p.sim.control.calls.length;
  expect(await reconcileCheckout(h.deps, id)).toEqual([]);
  const queries = p.sim.control.calls.slice(before).filter((c) => c.method === 'GET' && c.path.startsWith('/v3/profitsharing/orders/'));
  expect(queries.length).toBeGreaterThanOrEqual(1);
  expect(queries.every((c) => c.path.includes(`sub_mchid=${p.subMchid}&transaction_id=${transactionId}`) && c.status === 200)).toBe(true);
});

import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, waitForSplitStatus } from './split-support';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { PROFIT_SHARING_POLL_MS: '20' } });
  await h.startBackground();
});
afterAll(async () => h?.close());

it("When receivers declare their relation to the merchant, then it is what the channel records at receivers/add (PARTNER by default)", async () => {
  const plan = [
    { type: 'MERCHANT_ID', account: 'rel-supplier', name: '供应商有限公司', amount: 100, description: '货款', relation_type: 'SUPPLIER' },
    { type: 'PERSONAL_OPENID', account: 'o_rel_staff_openid_000001', amount: 50, description: '提成', relation_type: 'CUSTOM', custom_relation: '兼职导购' },
    { type: 'PERSONAL_OPENID', account: 'o_rel_default_openid_0001', amount: 50, description: '推广费' },
  ];
  const { id } = await paidCheckout(h, { amount: 1000, profit_sharing: { receivers: plan } });
  expect((await waitForSplitStatus(h, id, ['succeeded', 'partially_failed', 'failed'])).status).toBe('succeeded');
  const rel = (account: string) => h.sim.control.profitSharing.receivers().find((r) => r.account === account);
  expect(rel('rel-supplier')).toMatchObject({ relationType: 'SUPPLIER' });
  expect(rel('o_rel_staff_openid_000001')).toMatchObject({ relationType: 'CUSTOM', customRelation: '兼职导购' });
  expect(rel('o_rel_default_openid_0001')).toMatchObject({ relationType: 'PARTNER' });
});

it('When relation_type is CUSTOM without custom_relation (or the reverse), then the checkout is refused and nothing is written', async () => {
  const before = await h.db.prisma.checkout.count();
  for (const r of [
    { relation_type: 'CUSTOM' },
    { relation_type: 'STAFF', custom_relation: '导购' },
    { relation_type: 'FRIEND' },
  ]) {
    const res = await h.api('post', '/v1/checkouts').send({
      out_trade_no: `rel-bad-${Math.random().toString(36).slice(2, 10)}`, amount: 1000, description: 'x',
      profit_sharing: { receivers: [{ type: 'PERSONAL_OPENID', account: 'o_x_openid_00000000000001', amount: 10, description: 'x', ...r }] },
    }).expect(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect(res.body.error.field).toMatch(/^profit_sharing\.receivers\.0\.(custom_relation|relation_type)$/);
  }
  expect(await h.db.prisma.checkout.count()).toBe(before);
});

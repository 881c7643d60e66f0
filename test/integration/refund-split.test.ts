import type { PaymentChannel } from '../../src/channels/channel';
import { createRefund } from '../../src/modules/refunds/refund.service';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, waitFor, waitForSplitStatus } from './split-support';
import { ENV, newKey, postRefund, refundCalls, returnCalls, waitForRefund } from './refund-support';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { ...ENV, WECHATPAY_HTTP_TIMEOUT_MS: '1000' }, sim: { refundResultDelayMs: 0 } });
  await h.startBackground();
});
afterAll(async () => h?.close());
afterEach(() => h.sim.control.faults.clear());

/** Paid 1000 fen, split on demand to merchant receivers (tag000.., amounts given) and waited until SUCCESS. */
async function splitPayment(tag: string, amounts: number[], extra: Array<Record<string, unknown>> = []) {
  const c = await paidCheckout(h, { amount: 1000, profit_sharing: { mode: 'on_demand' } });
  const rs = [...amounts.map((a, i) => ({ ...receivers(1, a, `${tag}${i}-`)[0]! })), ...extra];
  await h.api('post', `/v1/checkouts/${c.id}/splits`).set('Idempotency-Key', newKey()).send({ receivers: rs }).expect(201);
  await waitForSplitStatus(h, c.id, ['succeeded']);
  return { ...c, accounts: rs.map((r) => r.account as string) };
}
const simReturns = (accounts: string[]) => h.sim.control.profitSharing.returns().filter((r) => accounts.includes(r.return_mchid as string));

describe('refunds of split payments', () => {
  test('When a partial refund asks proportional returns, then each merchant receiver returns its share, rounded so the total is exact, before the refund', async () => {
    const p = await splitPayment('prop', [100, 100, 99]);
    const before = p.accounts.map((a) => h.sim.control.profitSharing.receiverBalance(a));
    const r = await postRefund(h, p.id, { amount: 333, split_return: 'proportional' }).expect(201);
    // 333 × 299 / 1000 = 99.567 → 100 in all; floors 33 + 33 + 32, the extra fen to the largest remainders.
    expect(r.body.split_returns.map((x: { account: string; amount: number }) => [x.account, x.amount])).toEqual([
      [p.accounts[0], 34], [p.accounts[1], 33], [p.accounts[2], 33],
    ]);
    const done = await waitForRefund(h, r.body.id, ['succeeded']);
    expect(done.split_returns.every((x) => x.state === 'succeeded')).toBe(true);
    expect(p.accounts.map((a) => h.sim.control.profitSharing.receiverBalance(a))).toEqual([before[0]! - 34, before[1]! - 33, before[2]! - 33]);
    // Every return was made before the refund was asked for.
    const lastReturnAt = Math.max(...returnCalls(h).filter((c) => (c.body as { out_return_no: string }).out_return_no.startsWith(r.body.id)).map((c) => c.at));
    const refundAt = refundCalls(h).find((c) => (c.body as { out_refund_no: string }).out_refund_no === r.body.id)!.at;
    expect(lastReturnAt).toBeLessThanOrEqual(refundAt);
    const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: p.id } });
    expect([row.refundedFen, row.splitReturnedFen]).toEqual([333, 100]);
    // Another split must now fit (1000 − 333) × 30% = 200 against the 199 receivers keep.
    const more = await h.api('post', `/v1/checkouts/${p.id}/splits`).set('Idempotency-Key', newKey()).send({ receivers: receivers(1, 2, 'propmore') }).expect(422);
    expect(more.body.error.code).toBe('SPLIT_BUDGET_EXCEEDED');
  });

  test('When a full refund asks proportional returns, then everything split comes back and the whole payment is refunded', async () => {
    const p = await splitPayment('full', [150, 150]);
    const r = await postRefund(h, p.id, { amount: 1000, split_return: 'proportional' }).expect(201);
    expect(r.body.split_returns.map((x: { amount: number }) => x.amount)).toEqual([150, 150]);
    await waitForRefund(h, r.body.id, ['succeeded']);
    const co = (await h.api('get', `/v1/checkouts/${p.id}`).expect(200)).body;
    expect([co.refunded_amount, co.refundable_amount]).toEqual([1000, 0]);
  });

  test('When split_return lists accounts, then exactly those amounts come back', async () => {
    const p = await splitPayment('expl', [200, 80]);
    const r = await postRefund(h, p.id, { amount: 500, split_return: [{ account: p.accounts[1], amount: 50 }] }).expect(201);
    const done = await waitForRefund(h, r.body.id, ['succeeded']);
    expect(done.split_returns.map((x) => [x.account, x.amount, x.state])).toEqual([[p.accounts[1], 50, 'succeeded']]);
    expect(simReturns(p.accounts).map((x) => [x.return_mchid, x.amount, x.result])).toEqual([[p.accounts[1], 50, 'SUCCESS']]);
  });

  test('When split_return is none, then the merchant pays, but never more than what receivers do not keep', async () => {
    const p = await splitPayment('none', [200, 99]);
    const over = await postRefund(h, p.id, { amount: 702 }).expect(422);
    expect(over.body.error.code).toBe('REFUND_AMOUNT_EXCEEDED');
    const r = await postRefund(h, p.id, { amount: 701, split_return: 'none' }).expect(201);
    await waitForRefund(h, r.body.id, ['succeeded']);
    expect(simReturns(p.accounts)).toEqual([]);
  });
});

describe('a receiver that cannot return', () => {
  test('When the list names a personal receiver, then the refund is refused before anything is written', async () => {
    const openid = 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o';
    const p = await splitPayment('pers', [100], [{ type: 'PERSONAL_OPENID', account: openid, amount: 50, description: '个人', relation_type: 'USER' }]);
    const r = await postRefund(h, p.id, { amount: 200, split_return: [{ account: openid, amount: 50 }] }).expect(422);
    expect(r.body.error.code).toBe('RETURN_NOT_POSSIBLE');
    expect(r.body.error.message).toContain('PERSONAL_OPENID');
    expect(await h.db.prisma.refund.count({ where: { checkoutId: p.id } })).toBe(0);
  });

  test('When no receiver of the first group can return, then the refund fails with the reasons and no money moves', async () => {
    const p = await splitPayment('noret', [100, 100]);
    h.sim.control.profitSharing.setReturnsEnabled(p.accounts[0]!, false);
    h.sim.control.profitSharing.setReceiverBalance(p.accounts[1]!, 0);
    const r = await postRefund(h, p.id, { amount: 500, split_return: 'proportional' }).expect(201);
    const failed = await waitForRefund(h, r.body.id, ['failed']);
    expect(failed.failure_code).toBe('RETURN_FAILED');
    expect(failed.failure_reason).toContain('回退方没有开通分账回退功能');
    expect(failed.split_returns.map((x) => [x.state, x.reason])).toEqual([['failed', expect.stringContaining('回退方没有开通分账回退功能')], ['failed', 'BALANCE_NOT_ENOUGH']]);
    expect(simReturns(p.accounts).filter((x) => x.result === 'SUCCESS')).toEqual([]);
    expect(refundCalls(h).some((c) => (c.body as { out_refund_no: string }).out_refund_no === r.body.id)).toBe(false);
    const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: p.id } });
    expect([row.refundedFen, row.splitReturnedFen]).toEqual([0, 0]);
  });

  test('When a later receiver has not enough balance after an earlier return succeeded, then the refund waits visibly and a retry finishes it without returning twice', async () => {
    const p = await splitPayment('poor', [100, 100]);
    h.sim.control.profitSharing.setReceiverBalance(p.accounts[1]!, 10);
    const r = await postRefund(h, p.id, { amount: 500, split_return: 'proportional' }).expect(201);
    const stuck = await waitFor(async () => {
      const x = (await h.api('get', `/v1/refunds/${r.body.id}`).expect(200)).body;
      return x.failure_code === 'RETURN_FAILED' ? x : null;
    });
    expect(stuck.status).toBe('returning');
    expect(stuck.split_returns.map((x: { state: string; reason?: string }) => [x.state, x.reason ?? null])).toEqual([['succeeded', null], ['failed', 'BALANCE_NOT_ENOUGH']]);
    expect(stuck.failure_reason).toContain('retry');
    expect(refundCalls(h).some((c) => (c.body as { out_refund_no: string }).out_refund_no === r.body.id)).toBe(false);

    h.sim.control.profitSharing.setReceiverBalance(p.accounts[1]!, 1000);
    const retried = await h.api('post', `/v1/refunds/${r.body.id}/retry`).send({}).expect(200);
    expect(retried.body.split_returns[1].out_return_no).toMatch(/-r1-1$/);
    const done = await waitForRefund(h, r.body.id, ['succeeded']);
    expect(done.split_returns.map((x) => x.state)).toEqual(['succeeded', 'succeeded']);
    const made = simReturns(p.accounts);
    expect(made.filter((x) => x.result === 'SUCCESS').map((x) => [x.return_mchid, x.amount])).toEqual([[p.accounts[0], 50], [p.accounts[1], 50]]);
    expect(made.filter((x) => x.result === 'FAILED')).toHaveLength(1);
    expect(h.sim.control.refunds.refunds().filter((x) => x.out_refund_no === r.body.id)).toHaveLength(1);
    await h.api('post', `/v1/refunds/${r.body.id}/retry`).send({}).expect(409);
  });
});

test('When returns go one by one (REFUND_RETURN_CONCURRENCY=1) and the first cannot return, then the others are cancelled unsent', async () => {
  const p = await splitPayment('seq', [100, 100]);
  h.sim.control.profitSharing.setReturnsEnabled(p.accounts[0]!, false);
  const seq = { ...h.deps, config: { ...h.deps.config, REFUND_RETURN_CONCURRENCY: 1 } };
  const created = await createRefund(seq, 'mch_test', p.id, { amount: 500, split_return: 'proportional' }, newKey());
  const failed = await waitForRefund(h, created.id, ['failed']);
  expect(failed.split_returns.map((x) => x.state)).toEqual(['failed', 'cancelled']);
  expect(returnCalls(h).filter((c) => (c.body as { out_return_no: string }).out_return_no.startsWith(created.id))).toHaveLength(1);
  expect(simReturns(p.accounts)).toEqual([]);
});

test('When the same POST (same Idempotency-Key) is sent again after a return failed next to a success, then the refund is finished too', async () => {
  const p = await splitPayment('poor2', [100, 100]);
  h.sim.control.profitSharing.setReceiverBalance(p.accounts[1]!, 10);
  const key = newKey();
  const r = await postRefund(h, p.id, { amount: 500, split_return: 'proportional' }, key).expect(201);
  await waitFor(async () => (await h.api('get', `/v1/refunds/${r.body.id}`).expect(200)).body.failure_code === 'RETURN_FAILED');
  h.sim.control.profitSharing.setReceiverBalance(p.accounts[1]!, 1000);
  const again = await postRefund(h, p.id, { amount: 500, split_return: 'proportional' }, key).expect(201);
  expect([again.headers['idempotent-replayed'], again.body.id]).toEqual(['true', r.body.id]);
  const done = await waitForRefund(h, r.body.id, ['succeeded']);
  expect(done.split_returns.map((x) => [x.out_return_no.endsWith('-r1-1') || x.out_return_no.endsWith('-r0'), x.state])).toEqual([[true, 'succeeded'], [true, 'succeeded']]);
  expect(h.sim.control.refunds.refunds().filter((x) => x.out_refund_no === r.body.id)).toHaveLength(1);
});

describe('crashes', () => {
  test('When the process dies after WeChat made the return but before we stored it, then the restart neither returns nor refunds twice', async () => {
    const p = await splitPayment('crash', [100, 100]);
    // A "process" whose channel freezes forever right after the first return reached WeChat.
    let frozen = false;
    const channel = new Proxy(h.deps.channel, {
      get(target, prop: keyof PaymentChannel) {
        if (prop === 'createReturnOrder')
          return async (input: Parameters<PaymentChannel['createReturnOrder']>[0]) => {
            await target.createReturnOrder(input);
            frozen = true;
            return new Promise(() => undefined);
          };
        return target[prop];
      },
    });
    const created = await createRefund({ ...h.deps, channel }, 'mch_test', p.id, { amount: 400, split_return: 'proportional' }, newKey());
    await waitFor(async () => frozen, 10_000, 'the first return');
    const first = created.split_returns[0]!.out_return_no;
    // The dead process's lease ends; the sync loop of the living one takes over.
    await h.db.prisma.refund.update({ where: { id: created.id }, data: { leaseUntil: new Date(Date.now() - 1) } });
    const done = await waitForRefund(h, created.id, ['succeeded']);
    expect(done.split_returns.map((x) => x.state)).toEqual(['succeeded', 'succeeded']);
    const returnsMade = h.sim.control.profitSharing.returns().filter((x) => (x.out_return_no as string).startsWith(created.id));
    expect(returnsMade.map((x) => x.out_return_no).sort()).toEqual(created.split_returns.map((x) => x.out_return_no).sort());
    // The first return was sent twice (same number) and made once.
    expect(returnCalls(h).filter((c) => (c.body as { out_return_no: string }).out_return_no === first)).toHaveLength(2);
    expect(h.sim.control.refunds.refunds().filter((x) => x.out_refund_no === created.id)).toHaveLength(1);
  });

  test('When the return answer is lost (timeout after WeChat acted), then the same out_return_no is re-sent and the money moves once', async () => {
    const p = await splitPayment('lost', [120]);
    h.sim.control.faults.timeoutNext(1, { pathPrefix: '/v3/profitsharing/return-orders', afterProcessing: true });
    const before = h.sim.control.profitSharing.receiverBalance(p.accounts[0]!);
    const r = await postRefund(h, p.id, { amount: 500, split_return: 'proportional' }).expect(201);
    const done = await waitForRefund(h, r.body.id, ['succeeded'], 20_000);
    expect(done.split_returns.map((x) => [x.amount, x.state])).toEqual([[60, 'succeeded']]);
    expect(h.sim.control.profitSharing.receiverBalance(p.accounts[0]!)).toBe(before - 60);
    expect(returnCalls(h).filter((c) => (c.body as { out_return_no: string }).out_return_no === done.split_returns[0]!.out_return_no).length).toBeGreaterThanOrEqual(2);
  });
});

describe('refunds racing splits', () => {
  test('When refunds and on-demand splits race on one payment, then refunds plus what receivers keep never exceed the payment', async () => {
    const c = await paidCheckout(h, { amount: 1000, profit_sharing: { mode: 'on_demand' } });
    const splits = Array.from({ length: 10 }, (_, i) =>
      h.api('post', `/v1/checkouts/${c.id}/splits`).set('Idempotency-Key', newKey()).send({ receivers: receivers(1, 60, `race${i}-`) }),
    );
    const refunds = Array.from({ length: 10 }, () => postRefund(h, c.id, { amount: 150 }));
    const answers = await Promise.all([...splits, ...refunds]);
    const splitOk = answers.slice(0, 10).filter((a) => a.status === 201).length;
    const refundOk = answers.slice(10).filter((a) => a.status === 201);
    for (const a of answers) expect([201, 422]).toContain(a.status);
    const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.id } });
    expect(row.refundedFen).toBe(refundOk.length * 150);
    // Reserved when accepted; a batch the channel refuses later (the refunds shrank its ratio base) is released.
    expect((await h.db.prisma.split.aggregate({ where: { checkoutId: c.id }, _sum: { totalFen: true } }))._sum.totalFen ?? 0).toBe(splitOk * 60);
    expect(row.splitReservedFen).toBeLessThanOrEqual(splitOk * 60);
    expect(row.refundedFen + row.splitReservedFen - row.splitReturnedFen).toBeLessThanOrEqual(1000);
    // Each split was checked against (paid − refunded at its turn) × 30%, so the last one accepted fit then.
    expect(row.splitReservedFen).toBeLessThanOrEqual(300);
    await Promise.all(refundOk.map((a) => waitForRefund(h, a.body.id, ['succeeded'])));
  });
});

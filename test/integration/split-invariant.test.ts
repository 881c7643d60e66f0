import { withIdempotency } from '../../src/http/idempotency';
import type { PrismaClient } from '../../src/lib/prisma';
import { reserveSplit } from '../../src/modules/splits/split.budget';
import type { SplitQueue } from '../../src/modules/splits/split.queue';
import { createOnDemandSplit } from '../../src/modules/splits/split.service';
import { checkoutBody, startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, splitOf } from './split-support';

/** Workers are not started: what is reserved stays reserved, so the test sees the budget decision alone. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { PROFIT_SHARING_RECEIVER_LIMIT: '5' } });
});
afterAll(async () => h?.close());

const split = (id: string, key: string, body: unknown) => h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', key).send(body as object);

it('When 20 on-demand splits race for one payment, then exactly those that fit the 30% budget are accepted and the rest get 422, as the database shows', async () => {
  const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } }); // budget 3000
  // Each alone fits (≤ 3000); together 20 × 700 = 14 000. Different sizes so "which fit" is not trivial.
  const sizes = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 700 : 400));
  const answers = await Promise.all(sizes.map((amt, i) => split(id, `race-${i}`, { receivers: [{ ...receivers(1, amt, `race${i}-`)[0] }] })));
  const accepted = answers.filter((a) => a.status === 201);
  const refused = answers.filter((a) => a.status !== 201);
  const acceptedSum = accepted.reduce((s, a) => s + (a.body.amount as number), 0);

  expect(accepted.length + refused.length).toBe(20);
  expect(acceptedSum).toBeLessThanOrEqual(3000);
  expect(refused.map((a) => [a.status, a.body.error?.code])).toEqual(refused.map(() => [422, "SPLIT_BUDGET_EXCEEDED"]));
  // "Exactly the ones that fit": every refused split would have broken the budget at its turn.
  // Since the smallest split is 400, a refusal means fewer than 400 (or 700) fen remained.
  const refusedSizes = answers.flatMap((a, i) => (a.status === 201 ? [] : [sizes[i]!]));
  expect(3000 - acceptedSum).toBeLessThan(Math.min(...refusedSizes));

  const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
  expect(row.splitReservedFen).toBe(acceptedSum);
  expect(row.splitSeq).toBe(accepted.length);
  const dbSplits = await h.db.prisma.split.findMany({ where: { checkoutId: id } });
  expect(dbSplits).toHaveLength(accepted.length);
  expect(dbSplits.reduce((s, x) => s + x.totalFen, 0)).toBe(acceptedSum);
  const dbReceivers = await h.db.prisma.splitReceiver.aggregate({ where: { checkoutId: id }, _sum: { amountFen: true }, _count: true });
  expect(dbReceivers._sum.amountFen).toBe(acceptedSum);
  expect(dbReceivers._count).toBe(accepted.length);
  expect(new Set(dbSplits.map((s) => s.seq)).size).toBe(accepted.length);
});

it('When 20 reservations race in the database itself (no JavaScript pre-check), then the conditional UPDATE alone keeps the sum within the budget', async () => {
  const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } });
  const limits = { receiverLimit: 5, maxRatio: 0.3, maxRequests: 50 };
  const results = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) =>
      reserveSplit(h.db.prisma, { checkoutId: id, kind: 'on_demand', receivers: receivers(1, 450, `db${i}-`), limits, now: new Date(), unfreezeWithLastBatch: false }),
    ),
  );
  const ok = results.filter((r) => r.status === 'fulfilled');
  expect(ok).toHaveLength(6); // floor(3000 / 450)
  expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason.code === 'SPLIT_BUDGET_EXCEEDED')).toBe(true);
  expect((await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).splitReservedFen).toBe(2700);
  expect((await h.db.prisma.splitReceiver.aggregate({ where: { checkoutId: id }, _sum: { amountFen: true } }))._sum.amountFen).toBe(2700);
});

describe('Idempotency-Key stored on the split: one key never reserves twice', () => {
  const noQueue: SplitQueue = { prefix: 'unused', enqueue: async () => undefined, close: async () => undefined };

  /** The real client, except that split.findUniqueOrThrow fails once (a connection blip). */
  function failingOnce(real: PrismaClient): PrismaClient {
    let failed = false;
    return new Proxy(real, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target) as unknown;
        if (prop !== 'split') return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
        return new Proxy(v as object, {
          get(t, p) {
            const f = Reflect.get(t, p, t) as (...x: unknown[]) => unknown;
            if (p === 'findUniqueOrThrow' && !failed) {
              return () => {
                failed = true;
                throw new Error('connection reset');
              };
            }
            return typeof f === 'function' ? f.bind(t) : f;
          },
        });
      },
    }) as PrismaClient;
  }

  it('When the split is reserved but reading the answer fails, then a retry with the same Idempotency-Key returns that split instead of reserving a second', async () => {
    const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } });
    const body = { receivers: receivers(1, 500, 'idem-') };
    // Exactly what split.routes.ts does for POST /v1/checkouts/:id/splits.
    const post = (prisma: PrismaClient) =>
      withIdempotency(h.db.prisma, { merchantId: 'mch_test', scope: `POST /v1/checkouts/${id}/splits`, key: 'same-key-1', body }, async () => ({
        status: 201,
        body: await createOnDemandSplit({ ...h.deps, prisma }, noQueue, 'mch_test', id, body.receivers, 'same-key-1'),
      }));
    await expect(post(failingOnce(h.db.prisma))).rejects.toThrow('connection reset'); // the merchant sees a 500 and retries
    const retry = await post(h.db.prisma);

    expect(await h.db.prisma.split.count({ where: { checkoutId: id } })).toBe(1);
    const stored = await h.db.prisma.split.findFirstOrThrow({ where: { checkoutId: id } });
    expect(stored.idempotencyKey).toBe('same-key-1');
    expect(retry.body).toMatchObject({ id: stored.id, amount: 500 });
    expect((await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).splitReservedFen).toBe(500);
  }, 30_000);

  it('When the stored answer is lost after the split used the whole budget, then the same key gets the same split (not 422), and other receivers under it get 409', async () => {
    const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } }); // budget 3000
    const body = { receivers: receivers(2, 1500, 'full-') };
    const first = await split(id, 'full-key', body).expect(201);
    await h.db.prisma.idempotencyRecord.deleteMany({ where: { key: 'full-key' } }); // the answer is gone

    const again = await split(id, 'full-key', body).expect(201);
    expect(again.body.id).toBe(first.body.id);
    await h.db.prisma.idempotencyRecord.deleteMany({ where: { key: 'full-key' } });
    const other = await split(id, 'full-key', { receivers: receivers(1, 10, 'other-') }).expect(409);
    expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await h.db.prisma.split.count({ where: { checkoutId: id } })).toBe(1);
    expect((await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).splitReservedFen).toBe(3000);
  }, 30_000);

  it('When 10 reservations with the same Idempotency-Key race in the database, then one split is reserved and every caller gets it', async () => {
    const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } });
    const limits = { receiverLimit: 5, maxRatio: 0.3, maxRequests: 50 };
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        reserveSplit(h.db.prisma, { checkoutId: id, kind: 'on_demand', receivers: receivers(7, 100, 'dup-'), limits, now: new Date(), unfreezeWithLastBatch: false, idempotencyKey: 'dup-key' }),
      ),
    );
    expect(new Set(results.map((r) => r.splitId)).size).toBe(1);
    expect(results.filter((r) => !r.existing)).toHaveLength(1);
    expect(results.every((r) => r.batches.length === 2 && r.batches[0]!.receivers === 5)).toBe(true);
    const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
    expect([row.splitReservedFen, row.splitRequests, row.splitSeq]).toEqual([700, 2, 1]);
    expect(await h.db.prisma.splitReceiver.count({ where: { checkoutId: id } })).toBe(7);
  }, 30_000);
});

it('When a split would need more channel requests than remain, then 422 SPLIT_REQUEST_LIMIT and nothing is written', async () => {
  const { id } = await paidCheckout(h, { amount: 100_000, profit_sharing: { mode: 'on_demand' } });
  await split(id, 'req-1', { receivers: receivers(245, 10, 'q1-') }).expect(201); // 49 requests of 50
  const r = await split(id, 'req-2', { receivers: receivers(6, 10, 'q2-') }).expect(422); // 2 more
  expect(r.body.error.code).toBe('SPLIT_REQUEST_LIMIT');
  expect(await h.db.prisma.split.count({ where: { checkoutId: id } })).toBe(1);
  await split(id, 'req-3', { receivers: receivers(5, 10, 'q3-') }).expect(201); // the 50th
});

describe('validation: clear 4xx, nothing written', () => {
  let id: string;
  beforeAll(async () => {
    ({ id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } }));
  });
  const nothingWritten = async () => {
    expect(await h.db.prisma.split.count({ where: { checkoutId: id } })).toBe(0);
    expect((await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).splitReservedFen).toBe(0);
  };

  it.each([
    ['a fractional amount', { receivers: [{ ...receivers(1, 1)[0], amount: 1.5 }] }, 'receivers.0.amount'],
    ['a zero amount', { receivers: [{ ...receivers(1, 1)[0], amount: 0 }] }, 'receivers.0.amount'],
    ['a negative amount', { receivers: [{ ...receivers(1, 1)[0], amount: -5 }] }, 'receivers.0.amount'],
    ['a receiver twice', { receivers: [receivers(1, 5)[0], receivers(1, 6)[0]] }, 'receivers.1.account'],
    ['no receivers', { receivers: [] }, 'receivers'],
    ['a merchant receiver without name', { receivers: [{ ...receivers(1, 5)[0], name: undefined }] }, 'receivers.0.name'],
    ['an unknown field', { receivers: receivers(1, 5), extra: 1 }, undefined],
  ])('When the split has %s, then 400 VALIDATION_FAILED', async (_what, body, field) => {
    const r = await split(id, `bad-${_what.replace(/\W/g, "_")}`, body).expect(400);
    expect(r.body.error.code).toBe('VALIDATION_FAILED');
    if (field) expect(r.body.error.field).toBe(field);
    await nothingWritten();
  });

  it('When the total exceeds the remaining ratio budget, then 422 SPLIT_BUDGET_EXCEEDED', async () => {
    const r = await split(id, 'over', { receivers: receivers(2, 1501) }).expect(422);
    expect(r.body.error).toMatchObject({ code: 'SPLIT_BUDGET_EXCEEDED', field: 'receivers' });
    expect(r.body.error.message).toMatch(/3000 fen/);
    await nothingWritten();
  });

  it('When the Idempotency-Key is missing, then 400', async () => {
    const r = await h.api('post', `/v1/checkouts/${id}/splits`).send({ receivers: receivers(1, 5) }).expect(400);
    expect(r.body.error.field).toBe('Idempotency-Key');
    await nothingWritten();
  });
});

it('When the checkout is unpaid, has no profit sharing, or splits by plan, then on-demand splits are refused with 409 SPLIT_NOT_ALLOWED', async () => {
  const open = await h.api('post', '/v1/checkouts').send(checkoutBody({ profit_sharing: { mode: 'on_demand' } })).expect(201);
  expect((await split(open.body.id, 'u1', { receivers: receivers(1, 5) }).expect(409)).body.error.message).toMatch(/open/);
  const none = await paidCheckout(h, { amount: 1000 });
  expect((await split(none.id, 'u2', { receivers: receivers(1, 5) }).expect(409)).body.error.message).toMatch(/not enabled/);
  const planned = await h.api('post', '/v1/checkouts').send(checkoutBody({ profit_sharing: { receivers: receivers(1, 5) } })).expect(201);
  expect((await split(planned.body.id, 'u3', { receivers: receivers(1, 5) }).expect(409)).body.error.code).toBe('SPLIT_NOT_ALLOWED');
  for (const cid of [open.body.id, none.id, planned.body.id]) expect(await h.db.prisma.split.count({ where: { checkoutId: cid } })).toBe(0);
  // Another merchant's checkout does not exist for this one.
  await h.api('post', `/v1/checkouts/${none.id}/splits`, 'sk_test_merchant_key_000000002').set('Idempotency-Key', 'x').send({ receivers: receivers(1, 5) }).expect(404);
});

it('When a plan breaks the rules at checkout creation, then 4xx and no checkout', async () => {
  const before = await h.db.prisma.checkout.count();
  const over = await h.api('post', '/v1/checkouts').send(checkoutBody({ amount: 1000, profit_sharing: { receivers: receivers(2, 200) } })).expect(422);
  expect(over.body.error.code).toBe('SPLIT_BUDGET_EXCEEDED');
  const dup = await h.api('post', '/v1/checkouts').send(checkoutBody({ amount: 1000, profit_sharing: { receivers: [receivers(1, 5)[0], receivers(1, 5)[0]] } })).expect(400);
  expect(dup.body.error.code).toBe('VALIDATION_FAILED');
  const many = await h.api('post', '/v1/checkouts').send(checkoutBody({ amount: 100_000, profit_sharing: { receivers: receivers(251, 1) } })).expect(422);
  expect(many.body.error.code).toBe('SPLIT_REQUEST_LIMIT'); // 251 receivers / 5 = 51 requests > 50
  expect(await h.db.prisma.checkout.count()).toBe(before);
});

it('When the plan is replaced before splitting starts, then the new plan is used; once started, replacing is refused', async () => {
  const c = await h.api('post', '/v1/checkouts').send(checkoutBody({ amount: 1000, profit_sharing: { receivers: receivers(1, 100, 'old-') } })).expect(201);
  const put = await h.api('put', `/v1/checkouts/${c.body.id}/split-plan`).send({ receivers: receivers(2, 50, 'new-') }).expect(200);
  expect(put.body.split.plan.map((r: { account: string }) => r.account)).toEqual(['new-000', 'new-001']);
  const bad = await h.api('put', `/v1/checkouts/${c.body.id}/split-plan`).send({ receivers: receivers(1, 400) }).expect(422);
  expect(bad.body.error.code).toBe('SPLIT_BUDGET_EXCEEDED');
  const none = await h.api('post', '/v1/checkouts').send(checkoutBody()).expect(201);
  expect((await h.api('put', `/v1/checkouts/${none.body.id}/split-plan`).send({ receivers: receivers(1, 1) }).expect(409)).body.error.code).toBe('SPLIT_NOT_ALLOWED');
  // Splitting started (the reservation ran): the plan is frozen.
  await h.db.prisma.checkout.update({ where: { id: c.body.id }, data: { splitSeq: 1 } });
  const late = await h.api('put', `/v1/checkouts/${c.body.id}/split-plan`).send({ receivers: receivers(1, 10) }).expect(409);
  expect(late.body.error.message).toMatch(/already started/);
  expect((await splitOf(h, c.body.id)).status).toBeDefined();
});

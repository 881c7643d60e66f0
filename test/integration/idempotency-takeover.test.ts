import { createHash } from 'node:crypto';
import { canonicalJson, IN_PROGRESS_LEASE_MS } from '../../src/http/idempotency';
import { checkoutBody, startHarness, type Harness } from '../support/harness';

/**
 * Idempotency-Key takeover (src/http/idempotency.ts): a key left "in progress" by a crashed request
 * is taken over after the lease. After a takeover the key must behave like any other: replayed,
 * never two effects — also when the crashed request had already created its checkout, and when two
 * retries take over at the same moment.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

const hashOf = (body: unknown) => createHash('sha256').update(canonicalJson(body)).digest('hex');
const abandon = (key: string, body: unknown) =>
  h.db.prisma.idempotencyRecord.create({
    data: { id: `idem_${key}`, merchantId: 'mch_test', scope: 'POST /v1/checkouts', key, requestHash: hashOf(body), createdAt: new Date(Date.now() - IN_PROGRESS_LEASE_MS - 5_000) },
  });
const checkoutsOf = (body: Record<string, unknown>) => h.db.prisma.checkout.findMany({ where: { outTradeNo: body.out_trade_no as string } });

it('When a retry took over an abandoned key, then a later retry replays its answer (same checkout, Idempotent-Replayed)', async () => {
  const body = checkoutBody();
  await abandon('takeover-replay', body);
  const first = await h.api('post', '/v1/checkouts').set('Idempotency-Key', 'takeover-replay').send(body).expect(201);
  expect(first.headers['idempotent-replayed']).toBeUndefined();
  const again = await h.api('post', '/v1/checkouts').set('Idempotency-Key', 'takeover-replay').send(body).expect(201);
  expect(again.headers['idempotent-replayed']).toBe('true');
  expect(again.body.id).toBe(first.body.id);
  expect(await checkoutsOf(body)).toHaveLength(1);
  // Another body under the taken-over key is still refused.
  await h.api('post', '/v1/checkouts').set('Idempotency-Key', 'takeover-replay').send(checkoutBody()).expect(409);
});

it('When the first request crashed after creating its checkout (key left in progress), then the retry after the lease returns that checkout, not a second one', async () => {
  const body = checkoutBody();
  // "Crash": the checkout is committed, then neither the answer nor the release of the key is written.
  const upd = jest.spyOn(h.deps.prisma.idempotencyRecord, 'update').mockRejectedValueOnce(new Error('process died'));
  const del = jest.spyOn(h.deps.prisma.idempotencyRecord, 'delete').mockRejectedValueOnce(new Error('process died'));
  await h.api('post', '/v1/checkouts').set('Idempotency-Key', 'crash-after-create').send(body).expect(500);
  upd.mockRestore();
  del.mockRestore();
  const created = await checkoutsOf(body);
  expect(created).toHaveLength(1);
  const rec = await h.db.prisma.idempotencyRecord.findFirstOrThrow({ where: { key: 'crash-after-create' } });
  expect(rec.responseCode).toBeNull();
  // Before the lease ends: still in progress.
  expect((await h.api('post', '/v1/checkouts').set('Idempotency-Key', 'crash-after-create').send(body).expect(409)).body.error.code).toBe('IDEMPOTENCY_IN_PROGRESS');
  await h.db.prisma.idempotencyRecord.update({ where: { id: rec.id }, data: { createdAt: new Date(Date.now() - IN_PROGRESS_LEASE_MS - 5_000) } });

  const retry = await h.api('post', '/v1/checkouts').set('Idempotency-Key', 'crash-after-create').send(body).expect(201);
  expect(retry.body.id).toBe(created[0]!.id);
  expect(await checkoutsOf(body)).toHaveLength(1);
  const replay = await h.api('post', '/v1/checkouts').set('Idempotency-Key', 'crash-after-create').send(body).expect(201);
  expect(replay.body.id).toBe(created[0]!.id);
});

it('When two retries take over the same abandoned key at once, then one checkout exists and every 201 names it', async () => {
  const body = checkoutBody();
  await abandon('takeover-race', body);
  const answers = await Promise.all(
    [1, 2, 3].map(() => h.api('post', '/v1/checkouts').set('Idempotency-Key', 'takeover-race').send(body)),
  );
  const statuses = answers.map((a) => a.status);
  expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
  expect(statuses).toContain(201);
  for (const a of answers.filter((x) => x.status === 409)) expect(a.body.error.code).toBe('IDEMPOTENCY_IN_PROGRESS');
  const rows = await checkoutsOf(body);
  expect(rows).toHaveLength(1);
  for (const a of answers.filter((x) => x.status === 201)) expect(a.body.id).toBe(rows[0]!.id);
  expect(await h.db.prisma.idempotencyRecord.count({ where: { key: 'takeover-race' } })).toBe(1);
});

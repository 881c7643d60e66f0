import { Pool } from 'pg';
import { dispatchOutboxOnce, OUTBOX_BATCH } from '../../src/jobs/outbox.dispatcher';
import { createPrisma, Prisma } from '../../src/lib/prisma';
import { createTestDatabase } from '../support/db';
import { startHarness, type Harness } from '../support/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

const rowsOf = (type: string) => h.db.prisma.outboxEvent.findMany({ where: { type }, orderBy: { id: 'asc' } });

it('When two dispatchers run at once over slow handlers, then each event is handled once and recorded on its own', async () => {
  await h.db.prisma.outboxEvent.createMany({ data: [1, 2, 3].map((i) => ({ type: 't.slow', aggregateId: `s${i}`, payload: {} })) });
  const seen: string[] = [];
  const slow = async (e: { aggregateId: string }) => {
    seen.push(e.aggregateId);
    await new Promise((r) => setTimeout(r, 300));
  };
  const [a, b] = await Promise.all([
    dispatchOutboxOnce(h.deps, { 't.slow': [slow] }),
    dispatchOutboxOnce(h.deps, { 't.slow': [slow] }),
  ]);
  expect(a + b).toBe(3);
  expect(seen.sort()).toEqual(['s1', 's2', 's3']);
  expect((await rowsOf('t.slow')).every((r) => r.processedAt !== null && r.attempts === 1)).toBe(true);
});

it('When every handler of an event has nothing to do, then the claim marks it processed without calling them', async () => {
  await h.db.prisma.outboxEvent.createMany({
    data: [
      { type: 't.idle', aggregateId: 'i1', payload: { work: false } },
      { type: 't.idle', aggregateId: 'i2', payload: { work: true } },
      { type: 't.half', aggregateId: 'h1', payload: { work: false } },
    ],
  });
  const called: string[] = [];
  const record = async (e: { aggregateId: string }) => void called.push(e.aggregateId);
  const noWork = Prisma.sql`o.payload->>'work' = 'false'`;
  const handlers = {
    't.idle': [Object.assign(record, { idleWhen: noWork }), Object.assign(async () => undefined, { idleWhen: noWork })],
    // One handler that cannot tell: its events always run.
    't.half': [Object.assign(async (e: { aggregateId: string }) => void called.push(e.aggregateId), { idleWhen: noWork }), async () => undefined],
  };
  expect(await dispatchOutboxOnce(h.deps, handlers)).toBe(3);
  expect(called.sort()).toEqual(['h1', 'i2']);
  const rows = [...(await rowsOf('t.idle')), ...(await rowsOf('t.half'))];
  expect(rows.map((r) => [r.aggregateId, r.processedAt !== null, r.attempts])).toEqual([['i1', true, 1], ['i2', true, 1], ['h1', true, 1]]);
  expect(await dispatchOutboxOnce(h.deps, handlers)).toBe(0);
});

it('When a handler fails, then that event backs off with its error while the others are processed', async () => {
  await h.db.prisma.outboxEvent.createMany({ data: ['ok1', 'bad', 'ok2'].map((id) => ({ type: 't.mixed', aggregateId: id, payload: {} })) });
  const handler = async (e: { aggregateId: string }) => {
    if (e.aggregateId === 'bad') throw new Error('channel down');
  };
  expect(await dispatchOutboxOnce(h.deps, { 't.mixed': [handler] })).toBe(2);
  const rows = await rowsOf('t.mixed');
  const bad = rows.find((r) => r.aggregateId === 'bad')!;
  expect(bad).toMatchObject({ processedAt: null, attempts: 1, lastError: 'channel down' });
  expect(bad.availableAt.getTime()).toBeGreaterThan(Date.now());
  expect(rows.filter((r) => r.processedAt !== null).map((r) => r.aggregateId)).toEqual(['ok1', 'ok2']);
  // Not picked again before its backoff ends.
  expect(await dispatchOutboxOnce(h.deps, { 't.mixed': [handler] })).toBe(0);
});

it('When a dispatcher dies after claiming, then the events come back once the lease ends', async () => {
  await h.db.prisma.outboxEvent.create({ data: { type: 't.lease', aggregateId: 'l1', payload: {} } });
  const crash = async () => {
    throw Object.assign(new Error('process killed'), { fatal: true });
  };
  // Claim with a short lease, and "die": simulate by failing the outcome write.
  const spy = jest.spyOn(h.deps.prisma.outboxEvent, 'update').mockRejectedValue(new Error('connection lost'));
  await dispatchOutboxOnce(h.deps, { 't.lease': [crash] }, { leaseMs: 200 });
  spy.mockRestore();
  expect(await dispatchOutboxOnce(h.deps, { 't.lease': [async () => undefined] })).toBe(0); // still leased
  await new Promise((r) => setTimeout(r, 250));
  expect(await dispatchOutboxOnce(h.deps, { 't.lease': [async () => undefined] })).toBe(1);
});

it('When marking a pass processed fails (a crash after its handlers ran), then its events come back after the lease and are handled again', async () => {
  await h.db.prisma.outboxEvent.createMany({ data: ['m1', 'm2', 'm3'].map((id) => ({ type: 't.mark', aggregateId: id, payload: {} })) });
  const seen: string[] = [];
  const handler = async (e: { aggregateId: string }) => void seen.push(e.aggregateId);
  // PostgreSQL refuses the done-mark (a trigger on these rows): the pass's handlers have run, its rows stay unprocessed.
  await h.db.prisma.$executeRawUnsafe(`CREATE FUNCTION refuse_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'connection lost'; END $$`);
  await h.db.prisma.$executeRawUnsafe(`CREATE TRIGGER refuse_mark BEFORE UPDATE ON outbox_events FOR EACH ROW
    WHEN (OLD.type = 't.mark' AND OLD.processed_at IS NULL AND NEW.processed_at IS NOT NULL) EXECUTE FUNCTION refuse_mark()`);
  await expect(dispatchOutboxOnce(h.deps, { 't.mark': [handler] }, { leaseMs: 200 })).rejects.toThrow('connection lost');
  await h.db.prisma.$executeRawUnsafe('DROP TRIGGER refuse_mark ON outbox_events');
  expect(seen).toEqual(['m1', 'm2', 'm3']);
  expect((await rowsOf('t.mark')).every((r) => r.processedAt === null)).toBe(true);
  expect(await dispatchOutboxOnce(h.deps, { 't.mark': [handler] })).toBe(0); // still leased
  await new Promise((r) => setTimeout(r, 250));
  expect(await dispatchOutboxOnce(h.deps, { 't.mark': [handler] })).toBe(3);
  expect(seen).toEqual(['m1', 'm2', 'm3', 'm1', 'm2', 'm3']);
  expect((await rowsOf('t.mark')).every((r) => r.processedAt !== null && r.attempts === 1)).toBe(true);
});

it('When a handler prepares its pass, then it reads once for all the pass\'s events of its type, each event is handled with it, and a failed prepare falls back to one call per event', async () => {
  await h.db.prisma.outboxEvent.createMany({ data: ['p1', 'p2', 'p3'].map((id) => ({ type: 't.prep', aggregateId: id, payload: {} })) });
  const prepared: string[][] = [];
  const handled: string[] = [];
  const handler = Object.assign(async (e: { aggregateId: string }) => void handled.push(`plain:${e.aggregateId}`), {
    prepare: async (events: Array<{ aggregateId: string }>) => {
      prepared.push(events.map((e) => e.aggregateId));
      return async (e: { aggregateId: string }) => void handled.push(`prepared:${e.aggregateId}`);
    },
  });
  expect(await dispatchOutboxOnce(h.deps, { 't.prep': [handler] })).toBe(3);
  expect(prepared).toEqual([['p1', 'p2', 'p3']]);
  expect(handled).toEqual(['prepared:p1', 'prepared:p2', 'prepared:p3']);

  await h.db.prisma.outboxEvent.createMany({ data: ['f1', 'f2'].map((id) => ({ type: 't.prepfail', aggregateId: id, payload: {} })) });
  handled.length = 0;
  const failing = Object.assign(async (e: { aggregateId: string }) => void handled.push(`plain:${e.aggregateId}`), {
    prepare: async () => {
      throw new Error('database busy');
    },
  });
  expect(await dispatchOutboxOnce(h.deps, { 't.prepfail': [failing] })).toBe(2);
  expect(handled).toEqual(['plain:f1', 'plain:f2']);
  expect((await rowsOf('t.prepfail')).every((r) => r.processedAt !== null)).toBe(true);
});

it('When the claim runs on a plan made while the table was empty, then a pass still claims exactly one batch (the subquery is not re-run per row)', async () => {
  // A prepared statement keeps the plan it was first given: in the bench, planned on an empty table,
  // `WHERE id IN (SELECT … LIMIT 20 FOR UPDATE SKIP LOCKED)` became a nested loop that re-ran the
  // subquery for every row, each run skipping the rows already leased: 33–36 rows per pass, so the
  // pass never looked full and the loop slept 250 ms after each (a 25 s drain after a burst).
  const db = await createTestDatabase();
  const pool = new Pool({ connectionString: db.url, max: 1, options: '-c plan_cache_mode=force_generic_plan' });
  const prisma = createPrisma(pool);
  try {
    const deps = { prisma, logger: h.deps.logger, now: () => new Date() };
    await db.prisma.$executeRawUnsafe('VACUUM ANALYZE outbox_events'); // statistics of an empty table, as the bench's seed left them
    expect(await dispatchOutboxOnce(deps, {})).toBe(0); // planned now
    await db.prisma.outboxEvent.createMany({ data: Array.from({ length: 100 }, (_, i) => ({ type: 't.plan', aggregateId: `g${i}`, payload: {} })) });
    const handled: string[] = [];
    const handler = async (e: { aggregateId: string }) => void handled.push(e.aggregateId);
    expect(await dispatchOutboxOnce(deps, { 't.plan': [handler] })).toBe(OUTBOX_BATCH);
    expect(handled).toEqual(Array.from({ length: OUTBOX_BATCH }, (_, i) => `g${i}`));
    expect(await db.prisma.outboxEvent.count({ where: { processedAt: null, availableAt: { lte: new Date() } } })).toBe(100 - OUTBOX_BATCH);
  } finally {
    await prisma.$disconnect();
    await pool.end();
    await db.drop();
  }
});

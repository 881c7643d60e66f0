import net from 'node:net';
import { Pool } from 'pg';
import { createPrisma, disconnectPrisma, isDatabaseUnavailable, isUniqueViolation, Prisma, type PrismaClient } from '../../src/lib/prisma';
import { rawExecute, rawQuery } from '../../src/lib/raw-sql';
import { createTestDatabase, type TestDatabase } from '../support/db';

// rawQuery/rawExecute take the hot paths' statements past the client's query runtime to its pg
// adapter; callers must not be able to tell: same values, same errors, same transaction semantics.
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => db?.drop());

/** Every column type the schema and the hot statements use, nulls included. */
const everyType = (p: { s: string; n: number; b: boolean; big: bigint; at: Date; list: (string | null)[]; nums: number[]; obj: object }) => Prisma.sql`
  SELECT 1::int AS i4, 9007199254740993::bigint AS i8, ${p.n}::int AS pn, ${p.n}::numeric(12,2) AS num, 1.5::float8 AS f8, ${p.s} AS s,
    ${p.b}::boolean AS b, ${p.big}::bigint AS pbig, ${p.at}::timestamptz AS tz, ${p.at}::timestamptz AT TIME ZONE 'UTC' AS ts,
    DATE '2026-12-03' AS d, TIME '10:11:12.5' AS t, '{"a":[1,"x",null]}'::jsonb AS jb, '{"k":2}'::json AS j, ${p.obj}::jsonb AS pobj,
    ${p.list}::text[] AS tarr, ${p.nums}::bigint[] AS barr, ARRAY[1,2]::int[] AS iarr, ARRAY['{"z":1}'::jsonb] AS jarr,
    ARRAY[TIMESTAMP '2026-01-02 03:04:05.678'] AS tsarr, NULL::text AS nul, NULL::jsonb AS nulj, 'paid'::"CheckoutStatus" AS enum_col,
    gen_random_uuid() IS NOT NULL AS has_uuid, '\\x0102'::bytea IS NOT NULL AS has_bytes`;

it('When a statement returns every column type, then rawQuery gives exactly what $queryRaw gives', async () => {
  const p = { s: 'héllo ✓', n: 42, b: true, big: 12345678901234n, at: new Date('2026-12-03T01:02:03.456Z'), list: ['a', null, 'c'], nums: [1, 2], obj: { x: [1, 'y'] } };
  const viaClient = await db.prisma.$queryRaw<Record<string, unknown>[]>(everyType(p));
  const viaAdapter = await rawQuery<Record<string, unknown>>(db.prisma, everyType(p));
  expect(viaAdapter).toEqual(viaClient);
  // And the values are what a caller relies on (not merely equal to each other).
  expect(viaAdapter[0]).toMatchObject({ i4: 1, i8: 9007199254740993n, pbig: 12345678901234n, s: 'héllo ✓', b: true, jb: { a: [1, 'x', null] }, pobj: { x: [1, 'y'] }, tarr: ['a', null, 'c'], nul: null, enum_col: 'paid' });
  expect((viaAdapter[0]!.ts as Date).toISOString()).toBe('2026-12-03T01:02:03.456Z');
  expect((viaAdapter[0]!.tz as Date).toISOString()).toBe('2026-12-03T01:02:03.456Z');
  expect(String(viaAdapter[0]!.num)).toBe('42');
});

it('When rows are written, then rawExecute counts them as $executeRaw does, and no rows is an empty list', async () => {
  await db.prisma.$executeRaw`CREATE TABLE raw_t (id text PRIMARY KEY, n int)`;
  expect(await rawExecute(db.prisma, Prisma.sql`INSERT INTO raw_t SELECT 'a' || g, g FROM generate_series(1, ${3}::int) g`)).toBe(3);
  expect(await db.prisma.$executeRaw`UPDATE raw_t SET n = n + 1 WHERE n >= ${2}`).toBe(2);
  expect(await rawExecute(db.prisma, Prisma.sql`UPDATE raw_t SET n = n + 1 WHERE n >= ${2}`)).toBe(2);
  expect(await rawQuery(db.prisma, Prisma.sql`SELECT * FROM raw_t WHERE id = ${'none'}`)).toEqual([]);
});

it('When a statement fails, then rawQuery throws the error $queryRaw throws (class, code, SQLSTATE, message)', async () => {
  await db.prisma.$executeRaw`CREATE TABLE raw_u (id text PRIMARY KEY)`;
  await db.prisma.$executeRaw`INSERT INTO raw_u VALUES ('dup')`;
  const failures = [Prisma.sql`INSERT INTO raw_u VALUES (${'dup'})`, Prisma.sql`SELECT nope FROM raw_u WHERE id = ${'x'}`, Prisma.sql`SELECT ${'abc'}::int`];
  for (const sql of failures) {
    const viaClient = await db.prisma.$queryRaw(sql).catch((e: unknown) => e as Prisma.PrismaClientKnownRequestError);
    const viaAdapter = await rawQuery(db.prisma, sql).catch((e: unknown) => e as Prisma.PrismaClientKnownRequestError);
    expect(viaAdapter).toBeInstanceOf(Prisma.PrismaClientKnownRequestError);
    const shape = (e: Prisma.PrismaClientKnownRequestError) => ({
      code: e.code,
      cause: (e.meta?.driverAdapterError as { cause: unknown }).cause,
      // The client prefixes the call site ("Invalid `prisma.$queryRaw()` invocation: …"); the text after it is the same.
      message: e.message.slice(e.message.indexOf('Raw query failed')),
    });
    expect(shape(viaAdapter as Prisma.PrismaClientKnownRequestError)).toEqual(shape(viaClient as Prisma.PrismaClientKnownRequestError));
    expect(isUniqueViolation(viaAdapter)).toBe(sql === failures[0]);
  }
});

it('When PostgreSQL cannot be reached, then the error still reads as "unavailable" (503, not 500)', async () => {
  // A server that accepts and hangs up: pg's "Connection terminated", which the adapter passes on unwrapped.
  const hangUp = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => hangUp.listen(0, '127.0.0.1', r));
  const gone = createPrisma(`postgresql://nobody:x@127.0.0.1:${(hangUp.address() as net.AddressInfo).port}/none`);
  try {
    const err = await rawQuery(gone, Prisma.sql`SELECT ${1}::int AS one`).catch((e: unknown) => e);
    expect(isDatabaseUnavailable(err)).toBe(true);
  } finally {
    await disconnectPrisma(gone);
    hangUp.close();
  }
  const dead = createPrisma('postgresql://nobody:x@127.0.0.1:1/none');
  try {
    const err = await rawQuery(dead, Prisma.sql`SELECT ${1}::int AS one`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Prisma.PrismaClientKnownRequestError);
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect(isDatabaseUnavailable(await dead.$queryRaw`SELECT ${1}::int AS one`.catch((e: unknown) => e))).toBe(true);
  } finally {
    await disconnectPrisma(dead);
  }
});

it('When a unique index refuses a row, then it reads as a unique violation whatever language the server answers in', () => {
  const german = new Prisma.PrismaClientKnownRequestError('Raw query failed. Code: `23505`. Message: `doppelter Schlüsselwert verletzt Unique-Constraint`', {
    code: 'P2010', clientVersion: 'x', meta: { driverAdapterError: { cause: { kind: 'postgres', originalCode: '23505' } } },
  });
  expect(isUniqueViolation(german)).toBe(true);
  expect(isUniqueViolation(new Prisma.PrismaClientKnownRequestError('x', { code: 'P2010', clientVersion: 'x', meta: { driverAdapterError: { cause: { kind: 'postgres', originalCode: '23503' } } } }))).toBe(false);
});

it('When a client made by createPrisma ran only raw statements, then disconnectPrisma still closes its connections', async () => {
  const backends = async () => (await db.prisma.$queryRaw<Array<{ n: number }>>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()`)[0]!.n;
  const before = await backends();
  const p = createPrisma(db.url);
  await rawQuery(p, Prisma.sql`SELECT ${1}::int AS one`);
  expect(await backends()).toBe(before + 1);
  await disconnectPrisma(p);
  for (let i = 0; i < 50 && (await backends()) > before; i++) await new Promise((r) => setTimeout(r, 20));
  expect(await backends()).toBe(before);
});

it('When called with a transaction client, then the statement runs inside that transaction', async () => {
  await db.prisma.$executeRaw`CREATE TABLE raw_tx (id text PRIMARY KEY)`;
  await expect(
    db.prisma.$transaction(async (tx) => {
      await rawExecute(tx as unknown as PrismaClient, Prisma.sql`INSERT INTO raw_tx VALUES (${'in-tx'})`);
      // Seen inside (same connection), then rolled back with it.
      expect(await rawQuery(tx as unknown as PrismaClient, Prisma.sql`SELECT id FROM raw_tx WHERE id = ${'in-tx'}`)).toEqual([{ id: 'in-tx' }]);
      throw new Error('roll back');
    }),
  ).rejects.toThrow('roll back');
  expect(await rawQuery(db.prisma, Prisma.sql`SELECT id FROM raw_tx WHERE id = ${'in-tx'}`)).toEqual([]);
});

it('When the client was given a pool, then its raw statements use that pool (what the round-trip budget counts)', async () => {
  const pool = new Pool({ connectionString: db.url, max: 2 });
  let queries = 0;
  pool.on('connect', (c) => {
    const q = c.query.bind(c) as (...a: unknown[]) => unknown;
    (c as unknown as { query: (...a: unknown[]) => unknown }).query = (...a: unknown[]) => (queries++, q(...a));
  });
  const prisma = createPrisma(pool);
  try {
    expect(await rawQuery(prisma, Prisma.sql`SELECT ${7}::int AS n`)).toEqual([{ n: 7 }]);
    expect(queries).toBe(1);
  } finally {
    await prisma.$disconnect();
    await pool.end();
  }
});

it('When the client is made with a pool size, then no more statements than that run at once (DATABASE_POOL_SIZE)', async () => {
  const small = createPrisma(db.url, { poolSize: 2 });
  try {
    const sleeps = Array.from({ length: 5 }, () => rawQuery(small, Prisma.sql`SELECT 1 AS slept FROM pg_sleep(${0.4}::float8)`));
    await new Promise((r) => setTimeout(r, 200));
    const [running] = await db.prisma.$queryRaw<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()`;
    expect(running!.n).toBe(2);
    await Promise.all(sleeps);
  } finally {
    await disconnectPrisma(small);
  }
});

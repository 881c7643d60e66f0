import { PrismaPg } from '@prisma/adapter-pg';
import { ColumnTypeEnum, type ArgType, type ColumnType, type SqlQueryable } from '@prisma/driver-adapter-utils';
import type { Pool } from 'pg';
import { Prisma, type PrismaClient } from '../generated/prisma/client';

/**
 * Raw SQL of the hot paths through Prisma's pg driver adapter, below the client's query runtime.
 *
 * `prisma.$queryRaw` hands a raw statement to the same adapter, but first serialises its
 * parameters to JSON and back, runs it through the client's request pipeline (extensions,
 * tracing, batching) and maps the result twice. A microbenchmark of one insert and one indexed read
 * on the same pool (Node 24, client CPU only): `$queryRaw` 0.134 / 0.095 ms, the adapter 0.060 /
 * 0.054 ms, pg itself 0.053 / 0.047 ms. `rawQuery` and `rawExecute` give the caller what
 * `$queryRaw` / `$executeRaw` give (the same values for every column type, the same
 * PrismaClientKnownRequestError P2010 with `meta.driverAdapterError`), checked against them by
 * test/integration/raw-sql.test.ts. One difference: a failure that is not PostgreSQL's (unreachable,
 * a column type the adapter cannot read) keeps the adapter's kind as its message, not the client's
 * sentence for it; `meta.driverAdapterError.cause.kind` is the same, which is what callers read.
 *
 * Only a client made by `createPrisma` has the adapter (registered below); anything else — a
 * transaction's client, a parameter this module does not convert, a pool being closed — takes the
 * client's own path, so a statement inside `$transaction` still runs on the transaction.
 */
interface Direct {
  adapter: Promise<SqlQueryable>;
  pool: Pool;
  /** The pool was made by createPrisma: ended with the client (closeDirectPool). */
  own: boolean;
}
const direct = new WeakMap<object, Direct>();

/** Gives `prisma` its own adapter on `pool` (the pool its client uses) with the same statement namer. */
export function registerDirectAdapter(prisma: PrismaClient, pool: Pool, options: ConstructorParameters<typeof PrismaPg>[1], own: boolean): void {
  let adapter: Promise<SqlQueryable> | undefined;
  direct.set(prisma, {
    pool,
    own,
    get adapter() {
      adapter ??= new PrismaPg(pool, options).connect();
      return adapter;
    },
  });
}

/**
 * Ends a pool createPrisma made, after `$disconnect`: the client ends it only if its own adapter ever
 * connected, which a process that ran nothing but raw statements never made it do.
 */
export async function closeDirectPool(prisma: object): Promise<void> {
  const d = direct.get(prisma);
  if (d?.own && !d.pool.ending) await d.pool.end();
}

type Queryable = Pick<PrismaClient, '$queryRaw' | '$executeRaw'>;

/** `prisma.$queryRaw<T[]>(sql)`, through the adapter when the client has one. */
export async function rawQuery<T>(prisma: Queryable, sql: Prisma.Sql): Promise<T[]> {
  const query = adapterQuery(prisma, sql);
  if (!query) return prisma.$queryRaw<T[]>(sql);
  const result = await run(async () => (await query.d.adapter).queryRaw(query.q));
  const { columnNames, columnTypes, rows } = result;
  const out = new Array<T>(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    const o: Record<string, unknown> = {};
    for (let c = 0; c < columnNames.length; c++) o[columnNames[c]!] = fromColumn(row[c], columnTypes[c]!);
    out[r] = o as T;
  }
  return out;
}

/** `prisma.$executeRaw(sql)` (rows affected), through the adapter when the client has one. */
export async function rawExecute(prisma: Queryable, sql: Prisma.Sql): Promise<number> {
  const query = adapterQuery(prisma, sql);
  if (!query) return prisma.$executeRaw(sql);
  return run(async () => (await query.d.adapter).executeRaw(query.q));
}

function adapterQuery(prisma: Queryable, sql: Prisma.Sql) {
  const d = direct.get(prisma);
  if (!d || d.pool.ending) return undefined;
  const args: unknown[] = [];
  const argTypes: ArgType[] = [];
  for (const v of sql.values) {
    const a = toArg(v);
    if (!a) return undefined; // a value only the client knows how to send (Decimal, bytes, …)
    args.push(a[0]);
    argTypes.push(a[1]);
  }
  return { d, q: { sql: sql.text, args, argTypes } };
}

/** A parameter as the client's raw serialiser would send it (numbers as `decimal`, dates as UTC text). */
function toArg(v: unknown): [unknown, ArgType] | undefined {
  if (v === null || v === undefined) return [null, { scalarType: 'unknown', arity: 'scalar' }];
  switch (typeof v) {
    case 'string':
      return [v, { scalarType: 'string', arity: 'scalar' }];
    case 'number':
      return [v, { scalarType: 'decimal', arity: 'scalar' }];
    case 'boolean':
      return [v, { scalarType: 'unknown', arity: 'scalar' }];
    case 'bigint':
      return [v.toString(), { scalarType: 'bigint', arity: 'scalar' }];
  }
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : [v.toJSON(), { scalarType: 'datetime', arity: 'scalar' }];
  if (Array.isArray(v)) {
    if (!v.every((x) => typeof x === 'string' || typeof x === 'number' || x === null)) return undefined;
    const first = v.find((x) => x !== null);
    return [v, { scalarType: typeof first === 'number' ? 'decimal' : v.length ? 'string' : 'unknown', arity: 'list' }];
  }
  if (Object.getPrototypeOf(v) === Object.prototype) return [JSON.stringify(v), { scalarType: 'unknown', arity: 'scalar' }];
  return undefined;
}

/** A column value as `$queryRaw` returns it (the client's two result mappings folded into one). */
function fromColumn(v: unknown, t: ColumnType): unknown {
  if (v === null || v === undefined) return null;
  switch (t) {
    case ColumnTypeEnum.Int32:
      return Math.trunc(Number(v));
    case ColumnTypeEnum.Int64:
      return BigInt(v as string | number);
    case ColumnTypeEnum.Json:
      return JSON.parse(v as string);
    case ColumnTypeEnum.Boolean:
      return typeof v === 'boolean' ? v : v === 'true' || v === '1' || v === 1;
    case ColumnTypeEnum.Numeric:
      return new Prisma.Decimal(v as string);
    case ColumnTypeEnum.DateTime:
    case ColumnTypeEnum.Date:
      return new Date(v as string);
    case ColumnTypeEnum.Time:
      return new Date(`1970-01-01T${v as string}Z`);
    case ColumnTypeEnum.Bytes:
      return new Uint8Array(v as Buffer);
    case ColumnTypeEnum.Int32Array:
    case ColumnTypeEnum.Int64Array:
    case ColumnTypeEnum.JsonArray:
    case ColumnTypeEnum.BooleanArray:
    case ColumnTypeEnum.NumericArray:
    case ColumnTypeEnum.DateTimeArray:
    case ColumnTypeEnum.DateArray:
    case ColumnTypeEnum.TimeArray:
      return (v as unknown[]).map((x) => fromColumn(x, ELEMENT[t]!));
    default:
      return v;
  }
}
const ELEMENT: Partial<Record<ColumnType, ColumnType>> = {
  [ColumnTypeEnum.Int32Array]: ColumnTypeEnum.Int32,
  [ColumnTypeEnum.Int64Array]: ColumnTypeEnum.Int64,
  [ColumnTypeEnum.JsonArray]: ColumnTypeEnum.Json,
  [ColumnTypeEnum.BooleanArray]: ColumnTypeEnum.Boolean,
  [ColumnTypeEnum.NumericArray]: ColumnTypeEnum.Numeric,
  [ColumnTypeEnum.DateTimeArray]: ColumnTypeEnum.DateTime,
  [ColumnTypeEnum.DateArray]: ColumnTypeEnum.Date,
  [ColumnTypeEnum.TimeArray]: ColumnTypeEnum.Time,
};

/**
 * Failures the adapter passes on unwrapped (it wraps only socket, TLS and PostgreSQL errors): a refused
 * connection to a host with several addresses (an AggregateError), pg's "Connection terminated", a
 * pool ended between the check above and the query. Thrown here as the adapter's kinds, so
 * `isDatabaseUnavailable` answers 503 for them as for the others.
 */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH']);
const CONNECTION_GONE = /Connection terminated|Cannot use a pool after calling end|Client has encountered a connection error/;
function connectionFailure(e: unknown): { name: string; cause: { kind: string; originalMessage: string } } | undefined {
  const x = e as { code?: unknown; message?: unknown } | null;
  if (!x || typeof x !== 'object') return undefined;
  const message = typeof x.message === 'string' ? x.message : String(x.code);
  if (typeof x.code === 'string' && SOCKET_CODES.has(x.code)) return { name: 'DriverAdapterError', cause: { kind: 'DatabaseNotReachable', originalMessage: message } };
  if (CONNECTION_GONE.test(message)) return { name: 'DriverAdapterError', cause: { kind: 'ConnectionClosed', originalMessage: message } };
  return undefined;
}

/** The adapter's error as the client reports a failed raw statement. */
async function run<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (thrown) {
    const e = connectionFailure(thrown) ?? thrown;
    const err = e as { name?: string; cause?: { kind?: string; originalCode?: string; originalMessage?: string; message?: string } };
    if (err?.name !== 'DriverAdapterError' || typeof err.cause !== 'object') throw e;
    const code = err.cause.originalCode ?? 'N/A';
    const message = err.cause.originalMessage ?? err.cause.message ?? (e as Error).message ?? 'N/A';
    throw new Prisma.PrismaClientKnownRequestError(`Raw query failed. Code: \`${code}\`. Message: \`${message}\``, {
      code: 'P2010',
      clientVersion: Prisma.prismaVersion.client,
      meta: { driverAdapterError: e },
    });
  }
}

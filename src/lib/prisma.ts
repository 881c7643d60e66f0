import { PrismaPg } from '@prisma/adapter-pg';
import pg, { type Pool } from 'pg';
import { Prisma, PrismaClient } from '../generated/prisma/client';
import { statementNamer } from './prepared-statements';
import { closeDirectPool, registerDirectAdapter } from './raw-sql';

export { Prisma, PrismaClient };

/**
 * An instant for a raw statement, as the typed client writes it: UTC into `timestamp(3)` columns
 * (a bare Date parameter would be read in the session's time zone).
 */
export const sqlUtc = (at: Date | string) => Prisma.sql`${typeof at === 'string' ? at : at.toISOString()}::timestamptz AT TIME ZONE 'UTC'`;

/**
 * A client on the pg driver adapter: no query-engine binary; the pool is made here (or is `pool`,
 * for tests that count round trips) so the hot paths' raw statements share it (src/lib/raw-sql.ts).
 * A pool made here is closed by `disconnectPrisma` (`$disconnect` alone closes it only if the client's
 * own adapter ever connected). Parameterised statements are prepared per connection
 * unless `preparedStatements` is false (src/lib/prepared-statements.ts).
 */
export function createPrisma(databaseUrl: string | Pool, o: { preparedStatements?: boolean; poolSize?: number } = {}): PrismaClient {
  const own = typeof databaseUrl === 'string';
  const pool = own ? new pg.Pool({ connectionString: databaseUrl, max: o.poolSize ?? 10 }) : databaseUrl;
  // The adapter types the generator as returning a name; it passes the result to pg as `name`, where undefined = unnamed.
  const namer = o.preparedStatements === false ? undefined : (statementNamer() as (q: { sql: string; args: unknown[] }) => string);
  const options = namer ? { statementNameGenerator: namer } : {};
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { ...options, disposeExternalPool: own }) });
  registerDirectAdapter(prisma, pool, options, own);
  return prisma;
}

/** `$disconnect`, and the pool createPrisma made is ended even if only raw statements used it. */
export async function disconnectPrisma(prisma: PrismaClient): Promise<void> {
  await prisma.$disconnect();
  await closeDirectPool(prisma);
}

/** Driver-adapter error kinds and Prisma codes that mean "the database cannot be reached now", not "bad query". */
const UNAVAILABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections', 'TlsConnectionError']);
const UNAVAILABLE_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
/** PostgreSQL SQLSTATEs of a server shutting down or not accepting connections (class 08, 57P0x). */
const UNAVAILABLE_SQLSTATE = /^(08|57P0[1-3])/;

/** True when an error says PostgreSQL is down or unreachable: answered 503 + Retry-After, not 500. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (err instanceof Prisma.PrismaClientInitializationError) return true;
  if (err instanceof Prisma.PrismaClientKnownRequestError) {
    if (UNAVAILABLE_CODES.has(err.code)) return true;
    const cause = (err.meta?.driverAdapterError as { cause?: { kind?: string; code?: string } } | undefined)?.cause;
    if (cause?.kind && UNAVAILABLE_KINDS.has(cause.kind)) return true;
    if (cause?.kind === 'postgres' && typeof cause.code === 'string' && UNAVAILABLE_SQLSTATE.test(cause.code)) return true;
  }
  return false;
}

/**
 * True when a statement failed on a unique index (SQLSTATE 23505): the typed client's P2002, or a
 * raw statement's P2010 whose adapter error carries the SQLSTATE — not read from the message text,
 * which follows the server's `lc_messages`.
 */
export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: string; originalCode?: string } } } } | null;
  if (err?.code === 'P2002' || err?.code === '23505') return true;
  const cause = err?.meta?.driverAdapterError?.cause;
  if (cause?.kind === 'UniqueConstraintViolation' || cause?.originalCode === '23505') return true;
  return /Unique constraint/i.test(String(err?.message));
}

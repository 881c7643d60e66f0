import { createHash } from 'node:crypto';
import { AppError } from '../lib/errors';
import { newId } from '../lib/ids';
import { isUniqueViolation, type PrismaClient } from '../lib/prisma';

/** How long a first request may run before its key counts as abandoned. */
export const IN_PROGRESS_LEASE_MS = 60_000;

export interface StoredResponse {
  status: number;
  body: unknown;
}

/**
 * Runs `fn` at most once per (merchant, scope, Idempotency-Key). Same key + same body replays the
 * stored answer; same key + another body is a 409; a key whose first request is still running is a 409.
 * 4xx answers are stored (the request was bad and stays bad); on a 5xx/crash the key is released so
 * the merchant can retry, and a key left "in progress" by a crashed process is taken over after
 * IN_PROGRESS_LEASE_MS. Money side effects therefore also carry the key themselves (checkout and split
 * rows), so a retry whose stored answer was lost finds the effect instead of repeating it.
 */
export async function withIdempotency(
  prisma: PrismaClient,
  args: { merchantId: string; scope: string; key: string | undefined; body: unknown },
  fn: () => Promise<StoredResponse>,
): Promise<StoredResponse & { replayed: boolean }> {
  if (args.key === undefined) return { ...(await fn()), replayed: false };
  if (!/^[\x21-\x7e]{1,255}$/.test(args.key))
    throw new AppError('VALIDATION_FAILED', 'Idempotency-Key must be 1–255 printable ASCII characters', { field: 'Idempotency-Key' });

  const requestHash = createHash('sha256').update(canonicalJson(args.body)).digest('hex');
  const where = { merchantId_scope_key: { merchantId: args.merchantId, scope: args.scope, key: args.key } };
  const create = () =>
    prisma.idempotencyRecord
      .create({ data: { id: newId('idem'), merchantId: args.merchantId, scope: args.scope, key: args.key!, requestHash } })
      .then(() => true)
      .catch((e: unknown) => {
        if (isUniqueViolation(e)) return false;
        throw e;
      });
  let created = await create();
  if (!created) {
    // Abandoned by a crashed request: take it over (compare-and-set on the old row).
    const stale = await prisma.idempotencyRecord.deleteMany({
      where: { merchantId: args.merchantId, scope: args.scope, key: args.key, responseCode: null, createdAt: { lt: new Date(Date.now() - IN_PROGRESS_LEASE_MS) } },
    });
    if (stale.count === 1) created = await create();
  }

  if (!created) {
    const rec = await prisma.idempotencyRecord.findUnique({ where });
    if (!rec) throw new AppError('IDEMPOTENCY_IN_PROGRESS', 'A request with this Idempotency-Key is being processed; retry shortly');
    if (rec.requestHash !== requestHash)
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request body', { field: 'Idempotency-Key' });
    if (rec.responseCode === null)
      throw new AppError('IDEMPOTENCY_IN_PROGRESS', 'A request with this Idempotency-Key is being processed; retry shortly');
    return { status: rec.responseCode, body: rec.responseBody, replayed: true };
  }

  try {
    const out = await fn();
    await prisma.idempotencyRecord.update({ where, data: { responseCode: out.status, responseBody: out.body as object } });
    return { ...out, replayed: false };
  } catch (err) {
    if (err instanceof AppError && err.status < 500) {
      const body = { error: { code: err.code, message: err.message, ...(err.opts.field ? { field: err.opts.field } : {}) } };
      await prisma.idempotencyRecord.update({ where, data: { responseCode: err.status, responseBody: body } });
    } else {
      await prisma.idempotencyRecord.delete({ where }).catch(() => undefined);
    }
    throw err;
  }
}

export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v ?? null);
}


import { createHash, randomBytes } from 'node:crypto';
import { AppError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { PrismaClient } from '../../lib/prisma';

/**
 * Merchants and their API keys (issue 10). A merchant has several keys at once so it can rotate
 * without downtime: create a new key, deploy it, revoke the old one. Keys are stored only as SHA-256
 * (they are 192-bit random, so a fast hash is enough and lookup stays one indexed read); the key itself
 * is shown once, when created.
 */

/** API keys are stored only as SHA-256: a database leak does not leak usable keys. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export type KeyMode = 'live' | 'test';

/** `sk_live_…` in production, `sk_test_…` in the sandbox. */
export function generateApiKey(mode: KeyMode = 'live'): string {
  return `sk_${mode}_${randomBytes(24).toString('base64url')}`;
}

/** What lists show of a key: enough to recognise it, never enough to use it. */
export function keyPrefix(key: string): string {
  return key.slice(0, 12);
}

export interface MerchantRef {
  id: string;
  name: string;
}

export interface ApiKeyView {
  id: string;
  merchant_id: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

type KeyRow = { id: string; merchantId: string; prefix: string; createdAt: Date; lastUsedAt: Date | null; revokedAt: Date | null };

export function toKeyView(k: KeyRow): ApiKeyView {
  return {
    id: k.id,
    merchant_id: k.merchantId,
    prefix: k.prefix,
    created_at: k.createdAt.toISOString(),
    last_used_at: k.lastUsedAt?.toISOString() ?? null,
    revoked_at: k.revokedAt?.toISOString() ?? null,
  };
}

/** lastUsedAt is written at most once a minute per key and process: no write per API request. */
const LAST_USED_EVERY_MS = 60_000;
const lastUsedWritten = new Map<string, number>();

/** The merchant of a live (not revoked) key, or null. Marks the key as used. */
export async function authenticateApiKey(prisma: PrismaClient, key: string, now = new Date()): Promise<MerchantRef | null> {
  const row = await prisma.merchantApiKey.findUnique({
    where: { keyHash: hashApiKey(key) },
    select: { id: true, revokedAt: true, merchant: { select: { id: true, name: true } } },
  });
  if (!row || row.revokedAt) return null;
  const t = now.getTime();
  if ((lastUsedWritten.get(row.id) ?? 0) + LAST_USED_EVERY_MS <= t) {
    lastUsedWritten.set(row.id, t);
    // Best effort and not awaited: a failed stamp must not fail the merchant's request.
    void prisma.merchantApiKey
      .updateMany({ where: { id: row.id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: new Date(t - LAST_USED_EVERY_MS) } }] }, data: { lastUsedAt: now } })
      .catch(() => lastUsedWritten.delete(row.id));
  }
  return row.merchant;
}

/** @deprecated name kept for callers of the single-key era: same as authenticateApiKey. */
export const findMerchantByApiKey = authenticateApiKey;

/**
 * Creates (or renames) a merchant with a known id and makes `apiKey` one of its keys: the seed used
 * by the sandbox and tests. A key already belonging to another merchant is refused.
 */
export async function createMerchant(prisma: PrismaClient, input: { id: string; name: string; apiKey: string }): Promise<MerchantRef> {
  const m = await prisma.merchant.upsert({
    where: { id: input.id },
    create: { id: input.id, name: input.name },
    update: { name: input.name },
    select: { id: true, name: true },
  });
  const keyHash = hashApiKey(input.apiKey);
  const existing = await prisma.merchantApiKey.findUnique({ where: { keyHash }, select: { merchantId: true } });
  if (existing && existing.merchantId !== m.id) throw new AppError('CONFLICT', 'This API key belongs to another merchant');
  if (existing) await prisma.merchantApiKey.updateMany({ where: { keyHash }, data: { revokedAt: null } });
  else await prisma.merchantApiKey.create({ data: { id: newId('key'), merchantId: m.id, prefix: keyPrefix(input.apiKey), keyHash } });
  return m;
}

async function insertKey(db: Pick<PrismaClient, 'merchantApiKey'>, merchantId: string, mode: KeyMode): Promise<{ key: ApiKeyView; secret: string }> {
  const secret = generateApiKey(mode);
  const row = await db.merchantApiKey.create({ data: { id: newId('key'), merchantId, prefix: keyPrefix(secret), keyHash: hashApiKey(secret) } });
  return { key: toKeyView(row), secret };
}

export interface MerchantView {
  id: string;
  name: string;
  created_at: string;
}

const toMerchantView = (m: { id: string; name: string; createdAt: Date }): MerchantView => ({ id: m.id, name: m.name, created_at: m.createdAt.toISOString() });

/** A new merchant and its first API key (the secret is returned once, here). */
export async function onboardMerchant(prisma: PrismaClient, input: { name: string; mode: KeyMode }): Promise<{ merchant: MerchantView; key: ApiKeyView; secret: string }> {
  const name = input.name.trim();
  if (!name || name.length > 128) throw new AppError('VALIDATION_FAILED', 'name must be 1–128 characters', { field: 'name' });
  return prisma.$transaction(async (db) => {
    const m = await db.merchant.create({ data: { id: newId('mch'), name } });
    const k = await insertKey(db, m.id, input.mode);
    return { merchant: toMerchantView(m), ...k };
  });
}

export async function listMerchants(prisma: PrismaClient): Promise<MerchantView[]> {
  return (await prisma.merchant.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })).map(toMerchantView);
}

async function requireMerchant(prisma: PrismaClient, merchantId: string): Promise<void> {
  if (!(await prisma.merchant.findUnique({ where: { id: merchantId }, select: { id: true } }))) throw new AppError('NOT_FOUND', `No merchant ${merchantId}`);
}

/** Another key for the merchant (rotation: create, deploy, then revoke the old one). */
export async function createApiKey(prisma: PrismaClient, merchantId: string, mode: KeyMode): Promise<{ key: ApiKeyView; secret: string }> {
  await requireMerchant(prisma, merchantId);
  return insertKey(prisma, merchantId, mode);
}

export async function listApiKeys(prisma: PrismaClient, merchantId: string): Promise<ApiKeyView[]> {
  await requireMerchant(prisma, merchantId);
  return (await prisma.merchantApiKey.findMany({ where: { merchantId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })).map(toKeyView);
}

/** Revokes a key at once (the next request with it is a 401). Revoking twice keeps the first time. */
/** `dropCached` tells every gateway's key cache (src/http/merchant-cache.ts) to forget the key at once. */
export async function revokeApiKey(prisma: PrismaClient, keyId: string, now = new Date(), dropCached?: (keyHash: string) => Promise<void>): Promise<ApiKeyView> {
  await prisma.merchantApiKey.updateMany({ where: { id: keyId, revokedAt: null }, data: { revokedAt: now } });
  const row = await prisma.merchantApiKey.findUnique({ where: { id: keyId } });
  if (!row) throw new AppError('NOT_FOUND', `No API key ${keyId}`);
  await dropCached?.(row.keyHash);
  return toKeyView(row);
}

export const SANDBOX_MERCHANT_ID = 'mch_sandbox';

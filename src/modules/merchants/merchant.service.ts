import { createHash, randomBytes } from 'node:crypto';
import type { PrismaClient } from '../../lib/prisma';

/** API keys are stored only as SHA-256: a database leak does not leak usable keys. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function generateApiKey(): string {
  return `sk_live_${randomBytes(24).toString('base64url')}`;
}

export interface MerchantRef {
  id: string;
  name: string;
}

export async function findMerchantByApiKey(prisma: PrismaClient, key: string): Promise<MerchantRef | null> {
  return prisma.merchant.findUnique({ where: { apiKeyHash: hashApiKey(key) }, select: { id: true, name: true } });
}

export async function createMerchant(prisma: PrismaClient, input: { id: string; name: string; apiKey: string }): Promise<MerchantRef> {
  return prisma.merchant.upsert({
    where: { id: input.id },
    create: { id: input.id, name: input.name, apiKeyHash: hashApiKey(input.apiKey) },
    update: { name: input.name, apiKeyHash: hashApiKey(input.apiKey) },
    select: { id: true, name: true },
  });
}

export const SANDBOX_MERCHANT_ID = 'mch_sandbox';

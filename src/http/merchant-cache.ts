import type { Redis } from 'ioredis';
import type { Logger } from '../lib/logger';
import type { MerchantRef } from '../modules/merchants/merchant.service';

/**
 * The merchant behind an API key, kept in process so an authenticated request costs no database
 * round trip. Keyed by the key's SHA-256 (what the database stores). A revoked or replaced key must
 * stop working at once on every instance: whoever revokes it calls `invalidate(keyHash)`, which
 * drops it here and publishes the hash on Redis; every instance drops it on receipt. If Redis
 * pub/sub is down or a message is lost, entries still expire after `ttlMs`, and every (re)subscribe
 * clears the whole cache (messages may have been missed meanwhile). Unknown keys are not cached.
 */
export interface MerchantCache {
  get(keyHash: string, load: () => Promise<MerchantRef | null>): Promise<MerchantRef | null>;
  invalidate(keyHash: string): Promise<void>;
  close(): Promise<void>;
}

export const MERCHANT_KEY_REVOKED_CHANNEL = 'gw:merchant-key-revoked';

export function createMerchantCache(redis: Redis, opts: { ttlMs?: number; maxEntries?: number; logger?: Logger } = {}): MerchantCache {
  const ttlMs = opts.ttlMs ?? 30_000;
  const maxEntries = opts.maxEntries ?? 10_000;
  const entries = new Map<string, { merchant: MerchantRef; until: number }>();
  let subscribed = false;
  const sub = redis.duplicate();
  sub.on('error', () => undefined); // the app client logs Redis errors; until re-subscribed nothing is cached
  sub.on('message', (_channel: string, keyHash: string) => entries.delete(keyHash));
  sub.on('ready', () => {
    entries.clear();
    sub.subscribe(MERCHANT_KEY_REVOKED_CHANNEL).then(
      () => (subscribed = true),
      (err: unknown) => opts.logger?.warn({ err }, 'merchant cache: subscribe failed'),
    );
  });
  sub.on('close', () => {
    subscribed = false;
    entries.clear();
  });

  return {
    async get(keyHash, load) {
      const hit = entries.get(keyHash);
      if (hit && hit.until > Date.now()) return hit.merchant;
      const merchant = await load();
      // Only while subscribed: otherwise a revocation could not reach this entry.
      if (merchant && subscribed) {
        if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
        entries.set(keyHash, { merchant, until: Date.now() + ttlMs });
      }
      return merchant;
    },
    async invalidate(keyHash) {
      entries.delete(keyHash);
      await redis.publish(MERCHANT_KEY_REVOKED_CHANNEL, keyHash);
    },
    async close() {
      subscribed = false;
      entries.clear();
      await sub.quit().catch(() => undefined);
    },
  };
}

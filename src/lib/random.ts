import { randomFillSync } from 'node:crypto';

const POOL = Buffer.allocUnsafe(8192);
let used = POOL.length;

/**
 * `crypto.randomBytes(n)` for the small values made on every request (ids, nonces): served from an
 * 8 KiB pool that one `randomFillSync` refills, as Node's own `randomUUID` does. One call into the
 * CSPRNG per value cost ~25 µs on the bench machine, 5% of a create. Each byte is handed out once.
 */
export function pooledRandomBytes(n: number): Buffer {
  if (n > 256) return randomFillSync(Buffer.allocUnsafe(n));
  if (used + n > POOL.length) {
    randomFillSync(POOL);
    used = 0;
  }
  const out = Buffer.allocUnsafe(n);
  POOL.copy(out, 0, used, used + n);
  used += n;
  return out;
}

import { pooledRandomBytes } from './random';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Random id with a type prefix, e.g. `co_7f3k...`; 20 base36 chars ≈ 103 bits. */
export function newId(prefix: string, length = 20): string {
  const bytes = pooledRandomBytes(length);
  let s = '';
  for (const b of bytes) s += ALPHABET[b % 36];
  return `${prefix}_${s}`;
}

/** Protocol primitives of the simulator (independent of src/channels on purpose). */
import { createCipheriv, createSign, createVerify, randomBytes, randomInt, type KeyObject } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function randomAlnum(length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ALNUM[randomInt(ALNUM.length)];
  return s;
}

export function randomDigits(length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += String(randomInt(10));
  return s;
}

export function signSha256Rsa(message: string | Buffer, key: KeyObject): string {
  return createSign('RSA-SHA256').update(message).sign(key, 'base64');
}

export function verifySha256Rsa(message: string | Buffer, signatureB64: string, key: KeyObject): boolean {
  // Node silently ignores junk in base64; WeChat does not, so reject anything not strictly base64.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signatureB64) || signatureB64.length % 4 !== 0) return false;
  try {
    return createVerify('RSA-SHA256').update(message).verify(key, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}

/** AEAD_AES_256_GCM as WeChat uses it: key = APIv3 key bytes, 12-char nonce, ciphertext = base64(ct || tag). */
export function encryptResource(apiv3Key: string, plaintext: string, associatedData: string, nonce: string = randomAlnum(12)) {
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(apiv3Key, 'utf8'), Buffer.from(nonce, 'utf8'));
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return { algorithm: 'AEAD_AES_256_GCM', ciphertext: ct.toString('base64'), associated_data: associatedData, nonce };
}

/** RFC 3339 in Beijing time, the format WeChat uses for success_time / create_time. */
export function rfc3339Beijing(ms: number): string {
  const d = new Date(ms + 8 * 3600_000);
  return d.toISOString().replace(/\.\d{3}Z$/, '+08:00');
}

export function nowBeijingCompact(ms: number): string {
  return new Date(ms + 8 * 3600_000).toISOString().replace(/[-T:]/g, '').slice(0, 14);
}

export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

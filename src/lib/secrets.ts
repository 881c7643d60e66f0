import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Envelope encryption of channel secrets at rest (AES-256-GCM twice):
 *   - each record gets a fresh 256-bit data key (DEK) that encrypts the record;
 *   - the DEK is encrypted ("wrapped") under the master key named by `kid` (SECRETS_MASTER_KEY).
 * Rotating the master key re-wraps the small DEKs only (`npm run admin -- secrets rotate`); old master
 * keys stay listed after the current one until no row names them. The record id is bound as AAD, so a
 * ciphertext copied onto another row does not decrypt.
 *
 * SECRETS_MASTER_KEY = `kid:base64key[,kid:base64key…]`, first = current (32-byte keys).
 */
export interface MasterKeys {
  current: string;
  keys: Map<string, Buffer>;
}

export class SecretsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretsError';
  }
}

export function parseMasterKeys(spec: string | undefined): MasterKeys | null {
  if (!spec) return null;
  const keys = new Map<string, Buffer>();
  let current = '';
  for (const part of spec.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([A-Za-z0-9_-]{1,32}):([A-Za-z0-9+/=_-]+)$/.exec(part);
    if (!m) throw new SecretsError('SECRETS_MASTER_KEY entries must be kid:base64key');
    const key = Buffer.from(m[2]!, 'base64');
    if (key.length !== 32) throw new SecretsError(`SECRETS_MASTER_KEY ${m[1]}: the key must be 32 bytes (base64 of 32 random bytes)`);
    if (keys.has(m[1]!)) throw new SecretsError(`SECRETS_MASTER_KEY: key id ${m[1]} appears twice`);
    keys.set(m[1]!, key);
    current ||= m[1]!;
  }
  if (!current) return null;
  return { current, keys };
}

/** A new master key entry for SECRETS_MASTER_KEY. */
export function newMasterKeySpec(kid: string): string {
  return `${kid}:${randomBytes(32).toString('base64')}`;
}

interface Envelope {
  v: 1;
  kid: string;
  /** wrapped DEK: iv.tag.ciphertext (base64) */
  dek: string;
  /** the data: iv.tag.ciphertext (base64) */
  data: string;
}

function seal(key: Buffer, plain: Buffer, aad: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return [iv, c.getAuthTag(), ct].map((b) => b.toString('base64')).join('.');
}

function open(key: Buffer, sealed: string, aad: string): Buffer {
  const [iv, tag, ct] = sealed.split('.').map((p) => Buffer.from(p, 'base64'));
  if (!iv || !tag || !ct || iv.length !== 12 || tag.length !== 16) throw new SecretsError('malformed secret envelope');
  const d = createDecipheriv('aes-256-gcm', key, iv);
  d.setAAD(Buffer.from(aad, 'utf8'));
  d.setAuthTag(tag);
  try {
    return Buffer.concat([d.update(ct), d.final()]);
  } catch {
    throw new SecretsError('secret envelope does not decrypt (wrong master key or tampered data)');
  }
}

function masterKey(mk: MasterKeys, kid: string): Buffer {
  const k = mk.keys.get(kid);
  if (!k) throw new SecretsError(`master key ${kid} is not in SECRETS_MASTER_KEY`);
  return k;
}

export function encryptSecret(mk: MasterKeys, recordId: string, value: unknown): { envelope: string; kid: string } {
  const dek = randomBytes(32);
  const env: Envelope = {
    v: 1,
    kid: mk.current,
    dek: seal(masterKey(mk, mk.current), dek, `dek:${recordId}`),
    data: seal(dek, Buffer.from(JSON.stringify(value), 'utf8'), `data:${recordId}`),
  };
  return { envelope: JSON.stringify(env), kid: mk.current };
}

function parseEnvelope(envelope: string): Envelope {
  let env: Envelope;
  try {
    env = JSON.parse(envelope) as Envelope;
  } catch {
    throw new SecretsError('secret envelope is not JSON');
  }
  if (env?.v !== 1 || typeof env.kid !== 'string' || typeof env.dek !== 'string' || typeof env.data !== 'string') throw new SecretsError('unknown secret envelope');
  return env;
}

export function decryptSecret<T>(mk: MasterKeys, recordId: string, envelope: string): T {
  const env = parseEnvelope(envelope);
  const dek = open(masterKey(mk, env.kid), env.dek, `dek:${recordId}`);
  return JSON.parse(open(dek, env.data, `data:${recordId}`).toString('utf8')) as T;
}

/** Re-wraps the data key under the current master key (the data itself is untouched). null = already current. */
export function rewrapSecret(mk: MasterKeys, recordId: string, envelope: string): { envelope: string; kid: string } | null {
  const env = parseEnvelope(envelope);
  if (env.kid === mk.current) return null;
  const dek = open(masterKey(mk, env.kid), env.dek, `dek:${recordId}`);
  const next: Envelope = { ...env, kid: mk.current, dek: seal(masterKey(mk, mk.current), dek, `dek:${recordId}`) };
  return { envelope: JSON.stringify(next), kid: mk.current };
}

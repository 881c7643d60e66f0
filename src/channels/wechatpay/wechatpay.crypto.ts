import {
  KeyObject,
  X509Certificate,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  sign as rsaSign,
  verify as rsaVerify,
} from 'node:crypto';
import { pooledRandomBytes } from '../../lib/random';

/**
 * WeChat Pay APIv3 cryptography on node:crypto, every key parsed once into a KeyObject.
 * Rules: FACTS §3 (signing / verification, key modes, SIGNTEST probes), §4 (AEAD_AES_256_GCM),
 * §2 (paySign). Nothing here does I/O.
 */

export const AUTH_SCHEMA = 'WECHATPAY2-SHA256-RSA2048';
/** WeChat and its official SDKs refuse |now − Wechatpay-Timestamp| ≥ 5 min (GO-SDK `FiveMinute`). */
export const MAX_CLOCK_SKEW_SECONDS = 300;
/** Deliberately wrong signatures WeChat sends to check that merchants verify (SKILLS 回调通知处理.md #5). */
export const SIGNTEST_PREFIX = 'WECHATPAY/SIGNTEST/';
export const PUB_KEY_ID_PREFIX = 'PUB_KEY_ID_';

// ---- keys -------------------------------------------------------------------------------------

export interface PlatformKey {
  id: string; // PUB_KEY_ID_... or certificate serial (upper-case hex)
  mode: 'public-key' | 'certificate';
  key: KeyObject;
  validTo?: Date; // certificates only
}

/** The WeChat Pay keys we trust, by Wechatpay-Serial: public-key mode and platform certificates side by side. */
export class PlatformKeyRing {
  private readonly byId = new Map<string, PlatformKey>();

  /** `pems`: id → PEM public key or PEM certificate. Throws on anything unusable (fail at boot, not at the first notify). */
  constructor(pems: Record<string, string>) {
    for (const [rawId, pem] of Object.entries(pems)) {
      const id = normaliseSerial(rawId);
      if (!id) throw new Error('WeChat Pay platform key with an empty id');
      const entry = loadPlatformKey(id, pem);
      this.byId.set(id, entry);
    }
    if (this.byId.size === 0) throw new Error('no WeChat Pay platform key configured (WECHATPAY_PLATFORM_KEYS)');
  }

  get(serial: string): PlatformKey | undefined {
    return this.byId.get(normaliseSerial(serial));
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  /**
   * Key for encrypting sensitive request fields (receiver name) — its id goes in the request's
   * Wechatpay-Serial. Public-key mode is preferred: new merchants have no platform certificate
   * (FACTS §3), and WeChat accepts the public key whenever it is enabled. Else the certificate
   * that stays valid the longest.
   */
  encryptionKey(now: Date): PlatformKey {
    const all = [...this.byId.values()];
    const pub = all.find((k) => k.mode === 'public-key');
    if (pub) return pub;
    const certs = all
      .filter((k) => !k.validTo || k.validTo.getTime() > now.getTime())
      .sort((a, b) => (b.validTo?.getTime() ?? 0) - (a.validTo?.getTime() ?? 0));
    if (certs.length === 0) throw new Error('every WeChat Pay platform certificate has expired');
    return certs[0];
  }
}

function normaliseSerial(id: string): string {
  return id.trim().toUpperCase();
}

function loadPlatformKey(id: string, pem: string): PlatformKey {
  const mode = id.startsWith(PUB_KEY_ID_PREFIX) ? 'public-key' : 'certificate';
  if (pem.includes('BEGIN CERTIFICATE')) {
    const cert = new X509Certificate(pem);
    // A certificate filed under the wrong serial would make every answer "UNKNOWN_SERIAL" or, worse,
    // verify answers signed by another key: refuse it at load time.
    if (mode === 'certificate' && normaliseSerial(cert.serialNumber) !== id) {
      throw new Error(`WeChat Pay platform certificate filed as ${id} has serial ${cert.serialNumber}`);
    }
    return { id, mode, key: assertRsaPublic(cert.publicKey, id), validTo: new Date(cert.validTo) };
  }
  if (!pem.includes('BEGIN PUBLIC KEY') && !pem.includes('BEGIN RSA PUBLIC KEY')) {
    throw new Error(`WeChat Pay platform key ${id} is neither a PEM public key nor a PEM certificate`);
  }
  return { id, mode, key: assertRsaPublic(createPublicKey(pem), id) };
}

function assertRsaPublic(key: KeyObject, id: string): KeyObject {
  if (key.type !== 'public' || key.asymmetricKeyType !== 'rsa') throw new Error(`WeChat Pay platform key ${id} is not an RSA public key`);
  return key;
}

export function loadMerchantPrivateKey(pem: string): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'rsa') throw new Error('the merchant API private key must be RSA (apiclient_key.pem)');
  return key;
}

export function loadApiV3Key(key: string): KeyObject {
  const bytes = Buffer.from(key, 'utf8');
  // AEAD_AES_256_GCM uses the 32 ASCII characters of the APIv3 key as the AES-256 key.
  if (bytes.length !== 32) throw new Error('the WeChat Pay APIv3 key must be exactly 32 ASCII characters');
  return createSecretKey(bytes);
}

// ---- request signing ----------------------------------------------------------------------------

/** 32 upper-case hex characters from the CSPRNG (WeChat allows nonce_str ≤ 32). */
export function newNonce(): string {
  return pooledRandomBytes(16).toString('hex').toUpperCase();
}

/** `METHOD\nPATH?QUERY\nTS\nNONCE\nBODY\n` — body '' for GET, byte-identical to what is sent. */
export function requestSignMessage(method: string, pathAndQuery: string, timestamp: string, nonce: string, body: string): string {
  return `${method}\n${pathAndQuery}\n${timestamp}\n${nonce}\n${body}\n`;
}

export function signSha256Rsa(privateKey: KeyObject, message: string | Buffer): string {
  return rsaSign('sha256', typeof message === 'string' ? Buffer.from(message, 'utf8') : message, privateKey).toString('base64');
}

// ---- JSAPI paySign ----------------------------------------------------------------------------------

/** Four lines, each ending in \n (FACTS §2). `pkg` is the full "prepay_id=..." value. */
export function jsapiPaySignMessage(appId: string, timeStamp: string, nonceStr: string, pkg: string): string {
  return `${appId}\n${timeStamp}\n${nonceStr}\n${pkg}\n`;
}

// ---- verification of answers and notifies -----------------------------------------------------

export type VerifyFailure = 'MISSING_HEADERS' | 'UNKNOWN_SERIAL' | 'STALE_TIMESTAMP' | 'BAD_SIGNATURE';

export class SignatureVerificationError extends Error {
  constructor(readonly reason: VerifyFailure, message: string) {
    super(message);
    this.name = 'SignatureVerificationError';
  }
}

export interface WechatpaySignatureHeaders {
  timestamp?: string;
  nonce?: string;
  signature?: string;
  serial?: string;
  signatureType?: string;
}

/** Reads the Wechatpay-* headers from a Node/fetch header bag; a repeated header counts as absent. */
export function readSignatureHeaders(get: (name: string) => string | string[] | null | undefined): WechatpaySignatureHeaders {
  const one = (name: string): string | undefined => {
    const v = get(name);
    if (Array.isArray(v)) return v.length === 1 ? v[0] : undefined;
    return v ?? undefined;
  };
  return {
    timestamp: one('wechatpay-timestamp'),
    nonce: one('wechatpay-nonce'),
    signature: one('wechatpay-signature'),
    serial: one('wechatpay-serial'),
    signatureType: one('wechatpay-signature-type'),
  };
}

export function hasAnySignatureHeader(h: WechatpaySignatureHeaders): boolean {
  return Boolean(h.timestamp || h.nonce || h.signature || h.serial);
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Verifies `ts\nnonce\nbody\n` over the RAW body bytes with the key named by Wechatpay-Serial.
 * Throws SignatureVerificationError; returns the key used.
 */
export function verifyWechatpaySignature(
  keys: PlatformKeyRing,
  headers: WechatpaySignatureHeaders,
  rawBody: Buffer,
  nowMs: number,
): PlatformKey {
  const { timestamp, nonce, signature, serial, signatureType } = headers;
  if (!timestamp || !nonce || !signature || !serial) {
    throw new SignatureVerificationError('MISSING_HEADERS', 'Wechatpay-Timestamp/Nonce/Signature/Serial missing');
  }
  if (signatureType !== undefined && signatureType !== AUTH_SCHEMA) {
    throw new SignatureVerificationError('BAD_SIGNATURE', `unsupported Wechatpay-Signature-Type ${signatureType}`);
  }
  // Probes must fail before any decoding (their base64 is malformed on purpose).
  if (signature.startsWith(SIGNTEST_PREFIX)) {
    throw new SignatureVerificationError('BAD_SIGNATURE', 'WeChat Pay signature probe (WECHATPAY/SIGNTEST/)');
  }
  const key = keys.get(serial);
  if (!key) throw new SignatureVerificationError('UNKNOWN_SERIAL', `no WeChat Pay key for serial ${serial}`);
  if (!/^\d{1,12}$/.test(timestamp)) throw new SignatureVerificationError('STALE_TIMESTAMP', 'Wechatpay-Timestamp is not a number');
  if (Math.abs(Math.floor(nowMs / 1000) - Number(timestamp)) >= MAX_CLOCK_SKEW_SECONDS) {
    throw new SignatureVerificationError('STALE_TIMESTAMP', `Wechatpay-Timestamp ${timestamp} is ≥ ${MAX_CLOCK_SKEW_SECONDS}s away`);
  }
  if (!BASE64.test(signature)) throw new SignatureVerificationError('BAD_SIGNATURE', 'Wechatpay-Signature is not base64');
  const message = Buffer.concat([Buffer.from(`${timestamp}\n${nonce}\n`, 'utf8'), rawBody, Buffer.from('\n', 'utf8')]);
  let ok = false;
  try {
    ok = rsaVerify('sha256', message, key.key, Buffer.from(signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) throw new SignatureVerificationError('BAD_SIGNATURE', 'Wechatpay-Signature does not verify');
  return key;
}

// ---- AEAD_AES_256_GCM ---------------------------------------------------------------------------

export class DecryptError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DecryptError';
  }
}

/**
 * Decrypts a notify `resource` (FACTS §4): base64(ciphertext ‖ 16-byte tag), 12-char nonce,
 * associated_data as AAD. `final()` checks the tag — the step wechatpay-node-v3 2.2.x skips.
 */
export function decryptAeadAes256Gcm(apiV3Key: KeyObject, ciphertextB64: string, nonce: string, associatedData: string): Buffer {
  if (!BASE64.test(ciphertextB64)) throw new DecryptError('ciphertext is not base64');
  const raw = Buffer.from(ciphertextB64, 'base64');
  if (raw.length <= 16) throw new DecryptError('ciphertext shorter than the GCM tag');
  const iv = Buffer.from(nonce, 'utf8');
  if (iv.length !== 12) throw new DecryptError('GCM nonce must be 12 bytes');
  try {
    const decipher = createDecipheriv('aes-256-gcm', apiV3Key, iv, { authTagLength: 16 });
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    return Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]);
  } catch (cause) {
    throw new DecryptError('AEAD_AES_256_GCM authentication failed', { cause });
  }
}

/**
 * Key material of the simulator: the merchant's API key pair (the gateway signs with the private half),
 * WeChat Pay's platform key pair (public-key mode, `PUB_KEY_ID_...`) and a platform certificate (legacy
 * certificate mode). The sandbox keeps them on disk so the gateway and the simulator share them.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SimKeys } from './context';
import { randomAlnum, randomDigits, randomHex } from './sim-crypto';
import { selfSignedCertificatePem } from './x509';

export interface SandboxKeys extends SimKeys {
  merchantPrivateKey: KeyObject;
  merchantPrivateKeyPem: string;
  merchantPublicKeyPem: string;
  /** Self-signed stand-in for apiclient_cert.pem (some SDKs derive the serial from it). */
  merchantCertificatePem: string;
  /** 40 upper-case hex chars, the serial_no the gateway puts in Authorization. */
  merchantCertSerial: string;
  platformPrivateKeyPem: string;
  platformPublicKeyPem: string;
  platformCertificate: NonNullable<SimKeys['platformCertificate']>;
  /** Where the files are (undefined for in-memory keys). */
  dir?: string;
}

const FILES = {
  merchantPrivate: 'merchant_private_key.pem',
  merchantPublic: 'merchant_public_key.pem',
  merchantCert: 'merchant_cert.pem',
  merchantSerial: 'merchant_cert_serial',
  platformPrivate: 'platform_private_key.pem',
  platformPublic: 'platform_public_key.pem',
  platformPublicKeyId: 'platform_public_key_id',
  apiv3Key: 'apiv3_key',
  platformCertPrivate: 'platform_cert_private_key.pem',
  platformCert: 'platform_cert.pem',
  platformCertSerial: 'platform_cert_serial',
  platformCertPublic: 'platform_cert_public_key.pem',
} as const;

const newRsaPrivatePem = () =>
  generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

export function newCertSerial(): string {
  // A leading 00 byte would make a non-minimal DER INTEGER; avoid it.
  for (;;) {
    const s = randomHex(20).toUpperCase();
    if (!s.startsWith('00')) return s;
  }
}
export const newPublicKeyId = () => `PUB_KEY_ID_01${randomDigits(26)}`;

type Store = { get(name: string): string | undefined; put(name: string, value: string): void };

function build(store: Store, dir?: string): SandboxKeys {
  const getOr = (file: string, make: () => string) => {
    const existing = store.get(file);
    if (existing !== undefined && existing.trim() !== '') return existing;
    const v = make();
    store.put(file, v);
    return v;
  };
  const pair = (privFile: string, pubFile: string) => {
    const privPem = getOr(privFile, newRsaPrivatePem);
    const privateKey = createPrivateKey(privPem);
    const publicKey = createPublicKey(privateKey);
    const pubPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    if (store.get(pubFile)?.trim() !== pubPem.trim()) store.put(pubFile, pubPem);
    return { privPem, pubPem, privateKey, publicKey };
  };

  const merchant = pair(FILES.merchantPrivate, FILES.merchantPublic);
  const platform = pair(FILES.platformPrivate, FILES.platformPublic);
  const platformPublicKeyId = getOr(FILES.platformPublicKeyId, newPublicKeyId).trim();
  const apiv3Key = getOr(FILES.apiv3Key, () => randomAlnum(32)).trim();
  const merchantCertSerial = getOr(FILES.merchantSerial, newCertSerial).trim().toUpperCase();
  if (!/^PUB_KEY_ID_\w+$/.test(platformPublicKeyId)) throw new Error(`${FILES.platformPublicKeyId} must start with PUB_KEY_ID_`);
  if (apiv3Key.length !== 32) throw new Error(`${FILES.apiv3Key} must be 32 characters`);
  if (!/^[0-9A-F]{40}$/.test(merchantCertSerial)) throw new Error(`${FILES.merchantSerial} must be 40 hex characters`);

  const now = Date.now();
  const merchantCertificatePem = getOr(FILES.merchantCert, () =>
    selfSignedCertificatePem({
      serialHex: merchantCertSerial,
      commonName: '商户API证书 (simulator)',
      organization: 'Sandbox Merchant',
      publicKey: merchant.publicKey,
      privateKey: merchant.privateKey,
      notBefore: new Date(now - 86400_000),
      notAfter: new Date(now + 5 * 365 * 86400_000),
    }),
  );

  const cert = pair(FILES.platformCertPrivate, FILES.platformCertPublic);
  const certSerial = getOr(FILES.platformCertSerial, newCertSerial).trim().toUpperCase();
  const certificatePem = getOr(FILES.platformCert, () =>
    selfSignedCertificatePem({
      serialHex: certSerial,
      commonName: 'Tenpay.com Root CA (simulator)',
      organization: 'Tenpay.com',
      publicKey: cert.publicKey,
      privateKey: cert.privateKey,
      notBefore: new Date(now - 86400_000),
      notAfter: new Date(now + 5 * 365 * 86400_000),
    }),
  );

  return {
    merchantPublicKey: merchant.publicKey,
    merchantPrivateKey: merchant.privateKey,
    merchantPrivateKeyPem: merchant.privPem,
    merchantPublicKeyPem: merchant.pubPem,
    merchantCertificatePem,
    merchantCertSerial,
    platformPrivateKey: platform.privateKey,
    platformPublicKey: platform.publicKey,
    platformPrivateKeyPem: platform.privPem,
    platformPublicKeyPem: platform.pubPem,
    platformPublicKeyId,
    apiv3Key,
    platformCertificate: { serial: certSerial, privateKey: cert.privateKey, publicKey: cert.publicKey, certificatePem },
    dir,
  };
}

/** Reads the sandbox keys from `dir`, generating (RSA 2048) and writing whatever is missing. */
export function loadOrCreateSandboxKeys(dir: string): SandboxKeys {
  mkdirSync(dir, { recursive: true });
  return build(
    {
      get: (f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : undefined),
      put: (f, v) => writeFileSync(join(dir, f), v, { mode: f.includes('private') ? 0o600 : 0o644 }),
    },
    dir,
  );
}

/** Fresh in-memory keys for tests. */
export function generateSimKeys(): SandboxKeys {
  const m = new Map<string, string>();
  return build({ get: (f) => m.get(f), put: (f, v) => void m.set(f, v) });
}

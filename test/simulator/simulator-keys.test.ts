import { X509Certificate, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateSandboxKeys } from '../../src/simulator/keys';

describe('simulator sandbox keys', () => {
  test('When the directory is empty, then keys are generated, written, and read back identically', () => {
    const dir = mkdtempSync(join(tmpdir(), 'simkeys-'));
    try {
      const a = loadOrCreateSandboxKeys(dir);
      expect(a.platformPublicKeyId).toMatch(/^PUB_KEY_ID_\d{28}$/);
      expect(a.apiv3Key).toHaveLength(32);
      expect(a.merchantCertSerial).toMatch(/^[0-9A-F]{40}$/);
      expect(a.merchantPublicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
      for (const f of ['merchant_private_key.pem', 'merchant_public_key.pem', 'platform_private_key.pem', 'platform_public_key.pem', 'platform_public_key_id', 'apiv3_key', 'merchant_cert_serial'])
        expect(readFileSync(join(dir, f), 'utf8').length).toBeGreaterThan(0);
      const b = loadOrCreateSandboxKeys(dir);
      expect(b.merchantPrivateKeyPem).toBe(a.merchantPrivateKeyPem);
      expect(b.platformPublicKeyId).toBe(a.platformPublicKeyId);
      expect(b.apiv3Key).toBe(a.apiv3Key);
      expect(createPublicKey(readFileSync(join(dir, 'platform_public_key.pem'))).equals(a.platformPublicKey)).toBe(true);
      const mc = new X509Certificate(a.merchantCertificatePem);
      expect(mc.serialNumber.toUpperCase()).toBe(a.merchantCertSerial);
      expect(mc.publicKey.equals(a.merchantPublicKey)).toBe(true);
      expect(mc.verify(a.merchantPublicKey)).toBe(true);
      expect(new X509Certificate(a.platformCertificate.certificatePem).serialNumber.toUpperCase()).toBe(a.platformCertificate.serial);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

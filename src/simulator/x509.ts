/**
 * Minimal DER writer for a self-signed X.509 v3 certificate (sha256WithRSAEncryption). Node can parse
 * certificates but not create them, and the simulator needs one for platform-certificate mode
 * (GET /v3/certificates returns the PEM).
 */
import { createSign, type KeyObject } from 'node:crypto';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n >>= 8;
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, content: Buffer) => Buffer.concat([Buffer.from([tag]), len(content.length), content]);
const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const stack = [p & 0x7f];
    let v = p >>> 7;
    while (v > 0) {
      stack.unshift((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out.push(...stack);
  }
  return tlv(0x06, Buffer.from(out));
}

function integerFromHex(hex: string): Buffer {
  let b = Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function utcTime(d: Date): Buffer {
  const s = d.toISOString().replace(/[-T:]/g, '').slice(2, 14) + 'Z';
  return tlv(0x17, Buffer.from(s, 'ascii'));
}

function name(cn: string, org: string): Buffer {
  const attr = (o: string, v: string) => set(seq(oid(o), tlv(0x0c, Buffer.from(v, 'utf8'))));
  return seq(attr('2.5.4.6', 'CN'), attr('2.5.4.10', org), attr('2.5.4.3', cn));
}

export function selfSignedCertificatePem(opts: {
  serialHex: string;
  commonName: string;
  organization: string;
  publicKey: KeyObject;
  privateKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
}): string {
  const sigAlg = seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00]));
  const n = name(opts.commonName, opts.organization);
  const tbs = seq(
    tlv(0xa0, integerFromHex('02')),
    integerFromHex(opts.serialHex),
    sigAlg,
    n,
    seq(utcTime(opts.notBefore), utcTime(opts.notAfter)),
    n,
    opts.publicKey.export({ type: 'spki', format: 'der' }),
  );
  const sig = createSign('RSA-SHA256').update(tbs).sign(opts.privateKey);
  const der = seq(tbs, sigAlg, tlv(0x03, Buffer.concat([Buffer.from([0]), sig])));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/**
 * Sensitive request fields (receiver `name`): RSAES-OAEP with SHA-1 under the WeChat Pay public key,
 * base64, with the key's id in the request header Wechatpay-Serial.
 * Sources: GO sample wxpay_utility.EncryptOAEPWithPublicKey (rsa.EncryptOAEP(sha1.New(), ...)) in
 * wechatpay-apiv3/wechatpay-skills; error texts below are WeChat's own (see each comment).
 */
import { constants, privateDecrypt, type KeyObject } from 'node:crypto';
import type { Request } from 'express';
import type { SimContext } from '../context';

export interface SensitiveError {
  status: number;
  code: string;
  message: string;
}

/** Verified: yansongda/pay#546 (/v3/profitsharing/orders), klover2/wechatpay-node-v3-ts#31 (400). */
export const MISSING_SERIAL: SensitiveError = {
  status: 400,
  code: 'PARAM_ERROR',
  message: 'HTTP header缺少微信支付平台证书序列号(Wechatpay-Serial)',
};
/** Verified: official FAQ pay.weixin.qq.com/doc/v3/merchant/4013053279. */
export const WRONG_SERIAL: SensitiveError = {
  status: 400,
  code: 'PARAM_ERROR',
  message: '平台证书序列号Wechatpay-Serial错误',
};
/** Verified: developers.weixin.qq.com community threads (plain text where a ciphertext is expected). */
export const NOT_CIPHERTEXT: SensitiveError = {
  status: 400,
  code: 'PARAM_ERROR',
  message: '请确认待处理的消息是否为加密后的密文',
};
/** Verified: developers.weixin.qq.com community (encrypted with a key WeChat cannot decrypt). */
export const DECRYPT_FAILED: SensitiveError = { status: 400, code: 'PARAM_ERROR', message: '平台私钥解密失败' };

/**
 * Resolves the private key for the request's Wechatpay-Serial: the public-key id, or (when the core knows
 * one) the platform certificate serial — merchants migrating between the two modes use either.
 */
export function keyForRequest(ctx: SimContext, req: Request): { key: KeyObject } | { error: SensitiveError } {
  const serial = req.get('wechatpay-serial');
  if (!serial) return { error: MISSING_SERIAL };
  const key = ctx.platformKeyFor ? ctx.platformKeyFor(serial) : serial === ctx.keys.platformPublicKeyId ? ctx.keys.platformPrivateKey : undefined;
  return key ? { key } : { error: WRONG_SERIAL };
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Decrypts one sensitive field; plain text or a wrong-size blob is "not a ciphertext". */
export function decryptField(key: KeyObject, value: string): { ok: true; plain: string } | { ok: false; error: SensitiveError } {
  const modulusBytes = (key.asymmetricKeyDetails?.modulusLength ?? 2048) / 8;
  if (!BASE64.test(value) || value.length % 4 !== 0) return { ok: false, error: NOT_CIPHERTEXT };
  const raw = Buffer.from(value, 'base64');
  if (raw.length !== modulusBytes) return { ok: false, error: NOT_CIPHERTEXT };
  try {
    const plain = privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, raw).toString('utf8');
    return { ok: true, plain };
  } catch {
    return { ok: false, error: DECRYPT_FAILED };
  }
}

import { generateKeyPairSync, verify as rsaVerify } from 'node:crypto';
import { createWechatPayChannel } from '../../src/channels/wechatpay/wechatpay.channel';
import { PlatformKeyRing, jsapiPaySignMessage } from '../../src/channels/wechatpay/wechatpay.crypto';
import { toRfc3339China } from '../../src/channels/wechatpay/wechatpay.transform';

/** JSAPI paySign, key ring rules, time formats. Signatures are checked with node:crypto directly. */

const merchant = generateKeyPairSync('rsa', { modulusLength: 2048 });
const platform = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PUB_KEY_ID = 'PUB_KEY_ID_0114232134912410000000000000';

// Official test vector (SKILLS 签名与验签规则.md; FACTS §2). The doc's expected signature needs the
// doc's sample key, which we do not have: we reproduce the exact signed string and verify the shape.
const VECTOR = {
  appId: 'wx2421b1c4370ec43b',
  timeStamp: '1554208460',
  nonceStr: '593BEC0C930BF1AFEB40B4A08C8FB242',
  prepayId: 'wx201410272009395522657a690389285100',
};

function channelAt(ms: number) {
  return createWechatPayChannel({
    baseUrl: 'http://127.0.0.1:9',
    oauthBaseUrl: 'https://open.weixin.qq.com',
    apiBaseUrl: 'http://127.0.0.1:9',
    mchid: '1900000109',
    appid: VECTOR.appId,
    appSecret: 's',
    merchantPrivateKeyPem: merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    merchantCertSerial: '3775B6A45ACD588826D15E583A95F5DD2C3F3C5D',
    apiv3Key: 'abcdefghijklmnopqrstuvwxyz012345',
    platformKeys: { [PUB_KEY_ID]: platform.publicKey.export({ type: 'spki', format: 'pem' }).toString() },
    timeoutMs: 1000,
    clock: () => ms,
  });
}

describe('JSAPI paySign', () => {
  test('When the official vector is formatted, then the signed string is exactly four \\n-terminated lines', () => {
    expect(jsapiPaySignMessage(VECTOR.appId, VECTOR.timeStamp, VECTOR.nonceStr, `prepay_id=${VECTOR.prepayId}`)).toBe(
      'wx2421b1c4370ec43b\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\nprepay_id=wx201410272009395522657a690389285100\n',
    );
  });

  test('When jsapiParams is made, then paySign verifies with the merchant PUBLIC key over the hand-built string', () => {
    const p = channelAt(Number(VECTOR.timeStamp) * 1000 + 999).jsapiParams(VECTOR.prepayId);
    expect(p).toMatchObject({ appId: VECTOR.appId, timeStamp: VECTOR.timeStamp, package: `prepay_id=${VECTOR.prepayId}`, signType: 'RSA' });
    expect(p.nonceStr).toMatch(/^[0-9A-F]{32}$/);
    const signed = `${p.appId}\n${p.timeStamp}\n${p.nonceStr}\n${p.package}\n`;
    const sig = Buffer.from(p.paySign, 'base64');
    expect(sig.length).toBe(256); // RSA-2048
    expect(rsaVerify('sha256', Buffer.from(signed), merchant.publicKey, sig)).toBe(true);
    // without the trailing \n (a classic mistake) it must not verify
    expect(rsaVerify('sha256', Buffer.from(signed.slice(0, -1)), merchant.publicKey, sig)).toBe(false);
  });

  test('When jsapiParams is made twice, then the nonces differ (CSPRNG)', () => {
    const c = channelAt(Date.now());
    const nonces = new Set(Array.from({ length: 50 }, () => c.jsapiParams('wx1').nonceStr));
    expect(nonces.size).toBe(50);
  });
});

describe('PlatformKeyRing', () => {
  const pubPem = platform.publicKey.export({ type: 'spki', format: 'pem' }).toString();

  test('When looking up a serial in another case, then it is found; unknown serials are not', () => {
    const ring = new PlatformKeyRing({ [PUB_KEY_ID]: pubPem, abcdef0123: pubPem });
    expect(ring.get('ABCDEF0123')?.mode).toBe('certificate');
    expect(ring.get(PUB_KEY_ID)?.mode).toBe('public-key');
    expect(ring.get('PUB_KEY_ID_X')).toBeUndefined();
  });

  test('When both modes are configured, then the public key is the encryption key', () => {
    const ring = new PlatformKeyRing({ ABCDEF0123: pubPem, [PUB_KEY_ID]: pubPem });
    expect(ring.encryptionKey(new Date()).id).toBe(PUB_KEY_ID);
  });

  test('When a key is not RSA, is garbage, or the map is empty, then construction fails', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => new PlatformKeyRing({ [PUB_KEY_ID]: ec })).toThrow(/RSA/);
    expect(() => new PlatformKeyRing({ [PUB_KEY_ID]: 'not a pem' })).toThrow();
    expect(() => new PlatformKeyRing({})).toThrow();
  });
});

describe('time_expire', () => {
  test.each([
    ['2026-11-25T10:00:00.000Z', '2026-11-25T18:00:00+08:00'],
    ['2026-11-25T16:30:59.999Z', '2026-11-26T00:30:59+08:00'],
    ['2026-12-31T23:59:59Z', '2027-01-01T07:59:59+08:00'],
  ])('When %s is sent, then it is %s', (iso, expected) => {
    expect(toRfc3339China(new Date(iso))).toBe(expected);
  });
});

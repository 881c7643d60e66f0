/**
 * The channel client (src/channels/wechatpay) against official vectors (sources in ./vectors.ts).
 * The simulator runs against the same vectors in simulator.conformance.test.ts.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPublicKey, createVerify } from 'node:crypto';
import { ChannelError } from '../../src/lib/errors';
import { createWechatPayChannel } from '../../src/channels/wechatpay/wechatpay.channel';
import {
  decryptAeadAes256Gcm,
  jsapiPaySignMessage,
  loadApiV3Key,
  loadMerchantPrivateKey,
  PlatformKeyRing,
  requestSignMessage,
  signSha256Rsa,
} from '../../src/channels/wechatpay/wechatpay.crypto';
import { mapHttpError } from '../../src/channels/wechatpay/wechatpay.errors';
import { verifyNotifySource } from '../../src/channels/wechatpay/wechatpay.notify';
import { toWireOrderRequest } from '../../src/channels/wechatpay/wechatpay.transform';
import {
  AEAD_VECTOR,
  AUTHORIZATION_PATTERN,
  BYTE_LIMITS,
  CLOSE_PAID_VECTOR,
  DOC_TEST_MERCHANT_KEY,
  GO_SDK_TEST_KEY,
  GO_SIGNER_VECTOR,
  NOTIFY_VECTOR,
  PAY_SIGN_VECTOR,
  REQUEST_SIGN_VECTOR,
  SPLIT_ERROR_TABLE,
  utf8OfBytes,
} from './vectors';

describe('channel client: request signing (请求签名)', () => {
  it('When the official JSAPI order example is signed with the doc test key, then the signature is the documented one', () => {
    const v = REQUEST_SIGN_VECTOR;
    const msg = requestSignMessage(v.method, v.url, v.timestamp, v.nonce, v.body);
    expect(msg).toBe(`POST\n/v3/pay/transactions/jsapi\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n${v.body}\n`);
    expect(signSha256Rsa(loadMerchantPrivateKey(DOC_TEST_MERCHANT_KEY), msg)).toBe(v.signature);
  });

  it('When the official Go SDK signer vector is signed, then the signature matches', () => {
    expect(signSha256Rsa(loadMerchantPrivateKey(GO_SDK_TEST_KEY), GO_SIGNER_VECTOR.message)).toBe(GO_SIGNER_VECTOR.signature);
  });

  describe('on the wire', () => {
    let server: Server;
    let base = '';
    const seen: Array<{ url: string; headers: IncomingHttpHeaders; body: string }> = [];
    beforeAll(async () => {
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString('utf8')));
        req.on('end', () => {
          seen.push({ url: req.url ?? '', headers: req.headers, body });
          res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"code":"SIGN_ERROR","message":"签名错误"}');
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    it('When the channel orders with the doc test key, then its Authorization has the official layout and verifies with the doc public key', async () => {
      const channel = createWechatPayChannel({
        baseUrl: base, oauthBaseUrl: base, apiBaseUrl: base, mchid: '1900007291', appid: 'wxd678efh567hg6787', appSecret: 'x',
        merchantPrivateKeyPem: DOC_TEST_MERCHANT_KEY, merchantCertSerial: '1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C', apiv3Key: AEAD_VECTOR.apiv3Key,
        platformKeys: { D7CE59D1F522D701: NOTIFY_VECTOR.platformCertificate }, timeoutMs: 5_000, clock: () => 1554208460_000,
      });
      await expect(channel.createOrder({ tradeType: 'JSAPI', outTradeNo: '1217752501201407033233368018', description: 'Image形象店-深圳腾大-QQ公仔', amountFen: 100,
        expiresAt: new Date(1554208460_000 + 3600_000), notifyUrl: 'https://www.weixin.qq.com/wxpay/pay.php', profitSharing: false, payerOpenid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' })).rejects.toBeInstanceOf(ChannelError);
      const req = seen.at(-1)!;
      const m = AUTHORIZATION_PATTERN.exec(String(req.headers.authorization));
      expect(m).not.toBeNull();
      const [, mchid, nonce, timestamp, serial, signature] = m!;
      expect([mchid, timestamp, serial]).toEqual(['1900007291', '1554208460', '1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C']);
      const message = `POST\n${req.url}\n${timestamp}\n${nonce}\n${req.body}\n`;
      expect(createVerify('RSA-SHA256').update(message).verify(createPublicKey(DOC_TEST_MERCHANT_KEY), signature!, 'base64')).toBe(true);
    });
  });
});

describe('channel client: JSAPI paySign (调起支付签名)', () => {
  it('When the official test parameters are signed with the doc test key, then paySign is the documented value', () => {
    const v = PAY_SIGN_VECTOR;
    expect(signSha256Rsa(loadMerchantPrivateKey(DOC_TEST_MERCHANT_KEY), jsapiPaySignMessage(v.appId, v.timeStamp, v.nonceStr, v.package))).toBe(v.paySign);
  });
});

describe('channel client: notify verification (wechatpay-go sample) and AEAD_AES_256_GCM (wechatpay-java sample)', () => {
  const deps = () => ({ platformKeys: new PlatformKeyRing({ D7CE59D1F522D701: NOTIFY_VECTOR.platformCertificate }), apiV3Key: loadApiV3Key(AEAD_VECTOR.apiv3Key), clock: () => NOTIFY_VECTOR.nowMs });

  it('When the official notify arrives, then its signature verifies against the platform certificate named by Wechatpay-Serial', () => {
    expect(() => verifyNotifySource(deps(), NOTIFY_VECTOR.headers, Buffer.from(NOTIFY_VECTOR.body, 'utf8'))).not.toThrow();
  });

  it('When the official AEAD sample is decrypted with its APIv3 key, then it is the documented plaintext; another AAD is refused', () => {
    const v = AEAD_VECTOR;
    expect(decryptAeadAes256Gcm(loadApiV3Key(v.apiv3Key), v.ciphertext, v.nonce, v.associatedData).toString('utf8')).toBe(v.plaintext);
    expect(() => decryptAeadAes256Gcm(loadApiV3Key(v.apiv3Key), v.ciphertext, v.nonce, 'bad-associatedData')).toThrow();
  });

  it('When one byte of the body changes, or it arrives 5 minutes later, then it is refused', () => {
    const tampered = Buffer.from(NOTIFY_VECTOR.body.replace('签约成功', '签约失败'), 'utf8');
    expect(() => verifyNotifySource(deps(), NOTIFY_VECTOR.headers, tampered)).toThrow(ChannelError);
    const late = { ...deps(), clock: () => NOTIFY_VECTOR.nowMs + 300_000 };
    expect(() => verifyNotifySource(late, NOTIFY_VECTOR.headers, Buffer.from(NOTIFY_VECTOR.body, 'utf8'))).toThrow(ChannelError);
  });
});

describe('channel client: error table of 请求分账 (wechatpay-go api_orders.go)', () => {
  it.each(SPLIT_ERROR_TABLE)('When WeChat answers $status $code ($message), then retryable=$retryable', ({ status, code, message, retryable }) => {
    const e = mapHttpError(status, { code, message }, { verified: true });
    expect(e.retryable).toBe(retryable);
  });

  it('When a close answers 400 ORDER_PAID (排障手册), then it is the paid-order refusal the callers act on', () => {
    const e = mapHttpError(CLOSE_PAID_VECTOR.status, { code: CLOSE_PAID_VECTOR.code, message: '订单已支付' }, { verified: true });
    expect([e.code, e.retryable]).toEqual(['ORDER_PAID', false]);
  });
});

describe('channel client: byte limits (UTF-8)', () => {
  const order = (over: { description?: string; attach?: string }) =>
    toWireOrderRequest({ tradeType: 'NATIVE', outTradeNo: 'CONFORM_0001', description: 'x', amountFen: 1, expiresAt: new Date(Date.now() + 3600_000), notifyUrl: 'https://example.com/n', profitSharing: false, ...over }, { appid: 'wxd678efh567hg6787', mchid: '1900007291' });
  it('When description / attach are exactly at their byte limit, then they pass; one byte more is refused', () => {
    expect(() => order({ description: utf8OfBytes(BYTE_LIMITS.description) })).not.toThrow();
    expect(() => order({ description: utf8OfBytes(BYTE_LIMITS.description + 1) })).toThrow(ChannelError);
    expect(() => order({ attach: utf8OfBytes(BYTE_LIMITS.attach) })).not.toThrow();
    expect(() => order({ attach: utf8OfBytes(BYTE_LIMITS.attach + 1) })).toThrow(ChannelError);
  });
});

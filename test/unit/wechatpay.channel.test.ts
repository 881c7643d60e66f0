import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  randomBytes,
  sign as rsaSign,
  verify as rsaVerify,
  type KeyObject,
} from 'node:crypto';
import { ChannelError } from '../../src/lib/errors';
import type { PaymentChannel } from '../../src/channels/channel';
import { createWechatPayChannel, wechatPayConfigFromAppConfig, type WechatPayConfig } from '../../src/channels/wechatpay/wechatpay.channel';
import { createChannelRegistry, defaultChannelFactories } from '../../src/channels/registry';
import { loadConfig } from '../../src/config/config';
import { retryAfterMsOf } from '../../src/channels/wechatpay/wechatpay.errors';

/**
 * The WeChat Pay channel against a tiny local HTTP server that plays WeChat (127.0.0.1, port 0).
 * Everything the server checks is computed here independently of src/ (Authorization, OAEP).
 */

// A platform certificate (self-signed, RSA 2048) and its key: node:crypto cannot mint X.509, so it is
// a fixture made once with `openssl req -x509 -set_serial 0x5157F04E...`.
const CERT_SERIAL = '5157F04E3B7AEF4C41F4F6A1A6DC5D2EC8E8B1A2';
const CERT_PEM = `-----BEGIN CERTIFICATE-----
MIIDXzCCAkegAwIBAgIUUVfwTjt670xB9PahptxdLsjosaIwDQYJKoZIhvcNAQEL
BQAwPjEgMB4GA1UEAwwXVGVucGF5LmNvbSBSb290IENBIHRlc3QxDTALBgNVBAoM
BFRlc3QxCzAJBgNVBAYTAkNOMCAXDTI2MTEyNTE3MDIwNVoYDzIxMjYxMTAxMTcw
MjA1WjA+MSAwHgYDVQQDDBdUZW5wYXkuY29tIFJvb3QgQ0EgdGVzdDENMAsGA1UE
CgwEVGVzdDELMAkGA1UEBhMCQ04wggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEK
AoIBAQDCd7gJz5IAlBWOGeM3ojBMs814JB72QhjpRTsd3dkXhsOjZiwwPlNN/fhP
5spnfanjbRM4OBPQWkKkvFypPiYEw5ZdLJTo99NnOUoUdyDC+pekEJgagRXQWeyS
r+7fNinAks33wqrzo9TjQ9ykAKgS/0lGdt+Hj3Zj+cS7nWsbKuILOQniWxmzu3Db
vfaC+6bcriDO/bhfcb3VilssdoC2WJZ0Y+10qx+dAkriYfk/vur9okw13jbqrpnQ
gWKo5R9N0nm8+nsCI6K/2Pci/8PS/lVfoysjnQQDQgYAR/zwlMAAhm9+0WFXmLEd
Vc4Djzrliy5Uzk4TbZTNPFNcZ5r5AgMBAAGjUzBRMB0GA1UdDgQWBBQSzPZpJQTu
17yO6bzpJnBXWYJU+DAfBgNVHSMEGDAWgBQSzPZpJQTu17yO6bzpJnBXWYJU+DAP
BgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4IBAQArej/QUILwe80CJQbi
SkDa9Z32SvlDIulb7zCwEV0AnRcxENTFtjWIttk2dNnrK5Vex/5eK9nX+arcPLVW
+xbft6+tgWnti35C0VFagFNl2qs+c3z+a78Ka7Q/tPe1PTUeru/ppeQ+fZ968Qx1
YvsoaAdscJeJFTtcLaGkj0/+GIdJl1TO/hBukyFSRO90l/y7d0sOOqiBuDirRfiP
ONuW6Q8hNW0+jrfHTpfbohIkq8JUmbjy+yQFQKKRmgW//ZSiT0fWg9LMBiQAXH4m
wTFBugZcd2QRSjpqLFN75Y+4M81LbvY5paUcgG8RiGMeyXcEUggGmrhrluYgcVs6
m1U7
-----END CERTIFICATE-----`;
const CERT_KEY_PEM = `-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDCd7gJz5IAlBWO
GeM3ojBMs814JB72QhjpRTsd3dkXhsOjZiwwPlNN/fhP5spnfanjbRM4OBPQWkKk
vFypPiYEw5ZdLJTo99NnOUoUdyDC+pekEJgagRXQWeySr+7fNinAks33wqrzo9Tj
Q9ykAKgS/0lGdt+Hj3Zj+cS7nWsbKuILOQniWxmzu3DbvfaC+6bcriDO/bhfcb3V
ilssdoC2WJZ0Y+10qx+dAkriYfk/vur9okw13jbqrpnQgWKo5R9N0nm8+nsCI6K/
2Pci/8PS/lVfoysjnQQDQgYAR/zwlMAAhm9+0WFXmLEdVc4Djzrliy5Uzk4TbZTN
PFNcZ5r5AgMBAAECggEABaYJImoKdq9IPo548WOUllo24O3gjeksJJ9XHzHMhMUl
R0iWahuoAlnh/4F7Qpe9j9L2iK0CiW/TEhGReecCgrIjBXd8irHN6T3TX08kFGsc
3tG5PcKCq8CuQTGetTz6WdMCs1cHtLgbeU+Tebbu8fltxg5A4gTdJ24m5iOJCErg
zQURtTYO/zR13ytNWA1Y1uFFSkx0k+8itaw84pti7WEM8Aeb/wfaBUNzRfxjG4bG
mOs96L7cwVI8AWgCO3pey8gqB+JL22DVLyVumYuwdfMk0A10j6rIVBR7Pk39KlEV
/QDqeC15fbjdZWCS3lltKb61FEyE3EsezyTDKROzmwKBgQD8h+MeRyhQzW9Dz1xM
qBK4RT6BwBMZK0n/hKqAa9OkUhQ8YGDI5cKbmmC0TsJFQ72rJpoNBOUrbsF5Aiu4
JsZhEgsNoJpBzDiwDigC318/Ik/4Ew5GLxKPR5pKbjCbF7sWtgUhyx0bHSZkSozT
BHa9Y2Es1A4u8xmD2BawDM3rXwKBgQDFI6HhDJM3mhy5Qe0ttg8KyYINYDjiWN6r
vvRTQOy1e8B83j5LztRpSvTGWyCqXZvwPuc7fqi1CGSyo7PBIBWbObrSOlngwDLh
LzqR8klpNRf+eniOSbu6oSSlC0AHi/AhhSqvsFmFiPkYHI1Xom+Ox/wYwJ2ocwtd
hizpTNbwpwKBgQD0CsY77nxRihaqq2wBULO2jIRZk6thOWprmmPDc3C2bfPMXT9r
Jk8pXMlztmEb2tki200oo8Bsdr5WGPjzH9W63Vr9MmWgjKGD0kpsbD15n8k0bgXv
YXJIMOQ0ZcRnPUm6KvFOtSFNoKAHb9wj2T5+y9mPHucODDRuK5fRTq55dQKBgHFv
2oNUKBYzkNmtLNxDyY4Me9BUkQb12lN7Ur3hOxQG/LEddT1L64AXCJhm8Xn22Xc5
yva6IDvjc4YzmojDfItQgcbcmsEv91cKRSqb/1ARpBfjwyElHmf6t8pcmeB9zpSL
Ow/Tav/i3Graax6FMqo3O0HG/DFk2aJcRdWNSJU7AoGBAO7X0UagE5+GYJVoMYfV
rVxAAsEHscrfkVvtoXHTfEpPNoWnj94eiF1KZLZ9IyEL7jNf2VStA37bwL3WCO+/
J4Bhpsa6ToRAwqqZJAmSTnWEZ+eDml9kh6RRMVbaXixdbU2nx++rqIgx+KfGzXK4
DCIVBqwdM19ndwR2yOpMG47i
-----END PRIVATE KEY-----`;

const PUB_KEY_ID = 'PUB_KEY_ID_0114232134912410000000000000';
const MCHID = '1900000109';
const APPID = 'wx2421b1c4370ec43b';
const MERCHANT_SERIAL = '3775B6A45ACD588826D15E583A95F5DD2C3F3C5D';
const APIV3_KEY = 'abcdefghijklmnopqrstuvwxyz012345';

const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const merchant = rsa();
const platform = rsa(); // public-key mode (PUB_KEY_ID_...)
const stranger = rsa(); // signs with a key WeChat never gave us
const certKey = createPrivateKey(CERT_KEY_PEM);

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}
interface Reply {
  status: number;
  body?: string;
  /** false = no Wechatpay-* headers at all. */
  sign?: false | { key?: KeyObject; serial?: string; tsOffsetS?: number; signature?: string; signedBody?: string };
  hang?: boolean;
  /** Sends the status, headers and part of the body, then never finishes. */
  hangBody?: boolean;
  location?: string;
}

let server: Server;
let base: string;
const sockets = new Set<Socket>();
const recorded: Recorded[] = [];
let handler: (r: Recorded) => Reply = () => ({ status: 500, body: '{}' });

function signedHeaders(body: string, s: Exclude<Reply['sign'], false | undefined>): Record<string, string> {
  const ts = String(Math.floor(Date.now() / 1000) + (s.tsOffsetS ?? 0));
  const nonce = randomBytes(16).toString('hex');
  const signature =
    s.signature ?? rsaSign('sha256', Buffer.from(`${ts}\n${nonce}\n${s.signedBody ?? body}\n`), s.key ?? platform.privateKey).toString('base64');
  return {
    'Wechatpay-Timestamp': ts,
    'Wechatpay-Nonce': nonce,
    'Wechatpay-Signature': signature,
    'Wechatpay-Serial': s.serial ?? PUB_KEY_ID,
    'Wechatpay-Signature-Type': 'WECHATPAY2-SHA256-RSA2048',
  };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      recorded.push(r);
      const reply = handler(r);
      if (reply.hang) return;
      const body = reply.body ?? '';
      const headers: Record<string, string> = { 'Request-ID': '08F78BB5AF0610D302A6-268435456' };
      if (body) headers['Content-Type'] = 'application/json';
      if (reply.sign !== false) Object.assign(headers, signedHeaders(body, reply.sign ?? {}));
      if (reply.location) headers.Location = reply.location;
      res.writeHead(reply.status, headers);
      if (reply.hangBody) {
        res.write(body.slice(0, 1));
        return;
      }
      res.end(body);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  recorded.length = 0;
});

function config(over: Partial<WechatPayConfig> = {}): WechatPayConfig {
  return {
    baseUrl: base,
    oauthBaseUrl: 'https://open.weixin.qq.com',
    apiBaseUrl: base,
    mchid: MCHID,
    appid: APPID,
    appSecret: 'app-secret-xyz',
    merchantPrivateKeyPem: merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    merchantCertSerial: MERCHANT_SERIAL,
    apiv3Key: APIV3_KEY,
    platformKeys: {
      [PUB_KEY_ID]: platform.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      [CERT_SERIAL]: CERT_PEM,
    },
    timeoutMs: 2_000,
    ...over,
  };
}

/** Independent check of the request signature, exactly as WeChat does it (FACTS §3). */
function verifyAuthorization(r: Recorded): Record<string, string> {
  const h = String(r.headers.authorization ?? '');
  expect(h.startsWith('WECHATPAY2-SHA256-RSA2048 ')).toBe(true);
  const parts: Record<string, string> = {};
  for (const m of h.slice('WECHATPAY2-SHA256-RSA2048 '.length).matchAll(/(\w+)="([^"]*)"/g)) parts[m[1]] = m[2];
  expect(parts.mchid).toBe(MCHID);
  expect(parts.serial_no).toBe(MERCHANT_SERIAL);
  expect(parts.nonce_str).toMatch(/^[0-9A-F]{32}$/);
  expect(Math.abs(Number(parts.timestamp) - Date.now() / 1000)).toBeLessThan(5);
  const message = `${r.method}\n${r.url}\n${parts.timestamp}\n${parts.nonce_str}\n${r.body.toString('utf8')}\n`;
  expect(rsaVerify('sha256', Buffer.from(message), merchant.publicKey, Buffer.from(parts.signature, 'base64'))).toBe(true);
  return parts;
}

async function rejection(p: Promise<unknown>): Promise<ChannelError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ChannelError);
    return err as ChannelError;
  }
  throw new Error('expected a ChannelError');
}

const orderInput = {
  outTradeNo: 'CO_20261125_0001',
  description: 'Test shop – order 1',
  amountFen: 12345,
  expiresAt: new Date('2026-11-25T10:00:00Z'),
  attach: 'co_abc',
  notifyUrl: 'https://pay.example.com/notify/wechatpay/transactions',
  profitSharing: true,
};

describe('ordering', () => {
  const channel = () => createWechatPayChannel(config());

  test('When a JSAPI order is created, then the body is per FACTS §1, the request is signed and the verified prepay_id is returned', async () => {
    handler = () => ({ status: 200, body: '{"prepay_id":"wx201410272009395522657a690389285100"}' });
    const out = await channel().createOrder({ ...orderInput, tradeType: 'JSAPI', payerOpenid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' });
    expect(out).toEqual({ tradeType: 'JSAPI', prepayId: 'wx201410272009395522657a690389285100' });
    const r = recorded[0];
    expect(r.method).toBe('POST');
    expect(r.url).toBe('/v3/pay/transactions/jsapi');
    expect(r.headers['content-type']).toMatch(/application\/json/);
    expect(r.headers['wechatpay-serial']).toBeUndefined();
    verifyAuthorization(r);
    expect(JSON.parse(r.body.toString())).toEqual({
      appid: APPID,
      mchid: MCHID,
      description: 'Test shop – order 1',
      out_trade_no: 'CO_20261125_0001',
      time_expire: '2026-11-25T18:00:00+08:00',
      attach: 'co_abc',
      notify_url: 'https://pay.example.com/notify/wechatpay/transactions',
      amount: { total: 12345, currency: 'CNY' },
      settle_info: { profit_sharing: true },
      payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
    });
  });

  test('When an H5 order is created, then scene_info carries the client IP and h5_info.type Wap', async () => {
    handler = () => ({ status: 200, body: '{"h5_url":"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1&package=1"}' });
    const out = await channel().createOrder({ ...orderInput, tradeType: 'H5', payerClientIp: '203.0.113.7', profitSharing: false });
    expect(out).toEqual({ tradeType: 'H5', h5Url: 'https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1&package=1' });
    const body = JSON.parse(recorded[0].body.toString());
    expect(recorded[0].url).toBe('/v3/pay/transactions/h5');
    expect(body.scene_info).toEqual({ payer_client_ip: '203.0.113.7', h5_info: { type: 'Wap' } });
    expect(body.settle_info).toEqual({ profit_sharing: false });
    expect(body.payer).toBeUndefined();
    verifyAuthorization(recorded[0]);
  });

  test('When a Native order is answered in platform-certificate mode, then it verifies by certificate serial', async () => {
    handler = () => ({ status: 200, body: '{"code_url":"weixin://wxpay/bizpayurl?pr=abc"}', sign: { key: certKey, serial: CERT_SERIAL } });
    const out = await channel().createOrder({ ...orderInput, tradeType: 'NATIVE' });
    expect(out).toEqual({ tradeType: 'NATIVE', codeUrl: 'weixin://wxpay/bizpayurl?pr=abc' });
    expect(recorded[0].url).toBe('/v3/pay/transactions/native');
  });

  test('When required per-product fields are missing, then nothing is sent and the error is not retryable', async () => {
    const e1 = await rejection(channel().createOrder({ ...orderInput, tradeType: 'JSAPI' }));
    const e2 = await rejection(channel().createOrder({ ...orderInput, tradeType: 'H5' }));
    const e3 = await rejection(channel().createOrder({ ...orderInput, tradeType: 'NATIVE', amountFen: 0 }));
    for (const e of [e1, e2, e3]) expect([e.code, e.retryable]).toEqual(['INVALID_INPUT', false]);
    expect(recorded).toHaveLength(0);
  });

  test('When an order is queried, then the GET is signed over path+query with an empty body and the answer is normalised', async () => {
    handler = () => ({
      status: 200,
      body: JSON.stringify({
        appid: APPID,
        mchid: MCHID,
        out_trade_no: 'A|b*c-1_x',
        transaction_id: '4200000000000000000000000001',
        trade_type: 'JSAPI',
        trade_state: 'SUCCESS',
        trade_state_desc: '支付成功',
        success_time: '2026-11-25T18:01:02+08:00',
        attach: 'co_abc',
        payer: { openid: 'o1' },
        amount: { total: 100, payer_total: 90, currency: 'CNY', payer_currency: 'CNY' },
        promotion_detail: [],
      }),
    });
    const tx = await channel().queryOrder('A|b*c-1_x');
    expect(recorded[0].method).toBe('GET');
    expect(recorded[0].url).toBe(`/v3/pay/transactions/out-trade-no/A|b*c-1_x?mchid=${MCHID}`);
    expect(recorded[0].body.length).toBe(0);
    verifyAuthorization(recorded[0]);
    expect(tx).toEqual({
      appid: APPID,
      mchid: MCHID,
      outTradeNo: 'A|b*c-1_x',
      transactionId: '4200000000000000000000000001',
      tradeType: 'JSAPI',
      tradeState: 'SUCCESS',
      successTime: new Date('2026-11-25T10:01:02Z'),
      amountTotalFen: 100,
      payerTotalFen: 90,
      // No promotion_detail: the 10 fen discount is taken as merchant-funded (the safe reading, issue 7 §3).
      merchantFundedFen: 10,
      currency: 'CNY',
      payerOpenid: 'o1',
      attach: 'co_abc',
    });
  });

  test('When WeChat does not know the order (404 ORDER_NOT_EXIST, signed or not), then queryOrder returns null', async () => {
    handler = () => ({ status: 404, body: '{"code":"ORDER_NOT_EXIST","message":"订单不存在"}' });
    await expect(channel().queryOrder('CO_unknown_1')).resolves.toBeNull();
    handler = () => ({ status: 404, body: '{"code":"ORDER_NOT_EXIST","message":"订单不存在"}', sign: false });
    await expect(channel().queryOrder('CO_unknown_1')).resolves.toBeNull();
  });

  test('When an out_trade_no could change the URL path, then it is refused before sending', async () => {
    const e = await rejection(channel().queryOrder('../../v3/refund'));
    expect(e.code).toBe('INVALID_INPUT');
    expect(recorded).toHaveLength(0);
  });

  test('When an order is closed, then {mchid} is posted, 204 (signed, empty body) succeeds, and ORDERPAID is surfaced', async () => {
    handler = () => ({ status: 204 });
    await channel().closeOrder('CO_20261125_0001');
    expect(recorded[0].url).toBe('/v3/pay/transactions/out-trade-no/CO_20261125_0001/close');
    expect(JSON.parse(recorded[0].body.toString())).toEqual({ mchid: MCHID });
    verifyAuthorization(recorded[0]);
    handler = () => ({ status: 400, body: '{"code":"ORDERPAID","message":"订单已支付"}' });
    const e = await rejection(channel().closeOrder('CO_20261125_0001'));
    expect([e.code, e.retryable, e.opts.httpStatus]).toEqual(['ORDER_PAID', false, 400]);
    handler = () => ({ status: 400, body: '{"code":"ORDER_PAID","message":"订单已支付"}' });
    const v3 = await rejection(channel().closeOrder('CO_20261125_0001'));
    expect([v3.code, v3.retryable]).toEqual(['ORDER_PAID', false]);
  });

  test('When a close answers 202 USER_PAYING, then it is not closed: a retryable USER_PAYING error', async () => {
    handler = () => ({ status: 202, body: '{"code":"USER_PAYING","message":"用户支付中"}' });
    const e = await rejection(channel().closeOrder('CO_20261125_0001'));
    expect([e.code, e.retryable, e.opts.httpStatus]).toEqual(['USER_PAYING', true, 202]);
  });

  test('When a description is 43 Chinese characters (129 bytes of UTF-8), then it is refused before sending; 42 pass', async () => {
    const base = { tradeType: 'NATIVE' as const, outTradeNo: 'CO_20261125_0009', amountFen: 1, expiresAt: new Date(Date.now() + 3600_000), notifyUrl: 'https://example.com/n', profitSharing: false };
    const e = await rejection(channel().createOrder({ ...base, description: '商'.repeat(43) }));
    expect(e.code).toBe('INVALID_INPUT');
    expect(recorded).toHaveLength(0);
    const a = await rejection(channel().createOrder({ ...base, description: 'x', attach: '附'.repeat(43) }));
    expect(a.code).toBe('INVALID_INPUT');
  });

  test('When an unsigned 204 answers a close, then it is refused', async () => {
    handler = () => ({ status: 204, sign: false });
    const e = await rejection(channel().closeOrder('CO_20261125_0001'));
    expect(e.code).toBe('BAD_RESPONSE_SIGNATURE');
  });
});

describe('answer verification', () => {
  const ok = '{"prepay_id":"wx_ok"}';
  const create = (cfg: WechatPayConfig = config()) =>
    createWechatPayChannel(cfg).createOrder({ ...orderInput, tradeType: 'JSAPI', payerOpenid: 'o1' });

  test.each<[string, Reply, string]>([
    ['no signature headers', { status: 200, body: ok, sign: false }, 'MISSING_HEADERS'],
    ['a signature over another body', { status: 200, body: ok, sign: { signedBody: '{"prepay_id":"wx_other"}' } }, 'BAD_SIGNATURE'],
    ['a signature by a key we were never given', { status: 200, body: ok, sign: { key: stranger.privateKey } }, 'BAD_SIGNATURE'],
    ['an unknown serial', { status: 200, body: ok, sign: { serial: 'PUB_KEY_ID_0000000000000000000000000099' } }, 'UNKNOWN_SERIAL'],
    ['a timestamp 300 s old', { status: 200, body: ok, sign: { tsOffsetS: -300 } }, 'STALE_TIMESTAMP'],
    ['a timestamp 300 s ahead', { status: 200, body: ok, sign: { tsOffsetS: 300 } }, 'STALE_TIMESTAMP'],
    ['a SIGNTEST probe', { status: 200, body: ok, sign: { signature: 'WECHATPAY/SIGNTEST/ABCDEFGHIJ' } }, 'BAD_SIGNATURE'],
    ['a certificate serial with the public key’s signature', { status: 200, body: ok, sign: { serial: CERT_SERIAL } }, 'BAD_SIGNATURE'],
    ['an error answer with a bad signature', { status: 500, body: '{"code":"SYSTEM_ERROR","message":"x"}', sign: { key: stranger.privateKey } }, 'BAD_SIGNATURE'],
  ])('When an answer has %s, then it is refused as BAD_RESPONSE_SIGNATURE (not retryable)', async (_name, reply, reason) => {
    handler = () => reply;
    const e = await rejection(create());
    expect(e.code).toBe('BAD_RESPONSE_SIGNATURE');
    expect(e.retryable).toBe(false);
    expect((e.opts.detail as { reason: string }).reason).toBe(reason);
  });

  test('When the timestamp is 299 s old, then the answer is accepted', async () => {
    handler = () => ({ status: 200, body: ok, sign: { tsOffsetS: -299 } });
    await expect(create()).resolves.toEqual({ tradeType: 'JSAPI', prepayId: 'wx_ok' });
  });

  test('When only the public key is configured, then a certificate-signed answer has an unknown serial', async () => {
    handler = () => ({ status: 200, body: ok, sign: { key: certKey, serial: CERT_SERIAL } });
    const cfg = config({ platformKeys: { [PUB_KEY_ID]: platform.publicKey.export({ type: 'spki', format: 'pem' }).toString() } });
    const e = await rejection(create(cfg));
    expect((e.opts.detail as { reason: string }).reason).toBe('UNKNOWN_SERIAL');
  });

  test('When our clock is skewed (injected), then correctly signed answers are refused as stale', async () => {
    handler = () => ({ status: 200, body: ok });
    const e = await rejection(create(config({ clock: () => Date.now() + 10 * 60_000 })));
    expect((e.opts.detail as { reason: string }).reason).toBe('STALE_TIMESTAMP');
  });

  test('When a verified 200 lacks the field we depend on, then it is BAD_RESPONSE', async () => {
    handler = () => ({ status: 200, body: '{"prepayid":"wx"}' });
    const e = await rejection(create());
    expect([e.code, e.retryable]).toEqual(['BAD_RESPONSE', false]);
  });
});

describe('errors on the wire', () => {
  const create = () => createWechatPayChannel(config()).createOrder({ ...orderInput, tradeType: 'NATIVE' });

  test.each<[number, string, boolean, string]>([
    [500, '{"code":"SYSTEM_ERROR","message":"系统异常，请稍后重试"}', true, 'SYSTEM_ERROR'],
    [502, '<html>bad gateway</html>', true, 'HTTP_502'],
    [429, '{"code":"FREQUENCY_LIMITED","message":"频率超限"}', true, 'FREQUENCY_LIMITED'],
    [400, '{"code":"PARAM_ERROR","message":"参数错误"}', false, 'PARAM_ERROR'],
    [401, '{"code":"SIGN_ERROR","message":"签名错误"}', false, 'SIGN_ERROR'],
    [403, '{"code":"NO_AUTH","message":"无权限"}', false, 'NO_AUTH'],
  ])('When WeChat answers %i %s (unsigned), then the error is mapped with retryable=%s', async (status, body, retryable, code) => {
    handler = () => ({ status, body, sign: false });
    const e = await rejection(create());
    expect([e.code, e.retryable, e.opts.httpStatus]).toEqual([code, retryable, status]);
    expect((e.opts.detail as { requestId?: string }).requestId).toBe('08F78BB5AF0610D302A6-268435456');
  });

  test('When WeChat does not answer in time, then the error is a retryable TIMEOUT', async () => {
    handler = () => ({ status: 0, hang: true });
    const started = Date.now();
    const e = await rejection(createWechatPayChannel(config({ timeoutMs: 150 })).createOrder({ ...orderInput, tradeType: 'NATIVE' }));
    expect([e.code, e.retryable]).toEqual(['TIMEOUT', true]);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(retryAfterMsOf(e)).toBeGreaterThan(0);
  });

  test('When the answer body does not finish in time, then the error is the same retryable TIMEOUT', async () => {
    handler = () => ({ status: 200, body: '{"code_url":"weixin://x"}', hangBody: true });
    const started = Date.now();
    const e = await rejection(createWechatPayChannel(config({ timeoutMs: 150 })).createOrder({ ...orderInput, tradeType: 'NATIVE' }));
    expect([e.code, e.retryable]).toEqual(['TIMEOUT', true]);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  test('When WeChat answers with a redirect, then it is not followed and the call fails', async () => {
    handler = () => ({ status: 302, sign: false, location: `${base}/elsewhere` });
    const e = await rejection(create());
    expect(e.opts.httpStatus).toBe(302);
    expect(recorded.map((r) => r.url)).toEqual(['/v3/pay/transactions/native']);
  });

  test('When nothing listens at the base URL, then the error is a retryable NETWORK error', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const e = await rejection(
      createWechatPayChannel(config({ baseUrl: `http://127.0.0.1:${port}` })).createOrder({ ...orderInput, tradeType: 'NATIVE' }),
    );
    expect([e.code, e.retryable]).toEqual(['NETWORK', true]);
  });
});

describe('profit sharing', () => {
  const splitAnswer = (outOrderNo: string, state = 'PROCESSING') =>
    JSON.stringify({
      transaction_id: '4208450740201411110007820472',
      out_order_no: outOrderNo,
      order_id: '3008450740201411110007820472',
      state,
      receivers: [
        {
          type: 'MERCHANT_ID',
          account: '86693852',
          amount: 888,
          description: '分给商户A',
          result: 'PENDING',
          detail_id: '36011111111111111111111',
          create_time: '2026-11-25T18:00:00+08:00',
        },
        { type: 'PERSONAL_OPENID', account: 'oUpF8uMuAJO', amount: 12, description: '分给个人', result: 'CLOSED', fail_reason: 'NO_RELATION' },
      ],
    });

  function decryptName(ciphertext: string, key: KeyObject): string {
    return privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(ciphertext, 'base64')).toString('utf8');
  }

  test('When a split is requested, then names are OAEP-encrypted for the PUB_KEY_ID key, Wechatpay-Serial names it, and the answer is normalised', async () => {
    handler = () => ({ status: 200, body: splitAnswer('PS_1') });
    const res = await createWechatPayChannel(config()).createSplitOrder({
      transactionId: '4208450740201411110007820472',
      outOrderNo: 'PS_1',
      unfreezeUnsplit: false,
      receivers: [
        { type: 'MERCHANT_ID', account: '86693852', name: '腾讯科技（深圳）有限公司', amountFen: 888, description: '分给商户A' },
        { type: 'PERSONAL_OPENID', account: 'oUpF8uMuAJO', amountFen: 12, description: '分给个人' },
      ],
    });
    const r = recorded[0];
    expect(r.url).toBe('/v3/profitsharing/orders');
    expect(r.headers['wechatpay-serial']).toBe(PUB_KEY_ID);
    verifyAuthorization(r);
    const body = JSON.parse(r.body.toString());
    expect(body).toMatchObject({ appid: APPID, transaction_id: '4208450740201411110007820472', out_order_no: 'PS_1', unfreeze_unsplit: false });
    expect(body.wx_serial_no).toBeUndefined();
    expect(decryptName(body.receivers[0].name, platform.privateKey)).toBe('腾讯科技（深圳）有限公司');
    expect(body.receivers[0]).toMatchObject({ type: 'MERCHANT_ID', account: '86693852', amount: 888, description: '分给商户A' });
    expect(body.receivers[1].name).toBeUndefined();
    expect(res).toEqual({
      transactionId: '4208450740201411110007820472',
      outOrderNo: 'PS_1',
      orderId: '3008450740201411110007820472',
      state: 'PROCESSING',
      receivers: [
        {
          type: 'MERCHANT_ID',
          account: '86693852',
          amountFen: 888,
          description: '分给商户A',
          result: 'PENDING',
          detailId: '36011111111111111111111',
          createTime: '2026-11-25T18:00:00+08:00',
        },
        { type: 'PERSONAL_OPENID', account: 'oUpF8uMuAJO', amountFen: 12, description: '分给个人', result: 'CLOSED', failReason: 'NO_RELATION' },
      ],
    });
  });

  test('When only a platform certificate is configured, then the receiver name is encrypted with it and Wechatpay-Serial is its serial', async () => {
    handler = () => ({ status: 200, body: '{"type":"MERCHANT_ID","account":"86693852","relation_type":"PARTNER"}', sign: { key: certKey, serial: CERT_SERIAL } });
    await createWechatPayChannel(config({ platformKeys: { [CERT_SERIAL]: CERT_PEM } })).addReceiver({
      type: 'MERCHANT_ID',
      account: '86693852',
      name: '示例商户全称',
      relationType: 'PARTNER',
    });
    const r = recorded[0];
    expect(r.url).toBe('/v3/profitsharing/receivers/add');
    expect(r.headers['wechatpay-serial']).toBe(CERT_SERIAL);
    verifyAuthorization(r);
    const body = JSON.parse(r.body.toString());
    expect(body).toMatchObject({ appid: APPID, type: 'MERCHANT_ID', account: '86693852', relation_type: 'PARTNER' });
    expect(decryptName(body.name, certKey)).toBe('示例商户全称');
  });

  test('When a receiver has no name, then Wechatpay-Serial still names a platform key, never the merchant serial', async () => {
    handler = () => ({ status: 200, body: '{}' });
    await createWechatPayChannel(config()).addReceiver({ type: 'PERSONAL_OPENID', account: 'oX', relationType: 'USER' });
    expect(recorded[0].headers['wechatpay-serial']).toBe(PUB_KEY_ID);
    expect(JSON.parse(recorded[0].body.toString()).name).toBeUndefined();
  });

  test('When a split is queried, then it is GET /orders/{out_order_no}?transaction_id= and 404 RESOURCE_NOT_EXISTS is null', async () => {
    const ch = createWechatPayChannel(config());
    handler = () => ({ status: 200, body: splitAnswer('PS_2', 'FINISHED') });
    const res = await ch.querySplitOrder('4208450740201411110007820472', 'PS_2');
    expect(recorded[0].method).toBe('GET');
    expect(recorded[0].url).toBe('/v3/profitsharing/orders/PS_2?transaction_id=4208450740201411110007820472');
    verifyAuthorization(recorded[0]);
    expect(res?.state).toBe('FINISHED');
    handler = () => ({ status: 404, body: '{"code":"RESOURCE_NOT_EXISTS","message":"记录不存在"}' });
    await expect(ch.querySplitOrder('4208450740201411110007820472', 'PS_404')).resolves.toBeNull();
  });

  test('When the split is too early, then the error is NOT_READY, retryable, with a retry-after hint', async () => {
    handler = () => ({ status: 400, body: '{"code":"INVALID_REQUEST","message":"订单处理中，请稍后重试"}' });
    const e = await rejection(
      createWechatPayChannel(config()).createSplitOrder({
        transactionId: '4208450740201411110007820472',
        outOrderNo: 'PS_3',
        unfreezeUnsplit: true,
        receivers: [{ type: 'MERCHANT_ID', account: '1', name: 'n', amountFen: 1, description: 'd' }],
      }),
    );
    expect([e.code, e.retryable]).toEqual(['NOT_READY', true]);
    expect(retryAfterMsOf(e)).toBe(60_000);
  });

  test('When funds are unfrozen and the remaining amount is asked, then the endpoints and bodies are right', async () => {
    const ch = createWechatPayChannel(config());
    handler = () => ({ status: 200, body: splitAnswer('UF_1') });
    const res = await ch.unfreeze({ transactionId: '4208450740201411110007820472', outOrderNo: 'UF_1', description: '解冻全部剩余资金' });
    expect(recorded[0].url).toBe('/v3/profitsharing/orders/unfreeze');
    expect(JSON.parse(recorded[0].body.toString())).toEqual({
      transaction_id: '4208450740201411110007820472',
      out_order_no: 'UF_1',
      description: '解冻全部剩余资金',
    });
    expect(res.outOrderNo).toBe('UF_1');
    handler = () => ({ status: 200, body: '{"transaction_id":"4208450740201411110007820472","unsplit_amount":1000}' });
    await expect(ch.unsplitAmount('4208450740201411110007820472')).resolves.toEqual({ unsplitAmountFen: 1000 });
    expect(recorded[1].url).toBe('/v3/profitsharing/transactions/4208450740201411110007820472/amounts');
    verifyAuthorization(recorded[1]);
  });
});

describe('OAuth (snsapi_base)', () => {
  test('When the authorize URL is built, then it has the documented parameters in order and #wechat_redirect', () => {
    const url = createWechatPayChannel(config()).oauthAuthorizeUrl('https://pay.example.com/checkout/co_1/openid?x=1', 'st4te');
    expect(url).toBe(
      `https://open.weixin.qq.com/connect/oauth2/authorize?appid=${APPID}` +
        '&redirect_uri=https%3A%2F%2Fpay.example.com%2Fcheckout%2Fco_1%2Fopenid%3Fx%3D1' +
        '&response_type=code&scope=snsapi_base&state=st4te#wechat_redirect',
    );
    expect(() => createWechatPayChannel(config()).oauthAuthorizeUrl('https://x', 'a&b')).toThrow(ChannelError);
  });

  test('When the code is exchanged, then appid/secret/code/grant_type are sent and the openid returned; errcode is not retryable', async () => {
    const ch: PaymentChannel = createWechatPayChannel(config());
    handler = () => ({ status: 200, body: '{"access_token":"AT","expires_in":7200,"openid":"oOPENID","scope":"snsapi_base"}', sign: false });
    await expect(ch.oauthExchangeCode('CODE1')).resolves.toEqual({ openid: 'oOPENID' });
    const u = new URL(recorded[0].url, base);
    expect(u.pathname).toBe('/sns/oauth2/access_token');
    expect(Object.fromEntries(u.searchParams)).toEqual({ appid: APPID, secret: 'app-secret-xyz', code: 'CODE1', grant_type: 'authorization_code' });
    handler = () => ({ status: 200, body: '{"errcode":40029,"errmsg":"invalid code"}', sign: false });
    const e = await rejection(ch.oauthExchangeCode('CODE1'));
    expect([e.code, e.retryable]).toEqual(['OAUTH_40029', false]);
  });
});

describe('keys at construction', () => {
  test('When a certificate is filed under another serial, then the channel refuses to start', () => {
    expect(() => createWechatPayChannel(config({ platformKeys: { ABCDEF0123456789: CERT_PEM } }))).toThrow(/serial/);
  });

  test('When a certificate is filed under its serial in lower case, then answers signed with Wechatpay-Serial in upper case verify', async () => {
    handler = () => ({ status: 200, body: '{"code_url":"weixin://wxpay/bizpayurl?pr=abc"}', sign: { key: certKey, serial: CERT_SERIAL } });
    const ch = createWechatPayChannel(config({ platformKeys: { [CERT_SERIAL.toLowerCase()]: CERT_PEM } }));
    await expect(ch.createOrder({ ...orderInput, tradeType: 'NATIVE' })).resolves.toMatchObject({ codeUrl: 'weixin://wxpay/bizpayurl?pr=abc' });
  });

  test('When the APIv3 key is not 32 characters, then the channel refuses to start', () => {
    expect(() => createWechatPayChannel(config({ apiv3Key: 'short' }))).toThrow(/32/);
  });

  test('When the merchant key is given as PEM, then the public key derived from it verifies our signatures', () => {
    // Sanity for the fixtures: the merchant public key used by the fake WeChat matches the configured private key.
    const derived = createPublicKey(config().merchantPrivateKeyPem).export({ type: 'spki', format: 'pem' });
    expect(derived).toBe(merchant.publicKey.export({ type: 'spki', format: 'pem' }));
  });
});

describe('configuration and registry', () => {
  const files: Record<string, string> = {
    '/keys/apiclient_key.pem': config().merchantPrivateKeyPem,
    '/keys/pub_key.pem': config().platformKeys[PUB_KEY_ID],
    '/keys/platform_cert.pem': CERT_PEM,
  };
  const readFile = (path: string) => {
    if (!(path in files)) throw new Error(`ENOENT ${path}`);
    return Buffer.from(files[path]);
  };
  const appConfig = () =>
    loadConfig({
      DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db',
      REDIS_URL: 'redis://127.0.0.1:6379',
      STATE_SECRET: 'x'.repeat(32),
      WECHATPAY_BASE_URL: base,
      WECHATPAY_MCHID: MCHID,
      WECHATPAY_APPID: APPID,
      WECHAT_APP_SECRET: 'app-secret-xyz',
      WECHATPAY_MERCHANT_PRIVATE_KEY_PATH: '/keys/apiclient_key.pem',
      WECHATPAY_MERCHANT_CERT_SERIAL: MERCHANT_SERIAL,
      WECHATPAY_APIV3_KEY: APIV3_KEY,
      WECHATPAY_PLATFORM_KEYS: `${PUB_KEY_ID}=/keys/pub_key.pem, ${CERT_SERIAL}=/keys/platform_cert.pem`,
      WECHATPAY_HTTP_TIMEOUT_MS: '1234',
    });

  test('When the app config names key files, then the channel config carries their PEM contents', () => {
    expect(wechatPayConfigFromAppConfig(appConfig(), readFile)).toEqual({
      baseUrl: base,
      oauthBaseUrl: 'https://open.weixin.qq.com',
      apiBaseUrl: 'https://api.weixin.qq.com',
      mchid: MCHID,
      appid: APPID,
      appSecret: 'app-secret-xyz',
      merchantPrivateKeyPem: files['/keys/apiclient_key.pem'],
      merchantCertSerial: MERCHANT_SERIAL,
      apiv3Key: APIV3_KEY,
      platformKeys: { [PUB_KEY_ID]: files['/keys/pub_key.pem'], [CERT_SERIAL]: CERT_PEM },
      timeoutMs: 1234,
    });
  });

  test('When the registry is asked for wechatpay, then it builds the channel once; unknown names throw', async () => {
    let reads = 0;
    const registry = createChannelRegistry(defaultChannelFactories(appConfig(), (p) => (reads++, readFile(p))));
    expect(reads).toBe(0); // lazy
    const ch = registry.get('wechatpay');
    expect(registry.get('wechatpay')).toBe(ch);
    expect([ch.name, ch.appid, ch.mchid]).toEqual(['wechatpay', APPID, MCHID]);
    expect(registry.names()).toEqual(['wechatpay']);
    expect(() => registry.get('alipay')).toThrow(/unknown payment channel/);
    handler = () => ({ status: 200, body: '{"code_url":"weixin://x"}' });
    await expect(ch.createOrder({ ...orderInput, tradeType: 'NATIVE' })).resolves.toEqual({ tradeType: 'NATIVE', codeUrl: 'weixin://x' });
  });
});

import { createCipheriv, generateKeyPairSync, randomBytes, sign as rsaSign } from 'node:crypto';
import Pay from 'wechatpay-node-v3';
import { ChannelError } from '../../src/lib/errors';
import { createWechatPayChannel, type WechatPayConfig } from '../../src/channels/wechatpay/wechatpay.channel';
import { decryptAeadAes256Gcm, loadApiV3Key } from '../../src/channels/wechatpay/wechatpay.crypto';

/**
 * Payment notify: verify over the raw bytes FIRST, then AEAD_AES_256_GCM with the tag checked,
 * then the decrypted transaction is validated (FACTS §3–§4). Envelopes are built here by hand.
 */

const PUB_KEY_ID = 'PUB_KEY_ID_0114232134912410000000000000';
const APIV3_KEY = 'abcdefghijklmnopqrstuvwxyz012345';
const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const merchant = rsa();
const platform = rsa();
const stranger = rsa();

const NOW_MS = Date.parse('2026-11-25T10:00:30Z');
const NOW_S = Math.floor(NOW_MS / 1000);

const channel = createWechatPayChannel({
  baseUrl: 'http://127.0.0.1:9', // never called here
  oauthBaseUrl: 'https://open.weixin.qq.com',
  apiBaseUrl: 'http://127.0.0.1:9',
  mchid: '1900000109',
  appid: 'wx2421b1c4370ec43b',
  appSecret: 's',
  merchantPrivateKeyPem: merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  merchantCertSerial: '3775B6A45ACD588826D15E583A95F5DD2C3F3C5D',
  apiv3Key: APIV3_KEY,
  platformKeys: { [PUB_KEY_ID]: platform.publicKey.export({ type: 'spki', format: 'pem' }).toString() },
  timeoutMs: 1000,
  clock: () => NOW_MS,
} satisfies WechatPayConfig);

const transaction = {
  appid: 'wx2421b1c4370ec43b',
  mchid: '1900000109',
  out_trade_no: 'CO_20261125_0001',
  transaction_id: '4200000000000000000000000001',
  trade_type: 'JSAPI',
  trade_state: 'SUCCESS',
  trade_state_desc: '支付成功',
  bank_type: 'CMC',
  attach: 'co_abc',
  success_time: '2026-11-25T18:00:20+08:00',
  payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
  amount: { total: 12345, payer_total: 12345, currency: 'CNY', payer_currency: 'CNY' },
};

function encrypt(plain: string, aad = 'transaction', nonce = randomBytes(6).toString('hex')) {
  const c = createCipheriv('aes-256-gcm', Buffer.from(APIV3_KEY), Buffer.from(nonce));
  c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plain, 'utf8'), c.final(), c.getAuthTag()]);
  return { ciphertext: ct.toString('base64'), nonce, associated_data: aad };
}

/** Pretty-printed on purpose: a re-serialised body would not verify. */
function envelope(resource: { ciphertext: string; nonce: string; associated_data: string }): Buffer {
  return Buffer.from(
    JSON.stringify(
      {
        id: 'EV-2018022511223320873',
        create_time: '2026-11-25T18:00:25+08:00',
        resource_type: 'encrypt-resource',
        event_type: 'TRANSACTION.SUCCESS',
        summary: '支付成功',
        resource: { original_type: 'transaction', algorithm: 'AEAD_AES_256_GCM', ...resource },
      },
      null,
      2,
    ),
  );
}

function headersFor(body: Buffer, opts: { ts?: number; serial?: string; key?: typeof platform.privateKey; signature?: string } = {}) {
  const ts = String(opts.ts ?? NOW_S);
  const nonce = 'fdasflkja484w';
  const signature =
    opts.signature ??
    rsaSign('sha256', Buffer.concat([Buffer.from(`${ts}\n${nonce}\n`), body, Buffer.from('\n')]), opts.key ?? platform.privateKey).toString('base64');
  return {
    'wechatpay-timestamp': ts,
    'wechatpay-nonce': nonce,
    'wechatpay-signature': signature,
    'wechatpay-serial': opts.serial ?? PUB_KEY_ID,
    'wechatpay-signature-type': 'WECHATPAY2-SHA256-RSA2048',
  };
}

function refusal(fn: () => unknown): ChannelError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ChannelError);
    expect((err as ChannelError).retryable).toBe(false);
    return err as ChannelError;
  }
  throw new Error('expected a ChannelError');
}

describe('parsePaymentNotify', () => {
  const body = envelope(encrypt(JSON.stringify(transaction)));

  test('When a notify is signed and encrypted correctly, then the verified transaction is returned normalised', () => {
    expect(channel.parsePaymentNotify(headersFor(body), body)).toEqual({
      eventId: 'EV-2018022511223320873',
      eventType: 'TRANSACTION.SUCCESS',
      createTime: '2026-11-25T18:00:25+08:00',
      transaction: {
        appid: 'wx2421b1c4370ec43b',
        mchid: '1900000109',
        outTradeNo: 'CO_20261125_0001',
        transactionId: '4200000000000000000000000001',
        tradeType: 'JSAPI',
        tradeState: 'SUCCESS',
        successTime: new Date('2026-11-25T10:00:20Z'),
        amountTotalFen: 12345,
        payerTotalFen: 12345,
        currency: 'CNY',
        payerOpenid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
        attach: 'co_abc',
      },
    });
  });

  test('When header names arrive in mixed case, then they are still found', () => {
    const h = Object.fromEntries(Object.entries(headersFor(body)).map(([k, v]) => [k.replace(/(^|-)w/g, (m) => m.toUpperCase()), v]));
    expect(channel.parsePaymentNotify(h, body).eventId).toBe('EV-2018022511223320873');
  });

  test('When the body was re-serialised (same JSON, other bytes), then the signature fails', () => {
    const compact = Buffer.from(JSON.stringify(JSON.parse(body.toString())));
    expect(refusal(() => channel.parsePaymentNotify(headersFor(body), compact)).code).toBe('BAD_SIGNATURE');
  });

  test.each(['wechatpay-timestamp', 'wechatpay-nonce', 'wechatpay-signature', 'wechatpay-serial'])(
    'When %s is missing, then the notify is refused as BAD_SIGNATURE',
    (name) => {
      const h: Record<string, string | undefined> = { ...headersFor(body) };
      delete h[name];
      expect(refusal(() => channel.parsePaymentNotify(h, body)).code).toBe('BAD_SIGNATURE');
    },
  );

  test('When a header is repeated, then it counts as absent', () => {
    const h = { ...headersFor(body), 'wechatpay-serial': [PUB_KEY_ID, PUB_KEY_ID] };
    expect(refusal(() => channel.parsePaymentNotify(h, body)).code).toBe('BAD_SIGNATURE');
  });

  test('When the serial is unknown, then UNKNOWN_SERIAL', () => {
    const h = headersFor(body, { serial: 'PUB_KEY_ID_0114232134912410000000000099' });
    expect(refusal(() => channel.parsePaymentNotify(h, body)).code).toBe('UNKNOWN_SERIAL');
  });

  test.each([-300, 300, -86_400])('When the timestamp is %i s away, then STALE_TIMESTAMP', (offset) => {
    expect(refusal(() => channel.parsePaymentNotify(headersFor(body, { ts: NOW_S + offset }), body)).code).toBe('STALE_TIMESTAMP');
  });

  test('When the timestamp is 299 s away, then the notify is accepted', () => {
    expect(channel.parsePaymentNotify(headersFor(body, { ts: NOW_S - 299 }), body).eventType).toBe('TRANSACTION.SUCCESS');
  });

  test('When WeChat sends a WECHATPAY/SIGNTEST/ probe, then it is refused (so that we answer 4xx/5xx)', () => {
    const h = headersFor(body, { signature: 'WECHATPAY/SIGNTEST/4u6AOmRr4v/6SVDTdDQrgM1cqoXzMzXoJ5X+dfdDbUj' });
    expect(refusal(() => channel.parsePaymentNotify(h, body)).code).toBe('BAD_SIGNATURE');
  });

  test('When signed by another key under our serial, then BAD_SIGNATURE', () => {
    expect(refusal(() => channel.parsePaymentNotify(headersFor(body, { key: stranger.privateKey }), body)).code).toBe('BAD_SIGNATURE');
  });

  test('When the ciphertext is tampered (even if the envelope is re-signed), then DECRYPT_FAILED — the GCM tag is checked', () => {
    const r = encrypt(JSON.stringify(transaction));
    const ct = Buffer.from(r.ciphertext, 'base64');
    ct[5] ^= 0x01;
    const tampered = envelope({ ...r, ciphertext: ct.toString('base64') });
    expect(refusal(() => channel.parsePaymentNotify(headersFor(tampered), tampered)).code).toBe('DECRYPT_FAILED');
  });

  test('When associated_data differs from the one used to encrypt, then DECRYPT_FAILED', () => {
    const r = encrypt(JSON.stringify(transaction), 'transaction');
    const b = envelope({ ...r, associated_data: 'refund' });
    expect(refusal(() => channel.parsePaymentNotify(headersFor(b), b)).code).toBe('DECRYPT_FAILED');
  });

  test('When the body is not a notify envelope, or the decrypted transaction lacks trade_state, then BAD_NOTIFY', () => {
    const junk = Buffer.from('{"hello":"world"}');
    expect(refusal(() => channel.parsePaymentNotify(headersFor(junk), junk)).code).toBe('BAD_NOTIFY');
    const { trade_state: _dropped, ...noState } = transaction;
    const b = envelope(encrypt(JSON.stringify(noState)));
    expect(refusal(() => channel.parsePaymentNotify(headersFor(b), b)).code).toBe('BAD_NOTIFY');
  });
});

describe('AEAD_AES_256_GCM vs the SDK', () => {
  test('When the ciphertext is tampered, then our decrypt throws while wechatpay-node-v3 2.2.1 decipher_gcm returns garbage', () => {
    const r = encrypt('{"trade_state":"SUCCESS"}');
    const ct = Buffer.from(r.ciphertext, 'base64');
    ct[0] ^= 0x20;
    const tampered = ct.toString('base64');
    expect(() => decryptAeadAes256Gcm(loadApiV3Key(APIV3_KEY), tampered, r.nonce, r.associated_data)).toThrow(/authentication/);
    // Why the SDK's decipher_gcm is not used: it never calls final(), so the tag is never checked.
    const sdk = new Pay({
      appid: 'wx2421b1c4370ec43b',
      mchid: '1900000109',
      serial_no: 'X',
      publicKey: Buffer.from('unused'),
      privateKey: Buffer.alloc(0),
      key: APIV3_KEY,
    });
    expect(() => sdk.decipher_gcm(tampered, r.associated_data, r.nonce)).not.toThrow();
  });
});

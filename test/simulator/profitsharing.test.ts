/**
 * The simulator's profit-sharing (分账) endpoints, driven over HTTP on 127.0.0.1 with a hand-built SimContext
 * (plain-JSON reply/fail) so these tests do not depend on the core app's signing and auth.
 */
import { constants, generateKeyPairSync, publicEncrypt, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import type { SimContext, SimTransaction } from '../../src/simulator/context';
import {
  createProfitSharingControl,
  createProfitSharingRouter,
  profitSharingControl,
} from '../../src/simulator/profitsharing/router';

const MCHID = '1900000109';
const APPID = 'wx8888888888888888';
const PUB_KEY_ID = 'PUB_KEY_ID_0114232134912410000000000000';
const TX = '4200000000202601100000000001';
const PAID_AT = Date.parse('2026-01-10T02:00:00Z');

const platform = generateKeyPairSync('rsa', { modulusLength: 2048 });
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });

function enc(plain: string, key: KeyObject = platform.publicKey): string {
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(plain)).toString('base64');
}

interface Harness {
  ctx: SimContext;
  api: ReturnType<typeof request>;
  advance(ms: number): void;
  addTx(over?: Partial<SimTransaction>): SimTransaction;
  close(): Promise<void>;
}

const open: Harness[] = [];

async function setup(ps: Partial<SimContext['opts']['profitSharing']> = {}): Promise<Harness> {
  let now = PAID_AT + 120_000;
  const ctx: SimContext = {
    opts: {
      mchid: MCHID,
      appid: APPID,
      appSecret: 'secret',
      merchantCertSerial: 'SERIAL',
      notifyRetryScheduleMs: [],
      maxClockSkewSeconds: 300,
      h5Domains: [],
      profitSharing: {
        receiverLimit: 50,
        maxRatio: 0.3,
        maxRequestsPerOrder: 50,
        minDelayAfterPayMs: 60_000,
        resultDelayMs: 0,
        ratePerSecond: 0,
        spRatePerSecond: 0,
        subRatePerSecond: 0,
        perOrderRatePerSecond: 0,
        feeRate: 0,
        windowDays: 30,
        ...ps,
      },
    },
    keys: {
      merchantPublicKey: stranger.publicKey,
      platformPrivateKey: platform.privateKey,
      platformPublicKey: platform.publicKey,
      platformPublicKeyId: PUB_KEY_ID,
      apiv3Key: 'a'.repeat(32),
    },
    now: () => now,
    transactions: { byOutTradeNo: new Map(), byTransactionId: new Map() },
    reply(res, status, body) {
      if (body === undefined) res.status(status).end();
      else res.status(status).json(body);
    },
    fail(res, status, code, message, detail) {
      res.status(status).json({ code, message, ...(detail !== undefined ? { detail } : {}) });
    },
    calls: [],
  };
  const app = express();
  app.use(
    express.json({
      verify: (req, _res, buf) => {
        (req as unknown as { rawBody: string }).rawBody = buf.toString('utf8');
      },
    }),
  );
  app.use('/v3/profitsharing', createProfitSharingRouter(ctx));
  app.use('/_sim/profitsharing', createProfitSharingControl(ctx));
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const h: Harness = {
    ctx,
    api: request(`http://127.0.0.1:${port}`),
    advance: (ms) => {
      now += ms;
    },
    addTx(over = {}) {
      const tx: SimTransaction = {
        outTradeNo: `T${over.transactionId ?? TX}`,
        transactionId: TX,
        tradeType: 'JSAPI',
        appid: APPID,
        mchid: MCHID,
        description: 'goods',
        notifyUrl: 'https://merchant.example/notify',
        amountTotal: 10_000,
        payerTotal: 10_000,
        currency: 'CNY',
        payerOpenid: 'o-payer',
        profitSharing: true,
        state: 'SUCCESS',
        successTime: '2026-01-10T10:00:00+08:00',
        paidAtMs: PAID_AT,
        requestFingerprint: '{}',
        createdAtMs: PAID_AT - 60_000,
        ...over,
      };
      ctx.transactions.byOutTradeNo.set(tx.outTradeNo, tx);
      ctx.transactions.byTransactionId.set(tx.transactionId!, tx);
      return tx;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  open.push(h);
  return h;
}

afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

const serial = { 'Wechatpay-Serial': PUB_KEY_ID };

async function addMerchant(h: Harness, account = '1900000201', name = '甲有限公司') {
  return h.api
    .post('/v3/profitsharing/receivers/add')
    .set(serial)
    .send({ appid: APPID, type: 'MERCHANT_ID', account, name: enc(name), relation_type: 'PARTNER' });
}

async function addPerson(h: Harness, account = 'o-person-1', name?: string) {
  const req = h.api.post('/v3/profitsharing/receivers/add');
  if (name) req.set(serial);
  return req.send({ appid: APPID, type: 'PERSONAL_OPENID', account, ...(name ? { name: enc(name) } : {}), relation_type: 'USER' });
}

function merchantReceiver(amount: number, account = '1900000201', name = '甲有限公司') {
  return { type: 'MERCHANT_ID', account, name: enc(name), amount, description: '平台佣金' };
}

function split(h: Harness, outOrderNo: string, receivers: unknown[], extra: Record<string, unknown> = {}) {
  return h.api
    .post('/v3/profitsharing/orders')
    .set(serial)
    .send({ transaction_id: TX, out_order_no: outOrderNo, receivers, unfreeze_unsplit: false, ...extra });
}

const query = (h: Harness, outOrderNo: string, tx = TX) =>
  h.api.get(`/v3/profitsharing/orders/${outOrderNo}`).query({ transaction_id: tx });
const amounts = (h: Harness, tx = TX) => h.api.get(`/v3/profitsharing/transactions/${tx}/amounts`);

describe('receivers/add and receivers/delete', () => {
  it('When a merchant receiver is added with an encrypted name, then it answers the relation', async () => {
    const h = await setup();
    const res = await addMerchant(h);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ type: 'MERCHANT_ID', account: '1900000201', relation_type: 'PARTNER' });
  });

  it('When the name is plain text, or the serial header is missing or wrong, then it is refused like WeChat', async () => {
    const h = await setup();
    const body = { appid: APPID, type: 'MERCHANT_ID', account: '1900000201', relation_type: 'PARTNER' };
    const plain = await h.api.post('/v3/profitsharing/receivers/add').set(serial).send({ ...body, name: '甲有限公司' });
    expect(plain.status).toBe(400);
    expect(plain.body).toMatchObject({ code: 'PARAM_ERROR', message: '请确认待处理的消息是否为加密后的密文' });
    const noSerial = await h.api.post('/v3/profitsharing/receivers/add').send({ ...body, name: enc('甲有限公司') });
    expect(noSerial.body).toMatchObject({ code: 'PARAM_ERROR', message: 'HTTP header缺少微信支付平台证书序列号(Wechatpay-Serial)' });
    const wrongSerial = await h.api
      .post('/v3/profitsharing/receivers/add')
      .set('Wechatpay-Serial', 'PUB_KEY_ID_OTHER')
      .send({ ...body, name: enc('甲有限公司') });
    expect(wrongSerial.body).toMatchObject({ code: 'PARAM_ERROR', message: '平台证书序列号Wechatpay-Serial错误' });
    const otherKey = await h.api
      .post('/v3/profitsharing/receivers/add')
      .set(serial)
      .send({ ...body, name: enc('甲有限公司', stranger.publicKey) });
    expect(otherKey.body).toMatchObject({ code: 'PARAM_ERROR', message: '平台私钥解密失败' });
    expect(profitSharingControl(h.ctx).receivers()).toHaveLength(0);
  });

  it('When a MERCHANT_ID has no name, CUSTOM has no custom_relation, or fields are wrong, then PARAM_ERROR', async () => {
    const h = await setup();
    const add = (b: Record<string, unknown>) => h.api.post('/v3/profitsharing/receivers/add').set(serial).send(b);
    const base = { appid: APPID, type: 'PERSONAL_OPENID', account: 'o-1', relation_type: 'USER' };
    expect((await add({ ...base, type: 'MERCHANT_ID', account: '1900000201' })).body.code).toBe('PARAM_ERROR');
    expect((await add({ ...base, relation_type: 'CUSTOM' })).body.code).toBe('PARAM_ERROR');
    expect((await add({ ...base, relation_type: 'FRIEND' })).body.code).toBe('PARAM_ERROR');
    const extra = await add({ ...base, sub_mchid: '1' });
    expect(extra.body).toMatchObject({ code: 'PARAM_ERROR', message: '请求中含有未在API文档中定义的参数' });
    expect((await add({ ...base, appid: 'wxOTHER' })).status).toBe(400);
    expect((await add({ ...base, relation_type: 'CUSTOM', custom_relation: '代理商' })).status).toBe(200);
  });

  it('When a receiver is added twice, then both succeed and the first registration is kept', async () => {
    const h = await setup();
    h.addTx();
    expect((await addMerchant(h, '1900000201', '甲有限公司')).status).toBe(200);
    expect((await addMerchant(h, '1900000201', '乙有限公司')).status).toBe(200);
    expect(profitSharingControl(h.ctx).receivers()).toEqual([expect.objectContaining({ name: '甲有限公司' })]);
    const bad = await split(h, 'P1', [merchantReceiver(100, '1900000201', '乙有限公司')]);
    expect(bad.status).toBe(400);
    expect((await split(h, 'P2', [merchantReceiver(100, '1900000201', '甲有限公司')])).status).toBe(200);
  });

  it('When a receiver is deleted, then later splits to it are refused as relation-less', async () => {
    const h = await setup();
    h.addTx();
    await addMerchant(h);
    const del = await h.api.post('/v3/profitsharing/receivers/delete').send({ appid: APPID, type: 'MERCHANT_ID', account: '1900000201' });
    expect(del.status).toBe(200);
    expect(del.body).toEqual({ type: 'MERCHANT_ID', account: '1900000201' });
    const res = await split(h, 'P1', [merchantReceiver(100)]);
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('分账接收方关系不存在');
  });
});

describe('POST /orders', () => {
  it('When a valid split is requested, then it is accepted PENDING and turns SUCCESS on the next query (delay 0)', async () => {
    const h = await setup();
    h.addTx();
    await addMerchant(h);
    await addPerson(h, 'o-person-1');
    const res = await split(
      h,
      'P20260110-1',
      [merchantReceiver(1000), { type: 'PERSONAL_OPENID', account: 'o-person-1', amount: 500, description: '分给个人' }],
      { appid: APPID },
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ transaction_id: TX, out_order_no: 'P20260110-1', state: 'PROCESSING' });
    expect(res.body.order_id).toMatch(/^\d+$/);
    expect(res.body.receivers).toEqual([
      expect.objectContaining({ amount: 1000, type: 'MERCHANT_ID', account: '1900000201', result: 'PENDING', description: '平台佣金' }),
      expect.objectContaining({ amount: 500, type: 'PERSONAL_OPENID', result: 'PENDING' }),
    ]);
    expect(res.body.receivers[0].create_time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);
    expect(res.body.receivers[0].finish_time).toBeUndefined();

    const q = await query(h, 'P20260110-1');
    expect(q.body.state).toBe('FINISHED');
    expect(q.body.receivers.map((r: { result: string }) => r.result)).toEqual(['SUCCESS', 'SUCCESS']);
    expect(q.body.receivers[0].finish_time).toBeDefined();
    expect((await amounts(h)).body).toEqual({ transaction_id: TX, unsplit_amount: 10_000 - 1500 });
  });

  it('When resultDelayMs is set, then receivers stay PENDING until the delay has passed', async () => {
    const h = await setup({ resultDelayMs: 5_000 });
    h.addTx();
    await addMerchant(h);
    await split(h, 'P1', [merchantReceiver(100)]);
    h.advance(4_999);
    expect((await query(h, 'P1')).body).toMatchObject({ state: 'PROCESSING', receivers: [{ result: 'PENDING' }] });
    h.advance(1);
    expect((await query(h, 'P1')).body).toMatchObject({ state: 'FINISHED', receivers: [{ result: 'SUCCESS' }] });
  });

  it('When the transaction is unknown or was not ordered with profit_sharing, then 非分账订单不支持分账', async () => {
    const h = await setup();
    h.addTx({ transactionId: '4200000000202601100000000002', outTradeNo: 'T2', profitSharing: false });
    await addMerchant(h);
    for (const tx of ['4200000000202601100000009999', '4200000000202601100000000002']) {
      const res = await split(h, `P-${tx}`, [merchantReceiver(100)], { transaction_id: tx });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'INVALID_REQUEST', message: '非分账订单不支持分账' });
    }
  });

  it('When the split comes less than minDelayAfterPayMs after payment, then 订单处理中 (retry later), then it works', async () => {
    const h = await setup({ minDelayAfterPayMs: 180_000 });
    h.addTx();
    await addMerchant(h);
    const early = await split(h, 'P1', [merchantReceiver(100)]);
    expect(early.status).toBe(400);
    expect(early.body).toMatchObject({ code: 'INVALID_REQUEST', message: '订单处理中，请稍后重试' });
    h.advance(60_000);
    expect((await split(h, 'P1', [merchantReceiver(100)])).status).toBe(200);
  });

  it('When request fields break the schema, then PARAM_ERROR and nothing is accepted', async () => {
    const h = await setup({ receiverLimit: 2 });
    h.addTx();
    await addMerchant(h);
    await addMerchant(h, '1900000202', '乙有限公司');
    await addMerchant(h, '1900000203', '丙有限公司');
    await addPerson(h, 'o-person-1');
    const cases: Array<[string, unknown[], Record<string, unknown>]> = [
      ['zero amount', [merchantReceiver(0)], {}],
      ['fractional amount', [{ ...merchantReceiver(1), amount: 1.5 }], {}],
      ['string amount', [{ ...merchantReceiver(1), amount: '1' }], {}],
      ['description too long', [{ ...merchantReceiver(1), description: 'x'.repeat(81) }], {}],
      ['no receivers', [], {}],
      ['bad out_order_no', [merchantReceiver(1)], { out_order_no: 'P#1' }],
      ['long out_order_no', [merchantReceiver(1)], { out_order_no: 'P'.repeat(65) }],
      ['unfreeze_unsplit missing', [merchantReceiver(1)], { unfreeze_unsplit: undefined }],
      ['unknown field', [merchantReceiver(1)], { sub_mchid: '1' }],
      ['openid without appid', [{ type: 'PERSONAL_OPENID', account: 'o-person-1', amount: 1, description: 'd' }], {}],
      ['same receiver twice', [merchantReceiver(1), merchantReceiver(2)], {}],
      [
        'more than receiverLimit',
        [merchantReceiver(1), merchantReceiver(1, '1900000202', '乙有限公司'), merchantReceiver(1, '1900000203', '丙有限公司')],
        {},
      ],
    ];
    for (const [label, receivers, extra] of cases) {
      const res = await split(h, 'P-BAD', receivers, extra);
      expect([label, res.status, res.body.code]).toEqual([label, 400, 'PARAM_ERROR']);
    }
    expect(profitSharingControl(h.ctx).orders()).toHaveLength(0);
    expect(profitSharingControl(h.ctx).requests()).toHaveLength(cases.length);
  });

  it('When a name is plain, the serial is missing/wrong, or the name does not match the registration, then refused', async () => {
    const h = await setup();
    h.addTx();
    await addMerchant(h);
    await addPerson(h, 'o-person-1', '张三');
    const plain = await split(h, 'P1', [{ ...merchantReceiver(1), name: '甲有限公司' }]);
    expect(plain.body.message).toBe('请确认待处理的消息是否为加密后的密文');
    const noSerial = await h.api
      .post('/v3/profitsharing/orders')
      .send({ transaction_id: TX, out_order_no: 'P1', receivers: [merchantReceiver(1)], unfreeze_unsplit: false });
    expect(noSerial.body.message).toBe('HTTP header缺少微信支付平台证书序列号(Wechatpay-Serial)');
    const wrong = await h.api
      .post('/v3/profitsharing/orders')
      .set('Wechatpay-Serial', 'PUB_KEY_ID_X')
      .send({ transaction_id: TX, out_order_no: 'P1', receivers: [merchantReceiver(1)], unfreeze_unsplit: false });
    expect(wrong.body.message).toBe('平台证书序列号Wechatpay-Serial错误');
    const otherName = await split(h, 'P1', [merchantReceiver(1, '1900000201', '丁有限公司')]);
    expect(otherName.status).toBe(400);
    const person = await split(
      h,
      'P1',
      [{ type: 'PERSONAL_OPENID', account: 'o-person-1', name: enc('李四'), amount: 1, description: 'd' }],
      { appid: APPID },
    );
    expect(person.body).toMatchObject({ code: 'PARAM_ERROR', message: '微信用户姓名与实名不一致' });
    const unregistered = await split(h, 'P1', [merchantReceiver(1, '1900000299', '戊有限公司')]);
    expect(unregistered.body.message).toContain('分账接收方关系不存在');
    expect(profitSharingControl(h.ctx).orders()).toHaveLength(0);
  });

  it('When the cumulative split would exceed floor(total × maxRatio), then 超出最大分账比例; CLOSED ones do not count', async () => {
    const h = await setup({ maxRatio: 0.3 });
    h.addTx({ amountTotal: 10_001, payerTotal: 10_001 }); // floor(3000.3) = 3000
    await addMerchant(h);
    await addMerchant(h, '1900000202', '乙有限公司');
    const over = await split(h, 'P0', [merchantReceiver(3001)]);
    expect(over.status).toBe(400);
    expect(over.body).toMatchObject({ code: 'INVALID_REQUEST', message: '分账金额超出最大分账比例' });
    profitSharingControl(h.ctx).failReceiver('1900000202', 'RECEIVER_HIGH_RISK');
    expect((await split(h, 'P1', [merchantReceiver(2000)])).status).toBe(200);
    expect((await split(h, 'P2', [merchantReceiver(1000, '1900000202', '乙有限公司')])).status).toBe(200);
    // P2 fails on settlement, so its 1000 is free again.
    const p2 = await query(h, 'P2');
    expect(p2.body.receivers[0]).toMatchObject({ result: 'CLOSED', fail_reason: 'RECEIVER_HIGH_RISK' });
    expect((await split(h, 'P3', [merchantReceiver(1001)])).body.message).toBe('分账金额超出最大分账比例');
    expect((await split(h, 'P4', [merchantReceiver(1000)])).status).toBe(200);
    expect((await amounts(h)).body.unsplit_amount).toBe(10_001 - 3000);
  });

  it('When the split exceeds the unsplit amount, then 403 NOT_ENOUGH', async () => {
    const h = await setup({ maxRatio: 1 });
    h.addTx({ amountTotal: 1000 });
    await addMerchant(h);
    expect((await split(h, 'P1', [merchantReceiver(999)])).status).toBe(200);
    const res = await split(h, 'P2', [merchantReceiver(2)]);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'NOT_ENOUGH', message: '分账金额不足' });
  });

  it('When the split window has passed, then the remainder is unfrozen and splitting answers NOT_ENOUGH', async () => {
    const h = await setup({ windowDays: 30 });
    h.addTx();
    await addMerchant(h);
    h.advance(30 * 86_400_000);
    expect((await amounts(h)).body.unsplit_amount).toBe(0);
    expect((await split(h, 'P1', [merchantReceiver(1)])).body.code).toBe('NOT_ENOUGH');
  });

  it('When maxRequestsPerOrder splits were accepted, then the next is refused (rejected ones do not count)', async () => {
    const h = await setup({ maxRequestsPerOrder: 2 });
    h.addTx();
    await addMerchant(h);
    expect((await split(h, 'P1', [merchantReceiver(1)])).status).toBe(200);
    expect((await split(h, 'P-REJECTED', [merchantReceiver(5_000)])).status).toBe(400); // over the ratio
    expect((await split(h, 'P2', [merchantReceiver(1)])).status).toBe(200);
    const third = await split(h, 'P3', [merchantReceiver(1)]);
    expect(third.body).toMatchObject({ code: 'INVALID_REQUEST', message: '分账次数过多' });
  });

  it('When an out_order_no is reused with the same request, then the same order in its current state comes back', async () => {
    const h = await setup({ maxRequestsPerOrder: 1 });
    h.addTx();
    await addMerchant(h);
    const receiver = merchantReceiver(100);
    const first = await split(h, 'P1', [receiver]);
    // The same bytes (ciphertext included: a re-encrypted name is refused, see issue 7 below).
    const again = await split(h, 'P1', [receiver]);
    expect(again.status).toBe(200);
    expect(again.body.order_id).toBe(first.body.order_id);
    expect(again.body.state).toBe('FINISHED');
    expect(again.body.receivers[0].detail_id).toBe(first.body.receivers[0].detail_id);
    const differs = await split(h, 'P1', [merchantReceiver(101)]);
    expect(differs.status).toBe(400);
    expect(differs.body).toMatchObject({ code: 'PARAM_ERROR', message: '分账接收方与原请求不一致' });
    expect((await amounts(h)).body.unsplit_amount).toBe(9_900);
  });

  it('When unfreeze_unsplit=true, then no further split is accepted and the remainder is unfrozen once finished', async () => {
    const h = await setup({ resultDelayMs: 1_000 });
    h.addTx();
    await addMerchant(h);
    expect((await split(h, 'P1', [merchantReceiver(100)], { unfreeze_unsplit: true })).status).toBe(200);
    expect((await amounts(h)).body.unsplit_amount).toBe(9_900);
    const more = await split(h, 'P2', [merchantReceiver(100)]);
    expect(more.body).toMatchObject({ code: 'INVALID_REQUEST', message: '订单已完结分账，不支持分账' });
    h.advance(1_000);
    expect((await query(h, 'P1')).body.state).toBe('FINISHED');
    expect((await amounts(h)).body.unsplit_amount).toBe(0);
  });

  it('When a receiver is deleted while its split is pending, then it ends CLOSED with NO_RELATION', async () => {
    const h = await setup({ resultDelayMs: 1_000 });
    h.addTx();
    await addMerchant(h);
    await split(h, 'P1', [merchantReceiver(100)]);
    await h.api.post('/v3/profitsharing/receivers/delete').send({ appid: APPID, type: 'MERCHANT_ID', account: '1900000201' });
    h.advance(1_000);
    expect((await query(h, 'P1')).body.receivers[0]).toMatchObject({ result: 'CLOSED', fail_reason: 'NO_RELATION' });
  });
});

describe('GET /orders/{out_order_no} and /transactions/{id}/amounts', () => {
  it('When the order is unknown or asked with another transaction_id, then 404 RESOURCE_NOT_EXISTS', async () => {
    const h = await setup();
    h.addTx();
    await addMerchant(h);
    await split(h, 'P1', [merchantReceiver(100)]);
    expect((await query(h, 'NOPE')).status).toBe(404);
    const other = await query(h, 'P1', '4200000000202601100000000777');
    expect(other.status).toBe(404);
    expect(other.body).toEqual({ code: 'RESOURCE_NOT_EXISTS', message: '记录不存在' });
    const noTx = await h.api.get('/v3/profitsharing/orders/P1');
    expect([noTx.status, noTx.body.code]).toEqual([400, 'PARAM_ERROR']);
    expect((await amounts(h, '4200000000202601100000000777')).status).toBe(404);
  });
});

describe('POST /orders/unfreeze', () => {
  it('When the remainder is unfrozen, then it is paid to the merchant and no split is possible afterwards', async () => {
    const h = await setup();
    h.addTx();
    await addMerchant(h);
    await split(h, 'P1', [merchantReceiver(1000)]);
    const res = await h.api.post('/v3/profitsharing/orders/unfreeze').send({ transaction_id: TX, out_order_no: 'U1', description: '解冻全部剩余资金' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      transaction_id: TX,
      out_order_no: 'U1',
      state: 'PROCESSING',
      receivers: [{ type: 'MERCHANT_ID', account: MCHID, amount: 9_000, description: '解冻给分账方', result: 'PENDING' }],
    });
    expect((await amounts(h)).body.unsplit_amount).toBe(0);
    expect((await query(h, 'U1')).body).toMatchObject({ state: 'FINISHED', receivers: [{ result: 'SUCCESS' }] });
    expect((await split(h, 'P2', [merchantReceiver(1)])).body.message).toBe('订单已完结分账，不支持分账');
    const twice = await h.api.post('/v3/profitsharing/orders/unfreeze').send({ transaction_id: TX, out_order_no: 'U2', description: 'again' });
    expect([twice.status, twice.body.code]).toEqual([400, 'INVALID_REQUEST']);
    const replay = await h.api.post('/v3/profitsharing/orders/unfreeze').send({ transaction_id: TX, out_order_no: 'U1', description: '解冻全部剩余资金' });
    expect(replay.body.order_id).toBe(res.body.order_id);
  });

  it("When unfreeze reuses an earlier split's out_order_no, then it answers success but unfreezes nothing (the trap)", async () => {
    const h = await setup();
    h.addTx();
    await addMerchant(h);
    const p1 = await split(h, 'P1', [merchantReceiver(1000)]);
    const res = await h.api.post('/v3/profitsharing/orders/unfreeze').send({ transaction_id: TX, out_order_no: 'P1', description: '解冻' });
    expect(res.status).toBe(200);
    expect(res.body.order_id).toBe(p1.body.order_id);
    expect(res.body.receivers[0].account).toBe('1900000201');
    expect((await amounts(h)).body.unsplit_amount).toBe(9_000);
    expect((await split(h, 'P2', [merchantReceiver(1)])).status).toBe(200);
  });

  it('When unfreezing a never-split order right after payment, then 订单处理中; later it unfreezes everything', async () => {
    const h = await setup();
    h.addTx({ paidAtMs: PAID_AT + 100_000 });
    const early = await h.api.post('/v3/profitsharing/orders/unfreeze').send({ transaction_id: TX, out_order_no: 'U1', description: 'd' });
    expect(early.body.message).toBe('订单处理中，请稍后重试');
    h.advance(60_000);
    const res = await h.api.post('/v3/profitsharing/orders/unfreeze').send({ transaction_id: TX, out_order_no: 'U1', description: 'd' });
    expect(res.body.receivers[0].amount).toBe(10_000);
  });
});

describe('return-orders', () => {
  it('When a merchant receiver returns part of its split, then SUCCESS synchronously and queryable; never more than it got', async () => {
    const h = await setup();
    h.addTx();
    await addMerchant(h);
    await addPerson(h, 'o-person-1');
    await split(
      h,
      'P1',
      [merchantReceiver(1000), { type: 'PERSONAL_OPENID', account: 'o-person-1', amount: 10, description: 'd' }],
      { appid: APPID },
    );
    await query(h, 'P1');
    const ret = (no: string, amount: number, mchid = '1900000201') =>
      h.api.post('/v3/profitsharing/return-orders').send({ out_order_no: 'P1', out_return_no: no, return_mchid: mchid, amount, description: '退款回退' });
    const r1 = await ret('R1', 600);
    expect(r1.status).toBe(200);
    expect(r1.body).toMatchObject({ out_order_no: 'P1', out_return_no: 'R1', return_mchid: '1900000201', amount: 600, result: 'SUCCESS' });
    expect((await ret('R1', 600)).body.return_id).toBe(r1.body.return_id);
    expect((await ret('R1', 601)).status).toBe(400);
    expect((await ret('R2', 401)).body).toMatchObject({ code: 'INVALID_REQUEST', message: '剩余可回退的金额不足' });
    expect((await ret('R3', 1, 'o-person-1')).status).toBe(400);
    const q = await h.api.get('/v3/profitsharing/return-orders/R1').query({ out_order_no: 'P1' });
    expect(q.body).toMatchObject({ out_return_no: 'R1', result: 'SUCCESS' });
    expect((await h.api.get('/v3/profitsharing/return-orders/R1').query({ out_order_no: 'P9' })).status).toBe(404);
    profitSharingControl(h.ctx).failReturns('1900000201', 'BALANCE_NOT_ENOUGH');
    expect((await ret('R4', 400)).body).toMatchObject({ result: 'FAILED', fail_reason: 'BALANCE_NOT_ENOUGH' });
    // A return does not give the order its splittable money back.
    expect((await amounts(h)).body.unsplit_amount).toBe(10_000 - 1010);
  });
});

describe('rate limit', () => {
  it('When more than ratePerSecond split requests arrive within one second, then 429 FREQUENCY_LIMITED; all are recorded', async () => {
    const h = await setup({ ratePerSecond: 2 });
    h.addTx();
    await addMerchant(h);
    expect((await split(h, 'P1', [merchantReceiver(1)])).status).toBe(200);
    h.advance(500);
    expect((await h.api.post('/v3/profitsharing/orders/unfreeze').send({ transaction_id: 'X', out_order_no: 'U1', description: 'd' })).status).toBe(400);
    h.advance(499);
    const limited = await split(h, 'P2', [merchantReceiver(1)]);
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('FREQUENCY_LIMITED');
    h.advance(1); // P1 is now exactly 1000 ms old: out of the window
    expect((await split(h, 'P2', [merchantReceiver(1)])).status).toBe(200);
    const listed = await h.api.get('/_sim/profitsharing/requests');
    expect(listed.body.requests.map((r: { outOrderNo: string; status: number; limited: boolean; kind: string }) => [r.kind, r.outOrderNo, r.status, r.limited])).toEqual([
      ['split', 'P1', 200, false],
      ['unfreeze', 'U1', 400, false],
      ['split', 'P2', 429, true],
      ['split', 'P2', 200, false],
    ]);
  });

  it('When a per-order rate is set, then a second split of the same transaction within a second is limited', async () => {
    const h = await setup();
    h.addTx();
    await addMerchant(h);
    profitSharingControl(h.ctx).setOptions({ perOrderRatePerSecond: 1 });
    expect((await split(h, 'P1', [merchantReceiver(1)])).status).toBe(200);
    expect((await split(h, 'P2', [merchantReceiver(1)])).body).toMatchObject({ code: 'RATELIMIT_EXCEED', message: '对同笔订单分账频率过高' });
  });
});

describe('controls', () => {
  it('When a receiver is closed after the fact, then queries show CLOSED and its money is splittable again', async () => {
    const h = await setup();
    h.addTx();
    await addMerchant(h);
    await split(h, 'P1', [merchantReceiver(1000)]);
    expect((await query(h, 'P1')).body.receivers[0].result).toBe('SUCCESS');
    const res = await h.api.post('/_sim/profitsharing/close-receiver').send({ out_order_no: 'P1', account: '1900000201', fail_reason: 'ACCOUNT_ABNORMAL' });
    expect(res.status).toBe(200);
    expect((await query(h, 'P1')).body.receivers[0]).toMatchObject({ result: 'CLOSED', fail_reason: 'ACCOUNT_ABNORMAL' });
    expect((await amounts(h)).body.unsplit_amount).toBe(10_000);
    expect((await h.api.post('/_sim/profitsharing/close-receiver').send({ out_order_no: 'NOPE', account: '1', fail_reason: 'NO_AUTH' })).status).toBe(404);
  });

  it('When an order is forgotten, then WeChat answers 404 for it and its money is back', async () => {
    const h = await setup();
    h.addTx();
    await addMerchant(h);
    await split(h, 'P1', [merchantReceiver(1000)]);
    expect((await h.api.post('/_sim/profitsharing/forget-order').send({ out_order_no: 'P1' })).body).toEqual({ forgotten: true });
    expect((await query(h, 'P1')).status).toBe(404);
    expect((await amounts(h)).body.unsplit_amount).toBe(10_000);
    // Forgetting an unfreeze forgets its effect too: the money is frozen and splittable again.
    await h.api.post('/v3/profitsharing/orders/unfreeze').send({ transaction_id: TX, out_order_no: 'U1', description: 'd' });
    expect((await amounts(h)).body.unsplit_amount).toBe(0);
    expect(profitSharingControl(h.ctx).forgetOrder('U1')).toBe(true);
    expect((await amounts(h)).body.unsplit_amount).toBe(10_000);
    expect((await split(h, 'P2', [merchantReceiver(1)])).status).toBe(200);
  });

  it('When receiver failures and options are set over HTTP, then future splits follow them; reset clears the state', async () => {
    const h = await setup();
    h.addTx();
    await addMerchant(h);
    await h.api.post('/_sim/profitsharing/receiver-failures').send({ account: '1900000201', fail_reason: 'RECEIVER_RECEIPT_LIMIT' });
    const opts = await h.api.post('/_sim/profitsharing/options').send({ resultDelayMs: 2_000, maxRatio: 0.5 });
    expect(opts.body).toMatchObject({ resultDelayMs: 2_000, maxRatio: 0.5 });
    expect((await h.api.post('/_sim/profitsharing/options').send({ maxRatio: 2 })).status).toBe(400);
    expect((await split(h, 'P1', [merchantReceiver(4_000)])).status).toBe(200);
    expect((await query(h, 'P1')).body.receivers[0].result).toBe('PENDING');
    h.advance(2_000);
    expect((await query(h, 'P1')).body.receivers[0]).toMatchObject({ result: 'CLOSED', fail_reason: 'RECEIVER_RECEIPT_LIMIT' });
    await h.api.post('/_sim/profitsharing/receiver-failures').send({ account: '1900000201', fail_reason: null });
    await split(h, 'P2', [merchantReceiver(1)]);
    h.advance(2_000);
    expect((await query(h, 'P2')).body.receivers[0].result).toBe('SUCCESS');
    const listed = await h.api.get('/_sim/profitsharing/orders');
    expect(listed.body.orders.map((o: { out_order_no: string }) => o.out_order_no)).toEqual(['P1', 'P2']);
    await h.api.post('/_sim/profitsharing/reset');
    expect(h.ctx.opts.profitSharing).toMatchObject({ resultDelayMs: 0, maxRatio: 0.3 });
    expect((await query(h, 'P1')).status).toBe(404);
    expect(profitSharingControl(h.ctx).receivers()).toEqual([]);
    expect(profitSharingControl(h.ctx).requests()).toEqual([]);
  });

  it('When two simulators run in one process, then their profit-sharing state is separate', async () => {
    const a = await setup();
    const b = await setup();
    await addMerchant(a);
    expect(profitSharingControl(a.ctx).receivers()).toHaveLength(1);
    expect(profitSharingControl(b.ctx).receivers()).toHaveLength(0);
  });
});

describe('issue 7: what WeChat really does (simulator)', () => {
  it('When a merchant-funded coupon and the fee apply, then /amounts is amount − fee − coupon and one fen more is 403 NOT_ENOUGH', async () => {
    // 可分金额 = 订单金额 − 手续费; 免充值券 lower it further (issue 7 §3; SKILLS 分账常见问题.md).
    const h = await setup({ feeRate: 0.006, maxRatio: 1 });
    h.addTx({ amountTotal: 10_000, payerTotal: 9_000 }); // 1000 fen coupon paid by the merchant
    const fee = Math.round(9_000 * 0.006); // 54
    expect((await amounts(h)).body).toEqual({ transaction_id: TX, unsplit_amount: 10_000 - fee - 1_000 });
    await addMerchant(h);
    const over = await split(h, 'P1', [merchantReceiver(10_000 - fee - 1_000 + 1)]);
    expect([over.status, over.body.code]).toEqual([403, 'NOT_ENOUGH']);
    expect((await split(h, 'P2', [merchantReceiver(10_000 - fee - 1_000)])).status).toBe(200);
  });

  it('When the ratio is 30%, then it applies to amount − fee: exactly 30% of the amount is refused', async () => {
    const h = await setup({ feeRate: 0.006 });
    h.addTx({ amountTotal: 10_000 });
    await addMerchant(h);
    const res = await split(h, 'P1', [merchantReceiver(3_000)]);
    expect([res.status, res.body.message]).toEqual([400, '分账金额超出最大分账比例']);
    expect((await split(h, 'P2', [merchantReceiver(Math.floor((10_000 - 60) * 0.3))])).status).toBe(200);
  });

  it('When a MERCHANT_ID receiver has no name on /orders, then it is accepted (name is optional in wechatpay-go models)', async () => {
    const h = await setup();
    h.addTx();
    await addMerchant(h);
    const res = await h.api
      .post('/v3/profitsharing/orders')
      .send({ appid: APPID, transaction_id: TX, out_order_no: 'NONAME1', receivers: [{ type: 'MERCHANT_ID', account: '1900000201', amount: 10, description: '佣金' }], unfreeze_unsplit: false });
    expect(res.status).toBe(200);
  });

  it('When the same out_order_no is re-sent with the name encrypted again, then it is refused 分账接收方与原请求不一致; the identical bytes are accepted', async () => {
    const h = await setup();
    h.addTx();
    await addMerchant(h);
    const receiver = merchantReceiver(100);
    expect((await split(h, 'SAME1', [receiver])).status).toBe(200);
    expect((await split(h, 'SAME1', [receiver])).status).toBe(200);
    const reEncrypted = await split(h, 'SAME1', [merchantReceiver(100)]);
    expect([reEncrypted.status, reEncrypted.body.message]).toEqual([400, '分账接收方与原请求不一致']);
  });

  it('When two splits of one transaction come within a second (default 1/s), then the second is 429 RATELIMIT_EXCEED 对同笔订单分账频率过高, and after a second it passes', async () => {
    const h = await setup({ perOrderRatePerSecond: 1 });
    h.addTx();
    await addMerchant(h);
    expect((await split(h, 'R1', [merchantReceiver(1)])).status).toBe(200);
    const limited = await split(h, 'R2', [merchantReceiver(1)]);
    expect([limited.status, limited.body.code, limited.body.message]).toEqual([429, 'RATELIMIT_EXCEED', '对同笔订单分账频率过高']);
    h.advance(1000);
    expect((await split(h, 'R2', [merchantReceiver(1)])).status).toBe(200);
  });

  it('When a return is requested with a result delay, then it is PROCESSING first and SUCCESS once due', async () => {
    const h = await setup({ resultDelayMs: 5_000 });
    h.addTx();
    await addMerchant(h);
    await split(h, 'RET1', [merchantReceiver(100)]);
    h.advance(5_000);
    await query(h, 'RET1');
    const ret = await h.api
      .post('/v3/profitsharing/return-orders')
      .send({ out_order_no: 'RET1', out_return_no: 'R-1', return_mchid: '1900000201', amount: 50, description: '退回' });
    expect(ret.body).toMatchObject({ result: 'PROCESSING' });
    expect(ret.body.finish_time).toBeUndefined();
    h.advance(5_000);
    const q = await h.api.get('/v3/profitsharing/return-orders/R-1').query({ out_order_no: 'RET1' });
    expect(q.body).toMatchObject({ result: 'SUCCESS' });
  });
});

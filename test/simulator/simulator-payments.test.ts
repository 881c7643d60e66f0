import request from 'supertest';
import { createSimulator } from '../../src/simulator/app';
import { openidFor } from '../../src/simulator/payments/transactions';
import { api, APPID, h5Order, jsapiOrder, MCHID, nativeOrder, testKeys, verifyWechatpaySignature } from './sim-helpers';

const keys = testKeys();
const mk = (o: Partial<Parameters<typeof createSimulator>[0]> = {}) =>
  createSimulator({ keys, notifyUrlPolicy: 'any-no-query', ...o });
const JSAPI = '/v3/pay/transactions/jsapi';
const H5 = '/v3/pay/transactions/h5';
const NATIVE = '/v3/pay/transactions/native';
const query = (no: string) => `/v3/pay/transactions/out-trade-no/${no}?mchid=${MCHID}`;

describe('simulator ordering rules', () => {
  const { app } = mk();
  const bad = async (path: string, body: unknown, code = 'PARAM_ERROR', status = 400) => {
    const r = await api(app, 'POST', path, body);
    expect({ status: r.status, code: r.json?.code }).toEqual({ status, code });
    expect(verifyWechatpaySignature(r.headers, r.text, keys.platformPublicKey)).toBe(true);
    return r;
  };

  test.each([
    ['description empty', { description: '' }],
    ['description 128 chars', { description: '商'.repeat(128) }],
    ['out_trade_no too short', { out_trade_no: 'A1234' }],
    ['out_trade_no too long', { out_trade_no: 'A'.repeat(33) }],
    ['out_trade_no bad char', { out_trade_no: 'ORDER#0001' }],
    ['time_expire without offset', { time_expire: '2099-06-08T10:34:56' }],
    ['time_expire with space', { time_expire: '2099-06-08 10:34:56+08:00' }],
    ['time_expire epoch', { time_expire: 4102444800 }],
    ['amount.total 0', { amount: { total: 0, currency: 'CNY' } }],
    ['amount.total fractional', { amount: { total: 1.5, currency: 'CNY' } }],
    ['amount.total as string', { amount: { total: '100', currency: 'CNY' } }],
    ['currency USD', { amount: { total: 100, currency: 'USD' } }],
    ['missing amount', { amount: undefined }],
    ['profit_sharing "Y"', { settle_info: { profit_sharing: 'Y' } }],
    ['attach 129 chars', { attach: 'a'.repeat(129) }],
    ['missing payer', { payer: undefined }],
    ['payer.openid empty', { payer: { openid: '' } }],
  ])('When JSAPI %s, then PARAM_ERROR', async (_name, patch) => {
    await bad(JSAPI, jsapiOrder('RULE_0001', patch));
  });

  test('When notify_url carries a query or is not http(s), then PARAM_ERROR', async () => {
    await bad(JSAPI, jsapiOrder('RULE_0002', { notify_url: 'http://127.0.0.1:9/n?x=1' }));
    await bad(JSAPI, jsapiOrder('RULE_0002', { notify_url: 'ftp://example.com/n' }));
  });

  test("When the policy is 'https-public', then http, localhost and private IPs are refused", async () => {
    const strict = mk({ notifyUrlPolicy: 'https-public' }).app;
    for (const url of ['http://pay.example.com/n', 'https://localhost/n', 'https://192.168.1.2/n', 'https://10.0.0.1/n', 'https://pay.example.com/n?a=1']) {
      const r = await api(strict, 'POST', JSAPI, jsapiOrder('RULE_0003', { notify_url: url }));
      expect([url, r.json.code]).toEqual([url, 'PARAM_ERROR']);
    }
    const ok = await api(strict, 'POST', JSAPI, jsapiOrder('RULE_0003', { notify_url: 'https://pay.example.com/notify/wechatpay' }));
    expect(ok.status).toBe(200);
  });

  test('When appid is not bound to the mchid, then 400 APPID_MCHID_NOT_MATCH; another body mchid is MCH_NOT_EXISTS', async () => {
    await bad(JSAPI, jsapiOrder('RULE_0004', { appid: 'wx0000000000000000' }), 'APPID_MCHID_NOT_MATCH');
    await bad(JSAPI, jsapiOrder('RULE_0004', { mchid: '1900000999' }), 'MCH_NOT_EXISTS');
  });

  test('When H5 lacks payer_client_ip, h5_info.type, or has a bad IP/type, then PARAM_ERROR', async () => {
    await bad(H5, h5Order('RULE_0005', { scene_info: undefined }));
    await bad(H5, h5Order('RULE_0005', { scene_info: { h5_info: { type: 'Wap' } } }));
    await bad(H5, h5Order('RULE_0005', { scene_info: { payer_client_ip: '1.2.3', h5_info: { type: 'Wap' } } }));
    await bad(H5, h5Order('RULE_0005', { scene_info: { payer_client_ip: '1.2.3.4' } }));
    await bad(H5, h5Order('RULE_0005', { scene_info: { payer_client_ip: '1.2.3.4', h5_info: { type: 'wap' } } }));
  });

  test('When the fields are valid, then each product answers its own shape', async () => {
    const j = await api(app, 'POST', JSAPI, jsapiOrder('SHAPE_0001', { time_expire: '2099-06-08T10:34:56+08:00', settle_info: { profit_sharing: true } }));
    expect(j.status).toBe(200);
    expect(j.json).toEqual({ prepay_id: expect.stringMatching(/^wx\d{14}[0-9a-f]{20}$/) });
    const h = await api(app, 'POST', H5, h5Order('SHAPE_0002', { scene_info: { payer_client_ip: '2001:db8::1', h5_info: { type: 'iOS', app_name: 'x' } } }));
    expect(h.json.h5_url).toMatch(/\/cgi-bin\/mmpayweb-bin\/checkmweb\?prepay_id=wx\w+&package=\d+$/);
    const n = await api(app, 'POST', NATIVE, nativeOrder('SHAPE_0003'));
    expect(n.json.code_url).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=[A-Za-z0-9]+$/);
  });
});

describe('simulator out_trade_no reuse and order lifecycle', () => {
  test('When the same order is placed twice, then the same prepay_id/code_url; H5 gets a fresh h5_url', async () => {
    const { app } = mk();
    const a = await api(app, 'POST', JSAPI, jsapiOrder('SAME_0001'));
    // Key order differs, values equal: still the same parameters.
    const reordered = Object.fromEntries(Object.entries(jsapiOrder('SAME_0001')).reverse());
    const b = await api(app, 'POST', JSAPI, reordered);
    expect(b.json.prepay_id).toBe(a.json.prepay_id);
    const n1 = await api(app, 'POST', NATIVE, nativeOrder('SAME_0002'));
    const n2 = await api(app, 'POST', NATIVE, nativeOrder('SAME_0002'));
    expect(n2.json.code_url).toBe(n1.json.code_url);
    const h1 = await api(app, 'POST', H5, h5Order('SAME_0003'));
    const h2 = await api(app, 'POST', H5, h5Order('SAME_0003'));
    expect(h2.json.h5_url).not.toBe(h1.json.h5_url);
    expect(new URL(h2.json.h5_url).searchParams.get('prepay_id')).toBe(new URL(h1.json.h5_url).searchParams.get('prepay_id'));
  });

  test('When the same out_trade_no comes with other parameters or another trade type, then 403 OUT_TRADE_NO_USED', async () => {
    const { app } = mk();
    await api(app, 'POST', JSAPI, jsapiOrder('DIFF_0001'));
    const r1 = await api(app, 'POST', JSAPI, jsapiOrder('DIFF_0001', { amount: { total: 101, currency: 'CNY' } }));
    expect([r1.status, r1.json.code]).toEqual([403, 'OUT_TRADE_NO_USED']);
    const r2 = await api(app, 'POST', NATIVE, nativeOrder('DIFF_0001'));
    expect([r2.status, r2.json.code]).toEqual([403, 'OUT_TRADE_NO_USED']);
  });

  test('When the order was paid, then re-ordering and closing answer 400 ORDER_PAID (v3 name, as peers expect)', async () => {
    const { app, control } = mk();
    await api(app, 'POST', JSAPI, jsapiOrder('PAID_0001'));
    expect(control.pay('PAID_0001').ok).toBe(true);
    const r = await api(app, 'POST', JSAPI, jsapiOrder('PAID_0001'));
    expect([r.status, r.json.code]).toEqual([400, 'ORDER_PAID']);
    const c = await api(app, 'POST', '/v3/pay/transactions/out-trade-no/PAID_0001/close', { mchid: MCHID });
    expect([c.status, c.json.code]).toEqual([400, 'ORDER_PAID']);
  });

  test('When the order was closed, then close again is 204 and re-ordering is 400 ORDER_CLOSED, paying is refused', async () => {
    const { app, control } = mk();
    await api(app, 'POST', JSAPI, jsapiOrder('CLOSE_0001'));
    const c1 = await api(app, 'POST', '/v3/pay/transactions/out-trade-no/CLOSE_0001/close', { mchid: MCHID });
    expect(c1.status).toBe(204);
    expect(c1.text).toBe('');
    expect(verifyWechatpaySignature(c1.headers, '', keys.platformPublicKey)).toBe(true);
    expect((await api(app, 'POST', '/v3/pay/transactions/out-trade-no/CLOSE_0001/close', { mchid: MCHID })).status).toBe(204);
    const r = await api(app, 'POST', JSAPI, jsapiOrder('CLOSE_0001'));
    expect([r.status, r.json.code]).toEqual([400, 'ORDER_CLOSED']);
    expect(control.pay('CLOSE_0001').ok).toBe(false);
    expect((await api(app, 'GET', query('CLOSE_0001'))).json.trade_state).toBe('CLOSED');
  });

  test('When close lacks mchid or the order is unknown, then PARAM_ERROR / 404 ORDER_NOT_EXIST', async () => {
    const { app } = mk();
    expect((await api(app, 'POST', '/v3/pay/transactions/out-trade-no/NONE_0001/close', {})).json.code).toBe('PARAM_ERROR');
    const r = await api(app, 'POST', '/v3/pay/transactions/out-trade-no/NONE_0001/close', { mchid: MCHID });
    expect([r.status, r.json.code]).toEqual([404, 'ORDER_NOT_EXIST']);
  });

  test('When an unpaid order is queried, then NOTPAY without transaction_id; a missing mchid is PARAM_ERROR', async () => {
    const { app } = mk();
    await api(app, 'POST', JSAPI, jsapiOrder('QRY_0001', { attach: 'a=1' }));
    const r = await api(app, 'GET', query('QRY_0001'));
    expect(r.json).toMatchObject({ appid: APPID, mchid: MCHID, out_trade_no: 'QRY_0001', trade_state: 'NOTPAY', attach: 'a=1' });
    expect(r.json.transaction_id).toBeUndefined();
    expect(r.json.success_time).toBeUndefined();
    expect((await api(app, 'GET', query('QRY_0001').replace('mchid=', 'other='))).json.code).toBe('PARAM_ERROR');
    const other = await api(app, 'GET', query('QRY_0001').replace(MCHID, '1900000999'));
    expect([other.status, other.json.code]).toEqual([404, 'ORDER_NOT_EXIST']);
  });

  test('When a paid order is queried, then the full transaction shape, by out_trade_no and by transaction_id', async () => {
    const { app, control } = mk();
    await api(app, 'POST', H5, h5Order('QRY_0002', { amount: { total: 500, currency: 'CNY' } }));
    control.pay('QRY_0002', { payerTotal: 450 });
    const r = await api(app, 'GET', query('QRY_0002'));
    expect(r.json).toMatchObject({
      trade_state: 'SUCCESS',
      trade_state_desc: '支付成功',
      trade_type: 'MWEB',
      bank_type: expect.any(String),
      transaction_id: expect.stringMatching(/^\d{28}$/),
      success_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/),
      payer: { openid: expect.stringMatching(/^o[\w-]{27}$/) },
      amount: { total: 500, payer_total: 450, currency: 'CNY', payer_currency: 'CNY' },
    });
    expect(r.json.promotion_detail[0].amount).toBe(50);
    const byId = await api(app, 'GET', `/v3/pay/transactions/id/${r.json.transaction_id}?mchid=${MCHID}`);
    expect(byId.json).toEqual(r.json);
  });

  test('When an openid issued for another appid is used, then PARAM_ERROR appid和openid不匹配', async () => {
    const sim = mk({ extraApps: { wxminiprogram000001: 'mini-secret' } });
    const foreign = openidFor(sim.ctx, 'wxminiprogram000001', 'user-1');
    const r = await api(sim.app, 'POST', JSAPI, jsapiOrder('OPENID_0001', { payer: { openid: foreign } }));
    expect([r.status, r.json.code, r.json.message]).toEqual([400, 'PARAM_ERROR', 'appid和openid不匹配']);
    const own = openidFor(sim.ctx, APPID, 'user-1');
    expect((await api(sim.app, 'POST', JSAPI, jsapiOrder('OPENID_0001', { payer: { openid: own } }))).status).toBe(200);
  });

  test('When the control endpoint pays, then the order is SUCCESS with payer_total', async () => {
    const { app, control } = mk();
    await api(app, 'POST', NATIVE, nativeOrder('CTRL_0001'));
    const res = await request(app).post('/_sim/transactions/CTRL_0001/pay').send({ payer_total: 80 });
    expect(res.status).toBe(200);
    expect(res.body.amount.payer_total).toBe(80);
    expect(control.transaction('CTRL_0001')!.state).toBe('SUCCESS');
    expect((await request(app).post('/_sim/transactions/CTRL_0001/pay').send({})).status).toBe(409);
  });
});

describe('issue 7: ordering rules as WeChat applies them', () => {
  test('When description is 43 Chinese characters (129 bytes), then PARAM_ERROR names the byte count; 42 (126 bytes) is accepted', async () => {
    // WeChat counts bytes: "字节数 144，大于最大值 127" (JeffreySu/WeiXinMPSDK#3217).
    const { app } = mk();
    const r = await api(app, 'POST', JSAPI, jsapiOrder('BYTES_0001', { description: '商'.repeat(43) }));
    expect([r.status, r.json.code]).toEqual([400, 'PARAM_ERROR']);
    expect(r.json.message).toContain('字节数 129，大于最大值 127');
    expect((await api(app, 'POST', JSAPI, jsapiOrder('BYTES_0002', { description: '商'.repeat(42) }))).status).toBe(200);
    const a = await api(app, 'POST', JSAPI, jsapiOrder('BYTES_0003', { attach: '附'.repeat(43) }));
    expect(a.json.message).toContain('字节数 129，大于最大值 128');
  });

  test('When time_expire is already past, then the order is created and stays payable for the 1-minute minimum', async () => {
    const { app, control } = mk();
    const past = { time_expire: '2020-01-01T00:00:00+08:00' };
    expect((await api(app, 'POST', JSAPI, jsapiOrder('EXPIRE_0001', past))).status).toBe(200);
    expect(control.pay('EXPIRE_0001').ok).toBe(true);
    expect((await api(app, 'POST', JSAPI, jsapiOrder('EXPIRE_0002', past))).status).toBe(200);
    control.advanceTime(61_000);
    expect(control.pay('EXPIRE_0002').ok).toBe(false);
  });
});

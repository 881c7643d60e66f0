import request from 'supertest';
import { createSimulator } from '../../src/simulator/app';
import { api, APPID, h5Order, jsapiOrder, nativeOrder, paySign, testKeys } from './sim-helpers';

const keys = testKeys();
const mk = (o: Partial<Parameters<typeof createSimulator>[0]> = {}) =>
  createSimulator({ keys, notifyUrlPolicy: 'any-no-query', h5Domains: ['shop.example.com'], ...o });
const BROWSER = 'Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Mobile Safari/537.36';
const WECHAT = BROWSER + ' MicroMessenger/8.0.40';

describe('simulator H5 cashier', () => {
  async function h5(sim: ReturnType<typeof mk>, no: string, ip = '127.0.0.1') {
    const r = await api(sim.app, 'POST', '/v3/pay/transactions/h5', h5Order(no, { scene_info: { payer_client_ip: ip, h5_info: { type: 'Wap' } } }));
    const u = new URL(r.json.h5_url);
    return u.pathname + u.search;
  }

  test('When visited from the registered domain by the payer, then the confirm page pays and redirects', async () => {
    const sim = mk();
    const path = await h5(sim, 'H5_0001');
    const redirect = 'https://shop.example.com/checkout/co_1/result';
    const page = await request(sim.app).get(`${path}&redirect_url=${encodeURIComponent(redirect)}`).set('Referer', 'https://shop.example.com/checkout/co_1').set('User-Agent', BROWSER);
    expect(page.status).toBe(200);
    expect(page.text).toContain('确认支付');
    expect(page.text).toContain('1.00');
    const u = new URL(path, 'http://x');
    const paid = await request(sim.app)
      .post('/cgi-bin/mmpayweb-bin/checkmweb')
      .type('form')
      .set('User-Agent', BROWSER)
      .send({ prepay_id: u.searchParams.get('prepay_id')!, package: u.searchParams.get('package')!, redirect_url: redirect });
    expect(paid.status).toBe(303);
    expect(paid.headers.location).toBe(redirect);
    expect(sim.control.transaction('H5_0001')!.state).toBe('SUCCESS');
  });

  test('When the merchant saw the shopper on ::1 (localhost) and the visit comes over 127.0.0.1, then it is the same visitor', async () => {
    const sim = mk();
    const path = await h5(sim, 'H5_LOOP', '::1');
    const page = await request(sim.app).get(path).set('Referer', 'https://shop.example.com/').set('User-Agent', BROWSER);
    expect(page.status).toBe(200);
    expect(page.text).toContain('确认支付');
  });

  test('When the Referer is missing or foreign, then 商家参数格式有误', async () => {
    const sim = mk();
    const path = await h5(sim, 'H5_0002');
    const none = await request(sim.app).get(path).set('User-Agent', BROWSER);
    expect(none.status).toBe(403);
    expect(none.text).toContain('商家参数格式有误');
    const foreign = await request(sim.app).get(path).set('Referer', 'https://other.example.com/').set('User-Agent', BROWSER);
    expect(foreign.text).toContain('商家参数格式有误');
    const badRedirect = await request(sim.app).get(`${path}&redirect_url=${encodeURIComponent('https://evil.example.com/')}`).set('Referer', 'https://shop.example.com/').set('User-Agent', BROWSER);
    expect(badRedirect.status).toBe(403);
  });

  test('When opened inside WeChat, older than 5 minutes, or from another IP, then refused', async () => {
    const sim = mk();
    const path = await h5(sim, 'H5_0003');
    const inWx = await request(sim.app).get(path).set('Referer', 'https://shop.example.com/').set('User-Agent', WECHAT);
    expect(inWx.text).toContain('请在微信外打开订单，进行支付');
    const otherIp = await h5(sim, 'H5_0004', '203.0.113.9');
    const ip = await request(sim.app).get(otherIp).set('Referer', 'https://shop.example.com/').set('User-Agent', BROWSER);
    expect(ip.text).toContain('由于商家传入的H5交易参数有误');
    sim.control.advanceTime(5 * 60_000 + 1000);
    const old = await request(sim.app).get(path).set('Referer', 'https://shop.example.com/').set('User-Agent', BROWSER);
    expect(old.status).toBe(403);
    expect(old.text).toContain('已失效');
    expect(sim.control.transaction('H5_0003')!.state).toBe('NOTPAY');
  });
});

describe('simulator Native scan', () => {
  test('When the code_url is scanned, then the order is paid once', async () => {
    const sim = mk();
    const { json } = await api(sim.app, 'POST', '/v3/pay/transactions/native', nativeOrder('NAT_0001'));
    const page = await request(sim.app).get(`/_sim/scan?code_url=${encodeURIComponent(json.code_url)}`);
    expect(page.text).toContain('确认支付');
    const r = await request(sim.app).post('/_sim/native/scan').send({ code_url: json.code_url });
    expect(r.status).toBe(200);
    expect(r.body.transaction_id).toMatch(/^\d{28}$/);
    expect((await request(sim.app).post('/_sim/native/scan').send({ code_url: json.code_url })).status).toBe(409);
    expect((await request(sim.app).post('/_sim/native/scan').send({ code_url: 'weixin://wxpay/bizpayurl?pr=nope' })).status).toBe(404);
  });
});

describe('simulator JSAPI bridge', () => {
  async function order(sim: ReturnType<typeof mk>, no: string) {
    const { json } = await api(sim.app, 'POST', '/v3/pay/transactions/jsapi', jsapiOrder(no));
    const timeStamp = String(Math.floor(Date.now() / 1000));
    const nonceStr = 'n0nce' + no;
    const pkg = `prepay_id=${json.prepay_id}`;
    return { appId: APPID, timeStamp, nonceStr, package: pkg, signType: 'RSA', paySign: paySign(keys.merchantPrivateKey, APPID, timeStamp, nonceStr, pkg) };
  }
  const pay = (sim: ReturnType<typeof mk>, p: object) => request(sim.app).post('/_sim/jsapi/pay').set('Origin', 'http://shop.example.com').send(p);

  test('When paySign is valid, then ok, the order is paid, and CORS allows the page origin', async () => {
    const sim = mk();
    const r = await pay(sim, await order(sim, 'JS_0001'));
    expect(r.body).toEqual({ err_msg: 'get_brand_wcpay_request:ok' });
    expect(r.headers['access-control-allow-origin']).toBe('http://shop.example.com');
    expect(sim.control.transaction('JS_0001')!.state).toBe('SUCCESS');
    expect((await pay(sim, await order(sim, 'JS_0001').catch(() => ({})))).body.err_msg).toBe('get_brand_wcpay_request:fail');
  });

  test.each([
    ['signed with the wrong key', (p: any) => ({ ...p, paySign: paySign(keys.platformPrivateKey, p.appId, p.timeStamp, p.nonceStr, p.package) })],
    ['signType MD5', (p: any) => ({ ...p, signType: 'MD5' })],
    ['numeric timeStamp', (p: any) => ({ ...p, timeStamp: Number(p.timeStamp) })],
    ['bare prepay_id as package', (p: any) => ({ ...p, package: p.package.replace('prepay_id=', '') })],
    ['another appId', (p: any) => ({ ...p, appId: 'wx0000000000000000', paySign: paySign(keys.merchantPrivateKey, 'wx0000000000000000', p.timeStamp, p.nonceStr, p.package) })],
    ['missing paySign', (p: any) => ({ ...p, paySign: undefined })],
  ])('When %s, then get_brand_wcpay_request:fail', async (_n, mutate) => {
    const sim = mk();
    const r = await pay(sim, mutate(await order(sim, 'JS_0002')));
    expect(r.body.err_msg).toBe('get_brand_wcpay_request:fail');
    expect(r.body.err_desc).toBeTruthy();
    expect(sim.control.transaction('JS_0002')!.state).toBe('NOTPAY');
  });

  test('When the prepay_id is older than 2 h or the page is outside the pay directory, then fail', async () => {
    const sim = mk({ jsapiPayDirs: ['https://shop.example.com/pay/'] });
    const p = await order(sim, 'JS_0003');
    const outside = await pay(sim, { ...p, _pageUrl: 'https://shop.example.com/other/' });
    expect(outside.body.err_desc).toContain('未注册');
    sim.control.advanceTime(2 * 3600_000 + 1000);
    const old = await pay(sim, { ...p, _pageUrl: 'https://shop.example.com/pay/co_1' });
    expect(old.body.err_desc).toContain('过期');
  });

  test('When the shim is fetched, then it defines WeixinJSBridge and fires WeixinJSBridgeReady', async () => {
    const sim = mk();
    const r = await request(sim.app).get('/_sim/jsbridge.js');
    expect(r.headers['content-type']).toContain('javascript');
    expect(r.text).toContain('WeixinJSBridgeReady');
    expect(r.text).toContain("'/_sim/jsapi/pay'");
    expect(() => new Function(r.text)).not.toThrow();
  });
});

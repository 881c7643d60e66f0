import { verify } from 'node:crypto';
import request from 'supertest';
import { makeOAuthState } from '../../src/lib/signed';
import { checkoutBody, startHarness, UA, type Harness } from '../support/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

type Channel = 'jsapi' | 'h5' | 'native' | 'unsupported';
type Agent = ReturnType<Harness['http']>;

/** What each real UA must get (FACTS §8). Keyed by the harness's table so a new UA needs an expectation. */
const EXPECTED: Record<keyof typeof UA, Channel> = {
  wechatIos: 'jsapi',
  wechatAndroid: 'jsapi',
  wechatWindows: 'native',
  wecomIos: 'unsupported',
  wecomWindows: 'unsupported',
  miniProgram: 'unsupported',
  safariIos: 'h5',
  chromeAndroid: 'h5',
  qqApp: 'h5',
  alipayAndroid: 'h5',
  weiboIos: 'h5',
  chromeMac: 'native',
  firefoxWindows: 'native',
};

const create = async (over: Record<string, unknown> = {}): Promise<string> =>
  (await h.api('post', '/v1/checkouts').send(checkoutBody(over)).expect(201)).body.id;
const pageJson = (id: string, ua: string, agent: Agent = h.http()) =>
  agent.get(`/checkout/${id}`).set('User-Agent', ua).set('Accept', 'application/json');
const pageHtml = (id: string, ua: string, agent: Agent = h.http()) =>
  agent.get(`/checkout/${id}`).set('User-Agent', ua).set('Accept', 'text/html,application/xhtml+xml');
const ordersOf = (id: string) => h.db.prisma.channelOrder.findMany({ where: { checkoutId: id }, orderBy: { createdAt: 'asc' } });
/** The simulator's recorded order-creation calls since `mark` (an index into calls). */
const ORDER_PATH = /^\/v3\/pay\/transactions\/(jsapi|h5|native)$/;
const simCreates = (mark: number, type?: 'jsapi' | 'h5' | 'native') =>
  h.sim.control.calls.slice(mark).filter((c) => c.method === 'POST' && ORDER_PATH.test(c.path) && (!type || c.path.endsWith(`/${type}`)));
const unescapeHtml = (s: string) => s.replace(/&amp;/g, '&').replace(/&#34;|&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');

async function eventually(cond: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
const statusOf = async (id: string) => (await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).status;

/** Follows the OAuth redirect through the simulated WeChat and our callback; the agent keeps our cookie. */
async function oauthLogin(id: string, agent: Agent, ua: string = UA.wechatIos): Promise<void> {
  const first = await pageJson(id, ua, agent).expect(200);
  const authorize = new URL(first.body.redirect);
  const wx = await request(h.sim.url).get(authorize.pathname + authorize.search).set('User-Agent', ua).redirects(0).expect(302);
  const back = new URL(wx.headers.location!);
  const cb = await agent.get(back.pathname + back.search).set('User-Agent', ua).redirects(0).expect(302);
  expect(cb.headers.location).toBe(`/checkout/${id}`);
  expect(cb.headers['set-cookie']).toEqual(expect.arrayContaining([expect.stringMatching(/^wxoid=[^;]+;.*HttpOnly/)]));
}

describe('routing by browser', () => {
  it('When the UA table changes, then every UA has an expected channel', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(Object.keys(UA).sort());
  });

  const cases = (Object.keys(UA) as Array<keyof typeof UA>).map((k) => [k, EXPECTED[k]] as const);

  it.each(cases)('When %s opens the checkout asking for JSON, then the channel is %s', async (name, expected) => {
    const id = await create();
    const mark = h.sim.control.calls.length;
    const res = await pageJson(id, UA[name]).expect(200);
    expect(res.body).toMatchObject({ id, status: 'open', channel: expected });
    const orders = await ordersOf(id);

    switch (expected) {
      case 'jsapi': {
        // No openid yet: the shopper is sent to WeChat's snsapi_base authorisation first.
        const u = new URL(res.body.redirect);
        expect(`${u.origin}${u.pathname}`).toBe(`${h.sim.url}/connect/oauth2/authorize`);
        expect(u.searchParams.get('appid')).toBe(h.config.WECHATPAY_APPID);
        expect(u.searchParams.get('redirect_uri')).toBe(`${h.gatewayUrl}/checkout/${id}/oauth/callback`);
        expect(u.searchParams.get('response_type')).toBe('code');
        expect(u.searchParams.get('scope')).toBe('snsapi_base');
        expect(u.searchParams.get('state')).toMatch(/^[A-Za-z0-9]{1,128}$/);
        expect(u.hash).toBe('#wechat_redirect');
        expect(orders).toHaveLength(0);
        break;
      }
      case 'unsupported':
        expect(res.body.environment).toBe(name.startsWith('wecom') ? 'wecom' : 'miniprogram');
        expect(orders).toHaveLength(0);
        break;
      case 'native':
        expect(res.body.code_url).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=[A-Za-z0-9]+$/);
        expect(orders.map((o) => o.tradeType)).toEqual(['NATIVE']);
        expect(h.sim.control.transaction(orders[0]!.outTradeNo)).toMatchObject({ tradeType: 'NATIVE', amountTotal: 1999 });
        break;
      case 'h5': {
        const u = new URL(res.body.h5_url);
        expect(`${u.origin}${u.pathname}`).toBe(`${h.sim.url}/cgi-bin/mmpayweb-bin/checkmweb`);
        expect(u.searchParams.get('prepay_id')).toMatch(/^wx/);
        expect(u.searchParams.get('redirect_url')).toBe(`${h.gatewayUrl}/checkout/${id}/result`);
        expect(orders.map((o) => o.tradeType)).toEqual(['H5']);
        const tx = h.sim.control.transaction(orders[0]!.outTradeNo)!;
        expect(tx.tradeType).toBe('H5');
        expect(tx.payerClientIp?.replace(/^::ffff:/, '')).toBe('127.0.0.1');
        break;
      }
    }
    expect(simCreates(mark)).toHaveLength(expected === 'native' || expected === 'h5' ? 1 : 0);
  });

  it.each(cases)('When %s opens the checkout page, then it gets the %s page', async (name, expected) => {
    const id = await create();
    const res = await pageHtml(id, UA[name]);
    switch (expected) {
      case 'jsapi':
        expect(res.status).toBe(302);
        expect(res.headers.location).toMatch(new RegExp(`^${h.sim.url}/connect/oauth2/authorize\\?`));
        break;
      case 'unsupported':
        expect(res.status).toBe(200);
        expect(res.text).toContain(name.startsWith('wecom') ? '企业微信' : '小程序');
        expect(res.text).toContain('复制链接');
        expect(res.text).toContain(`${h.gatewayUrl}/checkout/${id}`);
        expect(await ordersOf(id)).toHaveLength(0);
        break;
      case 'native':
        expect(res.status).toBe(200);
        expect(res.text).toMatch(/<svg[^>]*>/);
        expect(res.text).toContain('微信扫一扫');
        expect(res.text).toContain(`/checkout/${id}/status`);
        break;
      case 'h5': {
        expect(res.status).toBe(200);
        const href = /id="hop-link"[^>]*href="([^"]+)"/.exec(res.text)?.[1];
        const json = await pageJson(id, UA[name]).expect(200);
        expect(href && unescapeHtml(href)).toBe(json.body.h5_url);
        break;
      }
    }
    expect(res.headers['cache-control']).toContain('no-store');
  });
});

describe('JSAPI inside WeChat', () => {
  it('When the shopper authorises through WeChat OAuth, then the page gives jsapi_params whose paySign verifies with the merchant public key, and paying marks the checkout paid', async () => {
    const id = await create();
    const agent = h.http();
    await oauthLogin(id, agent);

    const res = await pageJson(id, UA.wechatIos, agent).expect(200);
    expect(res.body.channel).toBe('jsapi');
    const p = res.body.jsapi_params as Record<string, string>;
    expect(p.appId).toBe(h.config.WECHATPAY_APPID);
    expect(p.signType).toBe('RSA');
    expect(p.timeStamp).toMatch(/^\d{10}$/);
    expect(Math.abs(Number(p.timeStamp) - Date.now() / 1000)).toBeLessThan(60);
    expect(p.nonceStr.length).toBeGreaterThan(0);
    expect(p.nonceStr.length).toBeLessThanOrEqual(32);
    expect(p.package).toMatch(/^prepay_id=wx\w+$/);

    // Independent check of paySign (WeChat's JSAPI signature: SHA256withRSA over four lines).
    const message = `${p.appId}\n${p.timeStamp}\n${p.nonceStr}\n${p.package}\n`;
    expect(verify('sha256', Buffer.from(message), h.keys.merchantPublicKey, Buffer.from(p.paySign!, 'base64'))).toBe(true);
    expect(verify('sha256', Buffer.from(message.replace(p.nonceStr!, `${p.nonceStr}x`)), h.keys.merchantPublicKey, Buffer.from(p.paySign!, 'base64'))).toBe(false);

    // The order is bound to the openid WeChat issued to this browser.
    const [order] = await ordersOf(id);
    expect(order).toMatchObject({ tradeType: 'JSAPI', prepayId: p.package!.slice('prepay_id='.length) });
    const tx = h.sim.control.transaction(order!.outTradeNo)!;
    expect(tx.payerOpenid).toBe(order!.payerKey);

    // The HTML page embeds the same order and the sandbox bridge shim.
    const page = await pageHtml(id, UA.wechatIos, agent).expect(200);
    expect(page.text).toContain('getBrandWCPayRequest');
    expect(page.text).toContain(`${h.sim.url}/_sim/jsbridge.js`);
    expect(page.text).toContain(p.package);

    const paid = await request(h.sim.url).post('/_sim/jsapi/pay').set('User-Agent', UA.wechatIos).send(p).expect(200);
    expect(paid.body).toEqual({ err_msg: 'get_brand_wcpay_request:ok' });
    await eventually(async () => (await statusOf(id)) === 'paid');

    const api = await h.api('get', `/v1/checkouts/${id}`).expect(200);
    expect(api.body).toMatchObject({ status: 'paid', transaction_id: tx.transactionId });
    expect(api.body.channel_orders).toEqual([expect.objectContaining({ trade_type: 'JSAPI', status: 'paid' })]);
  });

  it('When the OAuth state is tampered with, then the callback answers 400 and sets no cookie', async () => {
    const id = await create();
    const first = await pageJson(id, UA.wechatAndroid).expect(200);
    const authorize = new URL(first.body.redirect);
    const wx = await request(h.sim.url).get(authorize.pathname + authorize.search).set('User-Agent', UA.wechatAndroid).redirects(0).expect(302);
    const back = new URL(wx.headers.location!);
    const state = back.searchParams.get('state')!;
    back.searchParams.set('state', state.slice(0, -1) + (state.endsWith('0') ? '1' : '0'));

    const agent = h.http();
    const res = await agent.get(back.pathname + back.search).set('User-Agent', UA.wechatAndroid).redirects(0).expect(400);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.text).toContain('授权失败');
    // Still no openid: the page sends the shopper to OAuth again and no order exists.
    const again = await pageJson(id, UA.wechatAndroid, agent).expect(200);
    expect(again.body.redirect).toBeDefined();
    expect(await ordersOf(id)).toHaveLength(0);
  });

  it("When the state was made for another checkout, then the callback refuses it", async () => {
    const a = await create();
    const b = await create();
    const first = await pageJson(a, UA.wechatIos).expect(200);
    const authorize = new URL(first.body.redirect);
    const wx = await request(h.sim.url).get(authorize.pathname + authorize.search).set('User-Agent', UA.wechatIos).redirects(0).expect(302);
    const back = new URL(wx.headers.location!);
    const res = await h.http().get(`/checkout/${b}/oauth/callback${back.search}`).set('User-Agent', UA.wechatIos).redirects(0).expect(400);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('When a callback link started in another browser is opened (no matching browser nonce), then it is refused and no openid is set', async () => {
    const id = await create();
    const starter = request.agent(h.app);
    const first = await pageJson(id, UA.wechatIos, starter).expect(200);
    const authorize = new URL(first.body.redirect);
    const wx = await request(h.sim.url).get(authorize.pathname + authorize.search).set('User-Agent', UA.wechatIos).redirects(0).expect(302);
    const back = new URL(wx.headers.location!);
    // The victim's browser never visited the checkout: it has no wxos cookie.
    const res = await request(h.app).get(back.pathname + back.search).set('User-Agent', UA.wechatIos).redirects(0).expect(400);
    expect(res.headers['set-cookie']).toBeUndefined();
    // The browser that started it completes normally.
    await starter.get(back.pathname + back.search).set('User-Agent', UA.wechatIos).redirects(0).expect(302);
  });

  it("When a victim's browser holding its OWN nonce cookie opens an attacker's callback link, then it is refused and no openid is set", async () => {
    const id = await create();
    // The attacker starts OAuth in their browser and gets a callback link for their own WeChat user.
    const attacker = request.agent(h.app);
    const first = await pageJson(id, UA.wechatIos, attacker).expect(200);
    const authorize = new URL(first.body.redirect);
    const wx = await request(h.sim.url).get(authorize.pathname + authorize.search).set('User-Agent', UA.wechatIos).redirects(0).expect(302);
    const back = new URL(wx.headers.location!);
    // The victim visited the checkout too: their browser holds a nonce cookie of its own.
    const victim = request.agent(h.app);
    await pageJson(id, UA.wechatIos, victim).expect(200);
    const res = await victim.get(back.pathname + back.search).set('User-Agent', UA.wechatIos).redirects(0).expect(400);
    expect(String(res.headers['set-cookie'] ?? '')).not.toContain('wxoid=');
    // Still no openid in the victim's browser: the page sends it to OAuth again, no order exists.
    const again = await pageJson(id, UA.wechatIos, victim).expect(200);
    expect(again.body.redirect).toBeDefined();
    expect(await ordersOf(id)).toHaveLength(0);
  });

  it('When the OAuth state has expired (same browser, valid signature), then the callback refuses it', async () => {
    const id = await create();
    const agent = request.agent(h.app);
    const first = await pageJson(id, UA.wechatIos, agent).expect(200);
    const authorize = new URL(first.body.redirect);
    const state = authorize.searchParams.get('state')!;
    // Same checkout, same browser nonce, correctly signed, but its expiry is one second in the past.
    const browserNonce = state.slice(28, 44);
    const expired = makeOAuthState(h.config.STATE_SECRET, id, Date.now() - 1000, browserNonce);
    const wx = await request(h.sim.url).get(authorize.pathname + authorize.search).set('User-Agent', UA.wechatIos).redirects(0).expect(302);
    const back = new URL(wx.headers.location!);
    back.searchParams.set('state', expired);
    const res = await agent.get(back.pathname + back.search).set('User-Agent', UA.wechatIos).redirects(0).expect(400);
    expect(res.text).toContain('授权失败');
    // The unexpired state of the same browser still works (the refusal was the expiry, not the test's plumbing).
    back.searchParams.set('state', state);
    await agent.get(back.pathname + back.search).set('User-Agent', UA.wechatIos).redirects(0).expect(302);
  });

  it('When the merchant gave payer.openid, then WeChat skips OAuth and gets jsapi_params for that openid', async () => {
    const openid = 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o';
    const id = await create({ payer: { openid } });
    const res = await pageJson(id, UA.wechatAndroid).expect(200);
    expect(res.body.channel).toBe('jsapi');
    expect(res.body.redirect).toBeUndefined();
    expect(res.body.jsapi_params.appId).toBe(h.config.WECHATPAY_APPID);
    const [order] = await ordersOf(id);
    expect(h.sim.control.transaction(order!.outTradeNo)).toMatchObject({ tradeType: 'JSAPI', payerOpenid: openid });
  });
});

describe('H5 in mobile browsers', () => {
  it('When the shopper follows the hop page to h5_url with our Referer, then WeChat shows the confirm page and paying returns to our result page', async () => {
    const id = await create();
    const page = await pageHtml(id, UA.safariIos).expect(200);
    const h5Url = unescapeHtml(/id="hop-link"[^>]*href="([^"]+)"/.exec(page.text)![1]!);
    expect(page.text).toContain('referrer');
    const u = new URL(h5Url);

    const confirm = await request(h.sim.url).get(u.pathname + u.search).set('User-Agent', UA.safariIos)
      .set('Referer', `${h.gatewayUrl}/checkout/${id}`).expect(200);
    expect(confirm.text).toContain('确认支付');

    const pay = await request(h.sim.url).post(u.pathname).type('form').set('User-Agent', UA.safariIos).send({
      prepay_id: u.searchParams.get('prepay_id')!, package: u.searchParams.get('package')!, redirect_url: u.searchParams.get('redirect_url')!,
    }).redirects(0).expect(303);
    expect(pay.headers.location).toBe(`${h.gatewayUrl}/checkout/${id}/result`);
    await eventually(async () => (await statusOf(id)) === 'paid');
    const result = await h.http().get(`/checkout/${id}/result`).set('Accept', 'text/html').expect(200);
    expect(result.text).toMatch(/<div id="state-paid">/);
  });

  it('When the request comes through the trusted proxy, then the H5 order carries the forwarded shopper IP', async () => {
    expect(h.config.TRUST_PROXY).toBe('loopback');
    const id = await create();
    await pageJson(id, UA.chromeAndroid).set('X-Forwarded-For', '203.0.113.7').expect(200);
    const [order] = await ordersOf(id);
    expect(h.sim.control.transaction(order!.outTradeNo)!.payerClientIp).toBe('203.0.113.7');
  });

  it('When h5_url is opened without a Referer, then WeChat refuses it', async () => {
    const id = await create();
    const res = await pageJson(id, UA.chromeAndroid).expect(200);
    const u = new URL(res.body.h5_url);
    const refused = await request(h.sim.url).get(u.pathname + u.search).set('User-Agent', UA.chromeAndroid).expect(403);
    expect(refused.text).toContain('商家参数格式有误');
  });

  it('When the h5_url is older than 5 minutes, then reloading orders again with the same out_trade_no and gives a new h5_url', async () => {
    const id = await create();
    const mark = h.sim.control.calls.length;
    const first = await pageJson(id, UA.safariIos).expect(200);
    const [order] = await ordersOf(id);
    await h.db.prisma.channelOrder.update({ where: { id: order!.id }, data: { credentialAt: new Date(Date.now() - 6 * 60_000) } });

    const second = await pageJson(id, UA.safariIos).expect(200);
    expect(second.body.h5_url).not.toBe(first.body.h5_url);
    const orders = await ordersOf(id);
    expect(orders).toHaveLength(1);
    expect(orders[0]!.outTradeNo).toBe(order!.outTradeNo);
    expect(orders[0]!.credentialAt!.getTime()).toBeGreaterThan(Date.now() - 60_000);
    const calls = simCreates(mark, 'h5');
    expect(calls).toHaveLength(2);
    expect(calls.map((c) => (c.body as { out_trade_no: string }).out_trade_no)).toEqual([order!.outTradeNo, order!.outTradeNo]);
    expect(calls.every((c) => c.status === 200)).toBe(true);
  });
});

describe('reloading and switching browser', () => {
  it.each([
    ['desktop Chrome', UA.chromeMac, 'native'],
    ['mobile Safari', UA.safariIos, 'h5'],
    ['WeChat (known openid)', UA.wechatIos, 'jsapi'],
  ] as const)('When %s reloads the page, then the channel order is reused', async (_name, ua, type) => {
    const id = await create({ payer: { openid: 'oUpF8uReloadTest_0000000001' } });
    const mark = h.sim.control.calls.length;
    const a = await pageJson(id, ua).expect(200);
    const b = await pageJson(id, ua).expect(200);
    const c = await pageJson(id, ua).expect(200);
    expect(b.body).toEqual(type === 'jsapi' ? expect.objectContaining({ channel: 'jsapi' }) : a.body);
    expect(c.body.channel).toBe(type);
    if (type === 'jsapi') expect(c.body.jsapi_params.package).toBe(a.body.jsapi_params.package);
    expect(await ordersOf(id)).toHaveLength(1);
    expect(simCreates(mark, type)).toHaveLength(1);
  });

  it('When the page loads concurrently in several tabs, then one channel order exists', async () => {
    const id = await create();
    const answers = await Promise.all(Array.from({ length: 5 }, () => pageJson(id, UA.firefoxWindows)));
    for (const a of answers) expect(a.status).toBe(200);
    expect(new Set(answers.map((a) => a.body.code_url)).size).toBe(1);
    expect(await ordersOf(id)).toHaveLength(1);
  });

  it('When the shopper switches from desktop to mobile to WeChat, then each trade type has its own out_trade_no', async () => {
    const id = await create();
    const mark = h.sim.control.calls.length;
    await pageJson(id, UA.chromeMac).expect(200);
    await pageJson(id, UA.chromeAndroid).expect(200);
    const agent = h.http();
    await oauthLogin(id, agent, UA.wechatAndroid);
    expect((await pageJson(id, UA.wechatAndroid, agent).expect(200)).body.channel).toBe('jsapi');
    // Back on the desktop: still the first order.
    await pageJson(id, UA.chromeMac).expect(200);

    const orders = await ordersOf(id);
    expect(orders.map((o) => o.tradeType).sort()).toEqual(['H5', 'JSAPI', 'NATIVE']);
    expect(new Set(orders.map((o) => o.outTradeNo)).size).toBe(3);
    const calls = simCreates(mark);
    expect(calls.map((c) => c.path.split('/').pop()).sort()).toEqual(['h5', 'jsapi', 'native']);
    expect(calls.every((c) => c.status === 200)).toBe(true);
  });
});

describe('pages for checkouts that cannot be paid', () => {
  it('When the checkout is paid, then the page says so (HTML 200) and JSON gives status paid', async () => {
    const id = await create();
    await pageJson(id, UA.chromeMac).expect(200);
    const [order] = await ordersOf(id);
    expect(h.sim.control.pay(order!.outTradeNo).ok).toBe(true);
    await eventually(async () => (await statusOf(id)) === 'paid');

    const page = await pageHtml(id, UA.safariIos).expect(200);
    expect(page.text).toContain('支付成功');
    expect((await pageJson(id, UA.wechatIos).expect(200)).body).toMatchObject({ id, status: 'paid', channel: null });
    // No new order for the other browsers.
    expect(await ordersOf(id)).toHaveLength(1);
  });

  it('When the checkout has expired, then the page says so (HTML 200) and JSON gives status expired', async () => {
    const id = await create({ expires_in: 60 });
    await h.db.prisma.checkout.update({ where: { id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const page = await pageHtml(id, UA.chromeMac).expect(200);
    expect(page.text).toContain('订单已过期');
    expect((await pageJson(id, UA.safariIos).expect(200)).body).toMatchObject({ id, status: 'expired', channel: null });
    expect(await ordersOf(id)).toHaveLength(0);
  });

  it.each(['co_00000000000000000000', 'co_short', 'anything'])('When the checkout %s is unknown, then the page is a 404 "not found" page', async (id) => {
    const page = await pageHtml(id, UA.chromeMac).expect(404);
    expect(page.text).toContain('订单不存在');
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const json = await pageJson(id, UA.chromeMac).expect(404);
    expect(json.body.error.code).toBe('NOT_FOUND');
  });

  it('When the channel fails, then the page is a 502 error page with a retry link, and a retry works', async () => {
    const id = await create();
    h.sim.control.faults.failNext(1, { pathPrefix: '/v3/pay/transactions' });
    const page = await pageHtml(id, UA.chromeMac).expect(502);
    expect(page.text).toContain('支付通道暂时不可用');
    expect(page.text).toContain(`/checkout/${id}`);

    const retry = await pageJson(id, UA.chromeMac).expect(200);
    expect(retry.body.code_url).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=/);
    expect(await ordersOf(id)).toHaveLength(1);
  });

  it('When the channel fails and JSON was asked for, then it answers 502 CHANNEL_UNAVAILABLE, and a retry works', async () => {
    const id = await create();
    h.sim.control.faults.failNext(1, { pathPrefix: '/v3/pay/transactions' });
    const res = await pageJson(id, UA.safariIos).expect(502);
    expect(res.body.error.code).toBe('CHANNEL_UNAVAILABLE');
    expect((await pageJson(id, UA.safariIos).expect(200)).body.channel).toBe('h5');
  });
});

// Last: starts the background loops (outbox, sweeper) for the rest of this file.
describe('paying one of several orders', () => {
  it('When one of three channel orders is paid, then the others are closed at WeChat by the outbox', async () => {
    await h.startBackground();
    const id = await create({ payer: { openid: 'oUpF8uSiblingTest_00000001' } });
    await pageJson(id, UA.chromeMac).expect(200);
    await pageJson(id, UA.safariIos).expect(200);
    await pageJson(id, UA.wechatIos).expect(200);
    const orders = await ordersOf(id);
    expect(orders).toHaveLength(3);
    const h5 = orders.find((o) => o.tradeType === 'H5')!;

    expect(h.sim.control.pay(h5.outTradeNo).ok).toBe(true);
    await eventually(async () => (await statusOf(id)) === 'paid');
    const others = orders.filter((o) => o !== h5);
    await eventually(async () => others.every((o) => h.sim.control.transaction(o.outTradeNo)?.state === 'CLOSED'));
    await eventually(async () => (await ordersOf(id)).filter((o) => o.status === 'closed').length === 2);

    const after = await ordersOf(id);
    expect(after.find((o) => o.id === h5.id)!.status).toBe('paid');
    expect(h.sim.control.transaction(h5.outTradeNo)!.state).toBe('SUCCESS');
    // A shopper still on the QR page cannot pay the closed order twice.
    expect(h.sim.control.pay(others[0]!.outTradeNo).ok).toBe(false);
  });

  // Bug (see report): closing the sibling that never reached WeChat fails with ORDER_NOT_EXIST, so the
  // payment.succeeded event (and the split handler after it) is retried forever.
  it('When a sibling order never reached WeChat, then the follow-up work after the payment still completes', async () => {
    await h.startBackground();
    const id = await create();
    h.sim.control.faults.failNext(1, { pathPrefix: '/v3/pay/transactions/native' });
    await pageJson(id, UA.chromeMac).expect(502);
    await pageJson(id, UA.safariIos).expect(200);
    const h5 = (await ordersOf(id)).find((o) => o.tradeType === 'H5')!;

    expect(h.sim.control.pay(h5.outTradeNo).ok).toBe(true);
    await eventually(async () => (await statusOf(id)) === 'paid');
    await eventually(async () => {
      const ev = await h.db.prisma.outboxEvent.findFirst({ where: { aggregateId: id } });
      return ev?.processedAt != null;
    }, 2500);
    const native = (await ordersOf(id)).find((o) => o.tradeType === 'NATIVE')!;
    expect(native.status).toBe('closed');
  });
});

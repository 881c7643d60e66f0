import { Writable } from 'node:stream';
import pino from 'pino';
import request from 'supertest';
import { createApp } from '../../src/app';
import { modules } from '../../src/gateway';
import { createMerchant, SANDBOX_MERCHANT_ID } from '../../src/modules/merchants/merchant.service';
import { startHarness, UA, type Harness } from '../support/harness';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await createMerchant(h.db.prisma, { id: SANDBOX_MERCHANT_ID, name: '演示商户 Sandbox Shop', apiKey: 'sk_sandbox_demo_key_0001' });
});
afterAll(async () => h?.close());

const demoCheckouts = () => h.db.prisma.checkout.count({ where: { merchantId: SANDBOX_MERCHANT_ID } });

describe('demo shop', () => {
  it('When the planned split is chosen with the form’s default amount, then the checkout is created with the split and a way back to the shop', async () => {
    const shop = await h.http().get('/').expect(200);
    const amount = /id="amount"[^>]*value="([^"]+)"/.exec(shop.text)?.[1];
    const description = /id="description"[^>]*value="([^"]+)"/.exec(shop.text)?.[1];
    expect(amount).toBeDefined();
    const res = await h.http().post('/demo/checkouts').type('form').send({ description, amount, profitSharing: 'planned' }).expect(303);
    const id = /\/checkout\/(co_\w+)/.exec(res.headers.location!)![1]!;
    const c = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
    expect(c.profitSharing).toBe('planned');
    expect(c.returnUrl).toBe(`${h.gatewayUrl}/`);
  });

  it('When the amount is too small to split, then the page says so in Chinese, keeps what was typed and creates nothing', async () => {
    const before = await demoCheckouts();
    const res = await h.http().post('/demo/checkouts').type('form').send({ description: '我的商品', amount: '0.01', profitSharing: 'planned' }).expect(400);
    expect(res.text).toMatch(/role="alert">金额太小，无法预设分账：[^<]*至少输入 0\.04 元/);
    expect(res.text).toMatch(/id="amount"[^>]*value="0.01"/);
    expect(res.text).toMatch(/id="description"[^>]*value="我的商品"/);
    expect(res.text).toMatch(/value="planned" checked/);
    expect(await demoCheckouts()).toBe(before);
  });

  it('When the amount is malformed, then the error is in Chinese and the form keeps it', async () => {
    const res = await h.http().post('/demo/checkouts').type('form').send({ description: 'x', amount: '1,5', profitSharing: 'off' }).expect(400);
    expect(res.text).toMatch(/role="alert">金额格式不正确/);
    expect(res.text).toMatch(/id="amount"[^>]*value="1,5"/);
  });
});

describe('unknown URLs and favicons', () => {
  it('When a browser opens an unknown URL, then it gets a Chinese HTML page; an API client keeps the JSON error', async () => {
    const page = await h.http().get('/no/such/page').set('Accept', BROWSER_ACCEPT).set('User-Agent', UA.safariIos).expect(404);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.text).toContain('页面不存在');
    const json = await h.http().get('/no/such/page').expect(404);
    expect(json.body.error.code).toBe('NOT_FOUND');
    // The merchant API answers JSON whatever the client accepts.
    const v1 = await h.api('get', '/v1/nothing-here').set('Accept', BROWSER_ACCEPT).expect(404);
    expect(v1.body.error.code).toBe('NOT_FOUND');
  });

  it('When a checkout id is unknown, then the page is Chinese only', async () => {
    const res = await h.http().get('/checkout/co_doesnotexist000000').set('Accept', BROWSER_ACCEPT).expect(404);
    expect(res.text).toContain('订单不存在');
    expect(res.text).not.toContain('Checkout not found');
  });

  it('When a browser asks both servers for /favicon.ico, then neither answers 404', async () => {
    await h.http().get('/favicon.ico').expect(204);
    expect((await fetch(`${h.sim.url}/favicon.ico`)).status).toBe(204);
  });

  it('When someone opens the simulator’s address, then a page says what it is; other unknown pages are a Chinese 404', async () => {
    const root = await fetch(`${h.sim.url}/`);
    expect(root.status).toBe(200);
    expect(await root.text()).toContain('微信支付模拟器');
    const other = await fetch(`${h.sim.url}/nothing`);
    expect(other.status).toBe(404);
    expect(await other.text()).toContain('页面不存在');
  });
});

it('When a request carries cookies, an OAuth code and an openid, then the request log line has none of them', async () => {
  const lines: string[] = [];
  const sink = new Writable({ write: (c, _e, cb) => void (lines.push(String(c)), cb()) });
  const app = createApp({ ...h.deps, logger: pino({ level: 'info' }, sink) }, modules);
  await request(app)
    .get('/checkout/co_doesnotexist000000/oauth?code=SECRETCODE123&state=SECRETSTATE&openid=oSECRETOPENID')
    .set('Cookie', 'wx_openid=SIGNEDCOOKIEVALUE; other=1')
    .set('Authorization', 'Bearer SECRETKEY');
  const log = lines.join('');
  expect(log).toMatch(/GET \/checkout\/co_doesnotexist000000\/oauth\?code=\[redacted\]/);
  for (const secret of ['SIGNEDCOOKIEVALUE', 'SECRETCODE123', 'SECRETSTATE', 'oSECRETOPENID', 'SECRETKEY', 'remoteAddress']) expect(log).not.toContain(secret);
});

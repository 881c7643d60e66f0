import request from 'supertest';
import { createApp } from '../../src/app';
import { modules } from '../../src/gateway';
import { checkoutBody, startHarness, UA, type Harness } from '../support/harness';

/** Issue 8 §3 / issue 12: security headers on every answer (the browser test proves the pages still work). */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

const expectHardened = (res: request.Response) => {
  expect(res.headers['x-frame-options']).toBe('DENY');
  expect(res.headers['x-content-type-options']).toBe('nosniff');
  const csp = String(res.headers['content-security-policy']);
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=]{24}'/);
  expect(csp).not.toMatch(/script-src[^;]*'unsafe-inline'/);
  return csp;
};

it('When any page, API answer or error goes out, then it carries CSP, X-Frame-Options DENY, nosniff and a Referrer-Policy', async () => {
  const c = await h.api('post', '/v1/checkouts').send(checkoutBody()).expect(201);
  const answers = [
    c,
    await request(h.app).get(`/checkout/${c.body.id}`).set('User-Agent', UA.chromeMac),
    await request(h.app).get(`/checkout/${c.body.id}/result`),
    await request(h.app).get('/checkout/co_00000000000000000000'),
    await request(h.app).get('/no/such/route'),
    await request(h.app).post('/notify/wechatpay/transactions').send('{}'),
  ];
  for (const res of answers) {
    expectHardened(res);
    expect(res.headers['referrer-policy']).toBe('strict-origin-when-cross-origin');
  }
});

it('When two pages are served, then each has its own nonce, and it is the one on the page\'s scripts and style', async () => {
  const c = await h.api('post', '/v1/checkouts').send(checkoutBody()).expect(201);
  const a = await request(h.app).get(`/checkout/${c.body.id}`).set('User-Agent', UA.chromeMac).expect(200);
  const b = await request(h.app).get(`/checkout/${c.body.id}`).set('User-Agent', UA.chromeMac).expect(200);
  const nonceOf = (r: request.Response) => /'nonce-([^']+)'/.exec(String(r.headers['content-security-policy']))![1]!;
  expect(nonceOf(a)).not.toBe(nonceOf(b));
  const inline = a.text.match(/<(script|style)(?![^>]*type="application\/json")[^>]*>/g) ?? [];
  expect(inline.length).toBeGreaterThan(1);
  for (const tag of inline) expect(tag).toContain(`nonce="${nonceOf(a)}"`);
});

it('When the H5 hop page is served, then its Referrer-Policy lets WeChat see our origin (and nothing more)', async () => {
  const c = await h.api('post', '/v1/checkouts').send(checkoutBody()).expect(201);
  const res = await request(h.app).get(`/checkout/${c.body.id}`).set('User-Agent', UA.safariIos).expect(200);
  expect(res.text).toContain('id="hop-link"');
  expectHardened(res);
  expect(res.headers['referrer-policy']).toBe('origin');
});

it('When not in sandbox, then the CSP allows nothing of the simulator and no style attributes', async () => {
  const app = createApp({ ...h.deps, config: { ...h.config, sandbox: false, APP_MODE: 'production' } }, modules);
  const res = await request(app).get('/checkout/co_00000000000000000000');
  const csp = expectHardened(res);
  expect(csp).not.toContain(new URL(h.config.WECHATPAY_BASE_URL).origin);
  expect(csp).not.toContain('unsafe-inline');
});

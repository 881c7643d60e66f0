import { gzipSync, brotliCompressSync } from 'node:zlib';
import request from 'supertest';
import { createApp } from '../../src/app';
import { modules } from '../../src/gateway';
import { createPrisma } from '../../src/lib/prisma';
import { API_KEY, checkoutBody, startHarness, UA, type Harness } from '../support/harness';
import { paidCheckout, receivers } from './split-support';

/** Issue 8 §4, §5, §7: what input and a bad day used to turn into 500s. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

const rows = () => h.db.prisma.checkout.count();

describe('When an amount is beyond what WeChat and the int4 column hold, then 400 VALIDATION_FAILED names it', () => {
  it.each([2 ** 31, 2 ** 31 + 5, 9_999_999_999, 10_000_000_000])('checkout amount %d', async (amount) => {
    const before = await rows();
    const res = await h.api('post', '/v1/checkouts').send(checkoutBody({ amount }));
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'amount' });
    expect(await rows()).toBe(before);
  });

  it('the largest int4 amount is still accepted', async () => {
    await h.api('post', '/v1/checkouts').send(checkoutBody({ amount: 2 ** 31 - 1 })).expect(201);
  });

  it('an on-demand receiver of 2^31 on an unpaid checkout', async () => {
    const c = await h.api('post', '/v1/checkouts').send(checkoutBody({ profit_sharing: { mode: 'on_demand' } })).expect(201);
    const res = await h.api('post', `/v1/checkouts/${c.body.id}/splits`).set('Idempotency-Key', `k${Date.now()}`)
      .send({ receivers: receivers(1, 2 ** 31) });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'receivers.0.amount' });
  });

  it('a planned receiver of 2^31', async () => {
    const res = await h.api('post', '/v1/checkouts').send(checkoutBody({ profit_sharing: { mode: 'planned', receivers: receivers(1, 2 ** 31) } }));
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe('profit_sharing.receivers.0.amount');
  });
});

describe('When a string carries NUL or another control character, then 400 names the field and nothing is written', () => {
  const withCtl = (c: string) => `abc${c}def`;
  const cases: Array<[string, (c: string) => Record<string, unknown>, string]> = [
    ['description', (c) => ({ description: withCtl(c) }), 'description'],
    ['attach', (c) => ({ attach: withCtl(c) }), 'attach'],
    ['payer.openid', (c) => ({ payer: { openid: withCtl(c) } }), 'payer.openid'],
    ['out_trade_no', (c) => ({ out_trade_no: withCtl(c) }), 'out_trade_no'],
    ['return_url', (c) => ({ return_url: `https://shop.example/${withCtl(c)}` }), 'return_url'],
    ['receiver account', (c) => ({ profit_sharing: { mode: 'planned', receivers: [{ ...receivers(1, 100)[0], account: withCtl(c) }] } }), 'profit_sharing.receivers.0.account'],
    ['receiver name', (c) => ({ profit_sharing: { mode: 'planned', receivers: [{ ...receivers(1, 100)[0], name: withCtl(c) }] } }), 'profit_sharing.receivers.0.name'],
    ['receiver description', (c) => ({ profit_sharing: { mode: 'planned', receivers: [{ ...receivers(1, 100)[0], description: withCtl(c) }] } }), 'profit_sharing.receivers.0.description'],
  ];
  for (const ctl of ['\u0000', '\u0007', '\u001b', '\u007f', '\u0085', '\ud800']) {
    it.each(cases)(`%s with U+${ctl.charCodeAt(0).toString(16).padStart(4, '0')}`, async (_n, body, field) => {
      const before = await rows();
      const res = await h.api('post', '/v1/checkouts').send(checkoutBody(body(ctl)));
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'VALIDATION_FAILED', field });
      expect(await rows()).toBe(before);
    });
  }

  it('a finish description with NUL', async () => {
    const c = await h.api('post', '/v1/checkouts').send(checkoutBody({ profit_sharing: { mode: 'on_demand' } })).expect(201);
    const res = await h.api('post', `/v1/checkouts/${c.body.id}/splits/finish`).send({ description: 'a\u0000b' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'description' });
  });

  it('the list filter out_trade_no with NUL', async () => {
    const res = await h.api('get', '/v1/checkouts?out_trade_no=a%00b');
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'out_trade_no' });
  });

  it('Chinese text, emoji and astral characters are still fine', async () => {
    await h.api('post', '/v1/checkouts').send(checkoutBody({ description: '测试 😀 𠮷', attach: 'ok ✓' })).expect(201);
  });
});

describe('When the body is compressed, too large or broken, then the status is the body parser\'s own with a code', () => {
  const json = JSON.stringify(checkoutBody());
  it.each([
    ['gzip', gzipSync(json)],
    ['br', brotliCompressSync(json)],
    ['gzip', Buffer.from(json)], // claims gzip, is plain
    ['br', Buffer.from(json)],
    ['deflate', Buffer.from(json)],
  ])('Content-Encoding: %s → 415', async (enc, body) => {
    const before = await rows();
    const res = await h.api('post', '/v1/checkouts').set('Content-Type', 'application/json').set('Content-Encoding', enc).send(body);
    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(await rows()).toBe(before);
  });

  it('a 5 MB body → 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await h.api('post', '/v1/checkouts').set('Content-Type', 'application/json')
      .send(JSON.stringify({ ...checkoutBody(), description: 'x'.repeat(5 * 1024 * 1024) }));
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('a 5 MB notify → 413', async () => {
    const res = await request(h.app).post('/notify/wechatpay/transactions').set('Content-Type', 'application/json').send('x'.repeat(5 * 1024 * 1024));
    expect(res.status).toBe(413);
  });

  it('a compressed notify → 415', async () => {
    const res = await request(h.app).post('/notify/wechatpay/transactions').set('Content-Type', 'application/json').set('Content-Encoding', 'gzip').send(gzipSync('{}'));
    expect(res.status).toBe(415);
  });

  it('broken JSON → 400 INVALID_JSON', async () => {
    const res = await h.api('post', '/v1/checkouts').set('Content-Type', 'application/json').send('{"amount":');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_JSON');
  });

  it('a malformed %-escape in a page path → 400, not 500', async () => {
    const res = await request(h.app).get('/checkout/%E0%A4%A').set('Accept', 'application/json');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('BAD_REQUEST');
  });
});

describe('When PostgreSQL is down, then 503 SERVICE_UNAVAILABLE with Retry-After, and browsers get the error page', () => {
  let dead: ReturnType<typeof createPrisma>;
  let app: ReturnType<typeof createApp>;
  beforeAll(() => {
    dead = createPrisma('postgresql://nobody:x@127.0.0.1:1/none');
    app = createApp({ ...h.deps, prisma: dead }, modules);
  });
  afterAll(async () => dead.$disconnect());

  it.each([
    ['post', '/v1/checkouts'],
    ['get', '/v1/checkouts'],
    ['get', '/v1/checkouts/co_00000000000000000000'],
  ] as const)('API %s %s', async (method, path) => {
    const res = await request(app)[method](path).set('Authorization', `Bearer ${API_KEY}`).send(method === 'post' ? checkoutBody() : undefined);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    expect(res.body.error.code).toBe('SERVICE_UNAVAILABLE');
  });

  it('the shopper page as JSON', async () => {
    const res = await request(app).get('/checkout/co_00000000000000000000').set('Accept', 'application/json').set('User-Agent', UA.chromeMac);
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('SERVICE_UNAVAILABLE');
  });

  it.each(['/checkout/co_00000000000000000000', '/checkout/co_00000000000000000000/result'])('the shopper page %s in a browser', async (path) => {
    const res = await request(app).get(path).set('Accept', 'text/html,application/xhtml+xml,*/*;q=0.8').set('User-Agent', UA.safariIos);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.text).toContain('暂时无法完成支付');
  });
});

describe('PUT /v1/checkouts/{id}/split-plan', () => {
  it('When the checkout was paid on demand, then 409 SPLIT_MODE_CONFLICT and the mode stays on_demand with nothing split', async () => {
    const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } });
    const res = await h.api('put', `/v1/checkouts/${id}/split-plan`).send({ receivers: receivers(1, 100) });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('SPLIT_MODE_CONFLICT');
    const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
    expect(row.profitSharing).toBe('on_demand');
    expect(row.splitPlan).toBeNull();
    expect(h.sim.control.profitSharing.requests().filter((r) => r.transactionId === transactionId)).toHaveLength(0);
  });

  it('When an on-demand checkout is still unpaid, then a plan may replace the mode (documented)', async () => {
    const c = await h.api('post', '/v1/checkouts').send(checkoutBody({ profit_sharing: { mode: 'on_demand' } })).expect(201);
    await h.api('put', `/v1/checkouts/${c.body.id}/split-plan`).send({ receivers: receivers(1, 100) }).expect(200);
    expect((await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.body.id } })).profitSharing).toBe('planned');
  });
});

describe('When a path id holds anything (found by the property test), then 404, not 500', () => {
  it.each(['%00', 'co_%00', 'co_%01%7F'])('GET /v1/checkouts/%s', async (seg) => {
    const res = await h.api('get', `/v1/checkouts/${seg}`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });
  it('POST /v1/checkouts/%00/close', async () => {
    const res = await h.api('post', '/v1/checkouts/%00/close');
    expect(res.status).toBe(404);
  });
});

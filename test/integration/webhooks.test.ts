import request from 'supertest';
import { Webhook } from 'standardwebhooks';
import { API_KEY, OTHER_API_KEY, checkoutBody, startHarness, type Harness } from '../support/harness';
import { startReceiver } from '../support/webhook-receiver';
import { ensureDemoReceiver } from '../../src/modules/demo/demo.webhooks';
import { createMerchant, SANDBOX_MERCHANT_ID } from '../../src/modules/merchants/merchant.service';
import { paidCheckout, receivers, waitFor } from './split-support';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    env: { WEBHOOK_POLL_MS: '50', WEBHOOK_RETRY_SCHEDULE: '0.2,0.3,0.4', WEBHOOK_TIMEOUT_MS: '60000', PROFIT_SHARING_POLL_MS: '20' },
  });
  await h.startBackground();
});
afterAll(async () => h?.close());

const call = (method: 'get' | 'post' | 'patch' | 'delete', path: string, key = API_KEY) =>
  request(h.app)[method](path).set('Authorization', `Bearer ${key}`);

async function endpoint(url: string, extra: Record<string, unknown> = {}) {
  const r = await call('post', '/v1/webhook_endpoints').send({ url, ...extra }).expect(201);
  return r.body as { id: string; secret: string; url: string; events: string[] | null };
}

/**
 * A checkout closed by the merchant: one checkout.closed event, no payment needed. (The close moves
 * expires_at to now first, so the sweeper (every 200 ms here) may expire it first: then 409 and
 * checkout.expired instead.)
 */
const ENDED = ['checkout.closed', 'checkout.expired'];
async function closedCheckout(): Promise<string> {
  const c = await h.api('post', '/v1/checkouts').send(checkoutBody()).expect(201);
  const r = await h.api('post', `/v1/checkouts/${c.body.id}/close`);
  expect([200, 409]).toContain(r.status);
  return c.body.id as string;
}

afterEach(async () => {
  // Endpoints of one test must not receive the next test's events.
  await h.db.prisma.webhookEndpoint.updateMany({ where: { deletedAt: null }, data: { deletedAt: new Date() } });
});

it('When an endpoint is created, then it answers 201 with a whsec_ secret of 32 random bytes shown only then, and GET, list and PATCH work without it', async () => {
  const e = await endpoint('https://shop.example.com/hooks', { events: ['checkout.paid'], description: '主站' });
  expect(e.id).toMatch(/^we_[0-9a-z]{20}$/);
  expect(e.secret).toMatch(/^whsec_/);
  expect(Buffer.from(e.secret.slice(6), 'base64')).toHaveLength(32);
  expect(e.events).toEqual(['checkout.paid']);

  const one = await call('get', `/v1/webhook_endpoints/${e.id}`).expect(200);
  expect(one.body).toMatchObject({ id: e.id, url: 'https://shop.example.com/hooks', description: '主站', disabled: false, failing_since: null });
  expect(JSON.stringify(one.body)).not.toContain(e.secret.slice(6));
  const list = await call('get', '/v1/webhook_endpoints').expect(200);
  expect(list.body.data.map((x: { id: string }) => x.id)).toContain(e.id);
  expect(JSON.stringify(list.body)).not.toContain('whsec_');

  const p = await call('patch', `/v1/webhook_endpoints/${e.id}`).send({ url: 'https://shop.example.com/v2/hooks', events: null, disabled: true }).expect(200);
  expect(p.body).toMatchObject({ url: 'https://shop.example.com/v2/hooks', events: null, disabled: true });
  await call('delete', `/v1/webhook_endpoints/${e.id}`).expect(200);
  await call('get', `/v1/webhook_endpoints/${e.id}`).expect(404);
});

it.each([
  ['a non-http(s) url', { url: 'ftp://shop.example.com/x' }, 'url'],
  ['a url with credentials', { url: 'https://u:p@shop.example.com/x' }, 'url'],
  ['no url', {}, 'url'],
  ['an unknown event type', { url: 'https://shop.example.com/x', events: ['checkout.nope'] }, 'events.0'],
  ['an empty event list', { url: 'https://shop.example.com/x', events: [] }, 'events'],
  ['an event twice', { url: 'https://shop.example.com/x', events: ['checkout.paid', 'checkout.paid'] }, 'events'],
  ['an unknown key', { url: 'https://shop.example.com/x', secret: 'whsec_mine' }, 'secret'],
  ['a private IP literal', { url: 'http://10.1.2.3/hooks' }, 'url'],
  ['a link-local IP literal (cloud metadata)', { url: 'http://169.254.169.254/latest' }, 'url'],
])('When an endpoint is created with %s, then 400 VALIDATION_FAILED names the field and nothing is written', async (_what, body, field) => {
  const before = await h.db.prisma.webhookEndpoint.count();
  const r = await call('post', '/v1/webhook_endpoints').send(body).expect(400);
  expect(r.body.error).toMatchObject({ code: 'VALIDATION_FAILED', field });
  expect(await h.db.prisma.webhookEndpoint.count()).toBe(before);
});

it('When PATCH or the event API get bad input, then 4xx with error.code and nothing changes', async () => {
  const e = await endpoint('https://shop.example.com/hooks');
  const before = await h.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: e.id } });
  expect((await call('patch', `/v1/webhook_endpoints/${e.id}`).send({}).expect(400)).body.error.code).toBe('VALIDATION_FAILED');
  expect((await call('patch', `/v1/webhook_endpoints/${e.id}`).send({ disabled: 'yes' }).expect(400)).body.error.field).toBe('disabled');
  expect((await call('patch', `/v1/webhook_endpoints/${e.id}`).send({ url: 'javascript:alert(1)' }).expect(400)).body.error.field).toBe('url');
  expect(await h.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: e.id } })).toEqual(before);
  expect((await call('get', '/v1/events?type=checkout.nope').expect(400)).body.error.field).toBe('type');
  expect((await call('get', '/v1/events?limit=0').expect(400)).body.error.field).toBe('limit');
  expect((await call('get', '/v1/events?starting_after=evt_aaaaaaaaaaaaaaaaaaaa').expect(400)).body.error.field).toBe('starting_after');
  expect((await call('post', '/v1/events/evt_aaaaaaaaaaaaaaaaaaaa/redeliver').send({}).expect(404)).body.error.code).toBe('NOT_FOUND');
  expect((await call('get', '/v1/webhook_endpoints/nope').expect(404)).body.error.code).toBe('NOT_FOUND');
});

it('When a receiver answers 500 twice then 200, then every event of a paid, split checkout is delivered with exactly one 2xx, in order, signed as Standard Webhooks says', async () => {
  const rx = await startReceiver((n) => (n < 2 ? 500 : 200));
  try {
    const e = await endpoint(rx.url);
    const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(2, 100, 'wh-') } });
    const ok = await waitFor(async () => {
      const mine = rx.got.filter((g) => g.answered === 200 && (g.json.data.object.id === id || g.json.data.object.checkout_id === id));
      return mine.length >= 2 ? mine : null;
    }, 20_000, 'checkout.paid and split.succeeded delivered');
    await new Promise((r) => setTimeout(r, 500)); // nothing more may arrive

    const mine = rx.got.filter((g) => g.json.data.object.id === id || g.json.data.object.checkout_id === id);
    expect(mine.map((g) => [g.json.type, g.answered])).toEqual([
      ['checkout.paid', 500],
      ['checkout.paid', 500],
      ['checkout.paid', 200],
      ['split.succeeded', 200],
    ]);
    // Verified with the standardwebhooks package, not with the gateway's code.
    const wh = new Webhook(e.secret);
    for (const g of mine) {
      expect(g.headers['webhook-id']).toBe(g.json.id);
      expect(g.headers['webhook-id']).toMatch(/^evt_/);
      expect(g.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/=]+$/);
      expect(Math.abs(Number(g.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
      expect(wh.verify(g.body, g.headers as Record<string, string>)).toEqual(g.json);
    }
    expect(() => new Webhook(e.secret).verify(ok[0]!.body.replace('paid', 'PAID'), ok[0]!.headers as Record<string, string>)).toThrow();
    // The three attempts of checkout.paid carry the same event id and body.
    expect(new Set(mine.slice(0, 3).map((g) => g.body)).size).toBe(1);

    // data.object is what GET /v1/checkouts/{id} returned at that moment (the split section included).
    const paid = ok[0]!.json;
    expect(Object.keys(paid).sort()).toEqual(['created', 'data', 'id', 'type']);
    expect(paid.data.object).toMatchObject({ id, object: 'checkout', status: 'paid', amount: 10_000 });
    const now = (await h.api('get', `/v1/checkouts/${id}`).expect(200)).body;
    expect(Object.keys(paid.data.object).sort()).toEqual(Object.keys(now).sort());
    const split = ok[1]!.json.data.object as { object: string; status: string; batches: Array<{ state: string; receivers: unknown[] }> };
    expect(split).toMatchObject({ object: 'split', status: 'succeeded' });
    expect(split.batches.every((b) => b.state === 'succeeded')).toBe(true);

    // The event API shows both, filterable, with every attempt.
    const list = await call('get', `/v1/events?checkout_id=${id}`).expect(200);
    expect(list.body.data.map((x: { type: string }) => x.type)).toEqual(['split.succeeded', 'checkout.paid']);
    const onlyPaid = await call('get', `/v1/events?checkout_id=${id}&type=checkout.paid`).expect(200);
    expect(onlyPaid.body.data).toHaveLength(1);
    const detail = await call('get', `/v1/events/${paid.id}`).expect(200);
    expect(detail.body.data).toEqual(paid.data);
    expect(detail.body.deliveries).toHaveLength(1);
    expect(detail.body.deliveries[0]).toMatchObject({ endpoint_id: e.id, status: 'delivered' });
    const attempts = detail.body.deliveries[0].attempts as Array<{ status: number; response: string; duration_ms: number; attempted_at: string }>;
    expect(attempts.map((a) => [a.status, a.response])).toEqual([[500, 'not now'], [500, 'not now'], [200, 'ok']]);
    expect(attempts.every((a) => a.duration_ms >= 0 && !Number.isNaN(Date.parse(a.attempted_at)))).toBe(true);
  } finally {
    await rx.close();
  }
});

it('When the secret is rotated, then deliveries carry two v1 signatures (old and new each verify) until the old one expires', async () => {
  const rx = await startReceiver();
  try {
    const e = await endpoint(rx.url, { events: ENDED });
    const rot = await call('post', `/v1/webhook_endpoints/${e.id}/rotate_secret`).expect(200);
    expect(rot.body.secret).toMatch(/^whsec_/);
    expect(rot.body.secret).not.toBe(e.secret);
    expect(Date.parse(rot.body.previous_secret_expires_at) - Date.now()).toBeGreaterThan(23.9 * 3600_000);

    const first = await closedCheckout();
    const g1 = await waitFor(async () => rx.got.find((g) => g.json.data.object.id === first), 10_000, 'delivery after rotation');
    expect(String(g1.headers['webhook-signature']).split(' ')).toHaveLength(2);
    new Webhook(e.secret).verify(g1.body, g1.headers as Record<string, string>);
    new Webhook(rot.body.secret).verify(g1.body, g1.headers as Record<string, string>);

    // 24 h later the old secret no longer signs.
    await h.db.prisma.webhookEndpoint.update({ where: { id: e.id }, data: { previousSecretExpiresAt: new Date(Date.now() - 1000) } });
    const second = await closedCheckout();
    const g2 = await waitFor(async () => rx.got.find((g) => g.json.data.object.id === second), 10_000, 'delivery after expiry');
    expect(String(g2.headers['webhook-signature']).split(' ')).toHaveLength(1);
    new Webhook(rot.body.secret).verify(g2.body, g2.headers as Record<string, string>);
    expect(() => new Webhook(e.secret).verify(g2.body, g2.headers as Record<string, string>)).toThrow();
  } finally {
    await rx.close();
  }
});

it('When an endpoint flagged as failing answers 2xx again, then the delivery is recorded and the flag is cleared; a healthy endpoint is left as it is', async () => {
  const rx = await startReceiver();
  try {
    const flagged = await endpoint(rx.url, { events: ENDED });
    const healthy = await endpoint(rx.url.replace('/hooks', '/other'), { events: ENDED });
    const since = new Date(Date.now() - 3600_000);
    await h.db.prisma.webhookEndpoint.update({ where: { id: flagged.id }, data: { failingSince: since } });
    const before = await h.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: healthy.id } });
    const id = await closedCheckout();
    await waitFor(async () => rx.got.filter((g) => g.json.data.object.id === id).length === 2, 10_000, 'both deliveries');
    const ep = await waitFor(async () => {
      const e = (await call('get', `/v1/webhook_endpoints/${flagged.id}`).expect(200)).body;
      return e.failing_since === null ? e : null;
    }, 5_000, 'flag cleared');
    expect(ep.failing_since).toBeNull();
    expect((await h.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: healthy.id } })).updatedAt).toEqual(before.updatedAt);
    const ev = await h.db.prisma.merchantEvent.findFirstOrThrow({ where: { checkoutId: id } });
    const deliveries = await h.db.prisma.webhookDelivery.findMany({ where: { eventId: ev.id } });
    expect(deliveries.map((d) => [d.status, d.attempts, d.leaseUntil])).toEqual([['delivered', 1, null], ['delivered', 1, null]]);
    expect(await h.db.prisma.webhookAttempt.count({ where: { eventId: ev.id, httpStatus: 200 } })).toBe(2);
  } finally {
    await rx.close();
  }
});

it('When an event is redelivered, then the receiver gets the same event id and body again and the event shows both attempts', async () => {
  const rx = await startReceiver();
  try {
    const e = await endpoint(rx.url);
    const id = await closedCheckout();
    const g = await waitFor(async () => rx.got.find((x) => x.json.data.object.id === id), 10_000, 'first delivery');
    await call('post', `/v1/events/${g.json.id}/redeliver`).send({}).expect(202);
    const again = await waitFor(async () => {
      const all = rx.got.filter((x) => x.json.id === g.json.id);
      return all.length === 2 ? all : null;
    }, 10_000, 'redelivery');
    expect(again[1]!.body).toBe(again[0]!.body);
    expect(again[1]!.headers['webhook-id']).toBe(g.json.id);
    const detail = await waitFor(async () => {
      const d = (await call('get', `/v1/events/${g.json.id}`).expect(200)).body;
      return d.deliveries[0].status === 'delivered' && d.deliveries[0].attempts.length === 2 ? d : null;
    }, 5_000, 'second attempt recorded');
    expect(detail.deliveries[0].endpoint_id).toBe(e.id);
  } finally {
    await rx.close();
  }
});

it('When an endpoint hangs, then another endpoint still gets every event promptly, and events of other checkouts are not held up', async () => {
  const hang = await startReceiver(() => 'hang');
  const fine = await startReceiver();
  try {
    await endpoint(hang.url.replace('/hooks', '/hang'), { events: ENDED });
    await endpoint(fine.url, { events: ENDED });
    // More checkouts than the hanging endpoint's share of delivery slots (a quarter of 32).
    const ids = await Promise.all(Array.from({ length: 12 }, () => closedCheckout()));
    await waitFor(async () => ids.every((id) => fine.got.some((g) => g.json.data.object.id === id)), 30_000, 'all events at the healthy endpoint');
    // All of that happened while the hanging endpoint's attempts were still open (timeout 60 s).
    expect(await h.db.prisma.webhookAttempt.count({ where: { error: { contains: 'no answer' } } })).toBe(0);
    expect(hang.got.length).toBeGreaterThan(0);
    // At most a quarter of the process's delivery slots ever went to the hanging endpoint.
    expect(hang.got.length).toBeLessThanOrEqual(Math.floor(h.config.WEBHOOK_CONCURRENCY / 4));
  } finally {
    await hang.close();
    await fine.close();
  }
}, 120_000);

it('When another merchant asks for an endpoint or an event, then 404, and its lists do not show them', async () => {
  const rx = await startReceiver();
  try {
    const e = await endpoint(rx.url);
    const id = await closedCheckout();
    const g = await waitFor(async () => rx.got.find((x) => x.json.data.object.id === id), 10_000, 'delivery');
    for (const [m, p] of [
      ['get', `/v1/webhook_endpoints/${e.id}`],
      ['patch', `/v1/webhook_endpoints/${e.id}`],
      ['delete', `/v1/webhook_endpoints/${e.id}`],
      ['post', `/v1/webhook_endpoints/${e.id}/rotate_secret`],
      ['get', `/v1/events/${g.json.id}`],
      ['post', `/v1/events/${g.json.id}/redeliver`],
    ] as const) {
      const r = await call(m, p, OTHER_API_KEY).send(m === 'patch' ? { disabled: true } : {});
      expect([p, r.status, r.body.error?.code]).toEqual([p, 404, 'NOT_FOUND']);
    }
    expect((await call('get', '/v1/webhook_endpoints', OTHER_API_KEY).expect(200)).body.data).toEqual([]);
    expect((await call('get', `/v1/events?checkout_id=${id}`, OTHER_API_KEY).expect(200)).body.data).toEqual([]);
    expect(await h.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: e.id } })).toMatchObject({ disabled: false, deletedAt: null });
  } finally {
    await rx.close();
  }
});

it('When the shopper returns after paying, then the way back is return_url with checkout_id and out_trade_no added and its own parameters kept', async () => {
  const { id, outTradeNo } = await paidCheckout(h, { return_url: 'https://shop.example.com/done?order=7&lang=zh' });
  const c = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
  const html = (await h.http().get(`/checkout/${id}/result`).expect(200)).text;
  const expected = `https://shop.example.com/done?order=7&lang=zh&checkout_id=${id}&out_trade_no=${c.outTradeNo}`;
  expect(html).toContain(`href="${expected.replace(/&/g, '&amp;')}"`);
  expect(html).toContain('即将返回商户');
  expect(outTradeNo).toBeTruthy();
});

it('When the sandbox demo shop has its built-in receiver, then it gets the sandbox merchant\'s events, verified with standardwebhooks, and lists them', async () => {
  await createMerchant(h.db.prisma, { id: SANDBOX_MERCHANT_ID, name: '演示商户', apiKey: h.config.SANDBOX_API_KEY });
  await ensureDemoReceiver(h.deps);
  await ensureDemoReceiver(h.deps); // once only
  const eps = await call('get', '/v1/webhook_endpoints', h.config.SANDBOX_API_KEY).expect(200);
  expect(eps.body.data).toHaveLength(1);
  expect(eps.body.data[0].url).toBe(`${h.gatewayUrl}/demo/webhooks/receiver`);

  const c = await call('post', '/v1/checkouts', h.config.SANDBOX_API_KEY).send(checkoutBody()).expect(201);
  await call('post', `/v1/checkouts/${c.body.id}/close`, h.config.SANDBOX_API_KEY);
  const got = await waitFor(async () => {
    const r = await h.http().get('/demo/webhooks').set('Accept', 'application/json').expect(200);
    return (r.body.received as Array<{ checkoutId: string; verified: boolean; answered: number; type: string }>).find((x) => x.checkoutId === c.body.id);
  }, 10_000, 'the demo receiver to get the event');
  expect(got).toMatchObject({ verified: true, answered: 200 });
  expect(ENDED).toContain(got.type);
  // A forged delivery is refused by the receiver.
  const forged = await h.http().post('/demo/webhooks/receiver').set('content-type', 'application/json')
    .set('webhook-id', 'evt_forged').set('webhook-timestamp', String(Math.floor(Date.now() / 1000))).set('webhook-signature', 'v1,AAAA')
    .send('{"id":"evt_forged","type":"checkout.paid","data":{"object":{}}}');
  expect(forged.status).toBe(400);
  const page = await h.http().get('/demo/webhooks').expect(200);
  expect(page.text).toContain('Webhook 接收记录');
});

import request from 'supertest';
import { API_KEY, checkoutBody, OTHER_API_KEY, startHarness, type Harness } from '../support/harness';
import { paidCheckout } from './split-support';

/**
 * Isolation: every route of the merchant API, taken from the OpenAPI document (so a new route cannot
 * be forgotten), called as merchant B against merchant A's objects, must answer 404 NOT_FOUND (never
 * 403, which would confirm the object exists) and change nothing.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

type Op = { method: string; path: string; parameters?: Array<{ name: string; in: string; required?: boolean }>; requestBody?: unknown };

const receiver = { type: 'PERSONAL_OPENID', account: 'o_receiver_isolation_0001', amount: 10, description: 'isolation' };

/**
 * Valid bodies per route, so a 404 proves the ownership check and not a validation error. A new route
 * without an entry here is sent `{}`; if it then answers anything but 404 the test names it.
 */
const BODIES: Record<string, unknown> = {
  'PUT /v1/checkouts/{id}/split-plan': { receivers: [receiver] },
  'POST /v1/checkouts/{id}/splits': { receivers: [receiver] },
  'POST /v1/checkouts/{id}/splits/finish': {},
  'POST /v1/checkouts/{id}/close': undefined,
  'POST /v1/checkouts/{id}/refunds': { amount: 1 },
  'PATCH /v1/webhook_endpoints/{id}': { description: 'taken over' },
};

it('When merchant B calls every merchant route with merchant A\'s objects, then each is a 404 and A\'s objects are unchanged', async () => {
  const a = await h.api('post', '/v1/checkouts', API_KEY).send(checkoutBody({ profit_sharing: { receivers: [receiver] } })).expect(201);
  // A's objects of the other modules: a webhook endpoint, and a paid checkout with its event and a refund.
  const hook = await h.api('post', '/v1/webhook_endpoints', API_KEY).send({ url: 'https://merchant-a.example.com/hooks' }).expect(201);
  const paid = await paidCheckout(h, {});
  const refund = await h.api('post', `/v1/checkouts/${paid.id}/refunds`, API_KEY).set('Idempotency-Key', 'iso-a-refund').send({ amount: 1 }).expect(201);
  const event = await h.db.prisma.merchantEvent.findFirstOrThrow({ where: { merchantId: 'mch_test' } });
  const keysOfA = await h.db.prisma.idempotencyRecord.count({ where: { merchantId: 'mch_test' } });
  const before = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: a.body.id } });
  /** A's object for each path parameter (other modules' routes add theirs here). */
  const objectFor = (path: string, param: string): string => {
    if (param === 'id' && path.startsWith('/v1/checkouts/')) return a.body.id;
    if (param === 'id' && path.startsWith('/v1/webhook_endpoints/')) return hook.body.id;
    if (param === 'id' && path.startsWith('/v1/events/')) return event.id;
    if (param === 'id' && path.startsWith('/v1/refunds/')) return refund.body.id;
    throw new Error(`no fixture object of merchant A for {${param}} in ${path}: add one to this test`);
  };

  const doc = (await request(h.app).get('/openapi.json').expect(200)).body as { paths: Record<string, Record<string, Omit<Op, 'method' | 'path'>>> };
  const ops: Op[] = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ method, path, ...op })));
  expect(ops.length).toBeGreaterThanOrEqual(7);

  const walked: string[] = [];
  for (const op of ops) {
    const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
    const name = `${op.method.toUpperCase()} ${op.path}`;
    if (params.length === 0) continue; // collection routes: checked below
    const url = params.reduce((p, param) => p.replace(`{${param}}`, objectFor(op.path, param)), op.path);
    let req = request(h.app)[op.method as 'get' | 'post' | 'put' | 'patch' | 'delete'](url).set('Authorization', `Bearer ${OTHER_API_KEY}`);
    if (op.parameters?.some((p) => p.in === 'header' && p.name === 'Idempotency-Key')) req = req.set('Idempotency-Key', `iso-${walked.length}`);
    const body = name in BODIES ? BODIES[name] : {};
    const res = body === undefined ? await req : await req.send(body as object);
    expect({ route: name, status: res.status, code: res.body?.error?.code }).toEqual({ route: name, status: 404, code: 'NOT_FOUND' });
    walked.push(name);
  }
  expect(walked.sort()).toEqual(ops.filter((o) => o.path.includes('{')).map((o) => `${o.method.toUpperCase()} ${o.path}`).sort());

  // Collection routes: B's list never shows A's checkout, even searched by A's own order number.
  const list = await h.api('get', `/v1/checkouts?out_trade_no=${before.outTradeNo}`, OTHER_API_KEY).expect(200);
  expect(list.body.data).toEqual([]);
  const all = await h.api('get', '/v1/checkouts?limit=100', OTHER_API_KEY).expect(200);
  expect(all.body.data.map((c: { id: string }) => c.id)).not.toContain(a.body.id);
  // …and A's order number is A's alone: B may use the same one.
  await h.api('post', '/v1/checkouts', OTHER_API_KEY).send(checkoutBody({ out_trade_no: before.outTradeNo })).expect(201);

  const after = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: a.body.id } });
  expect(after).toEqual(before);
  expect(await h.db.prisma.split.count({ where: { checkoutId: a.body.id } })).toBe(0);
  expect(await h.db.prisma.idempotencyRecord.count({ where: { merchantId: 'mch_test' } })).toBe(keysOfA);
  expect(await h.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: hook.body.id } })).toMatchObject({ description: null, deletedAt: null, disabled: false });
  expect(await h.db.prisma.refund.count({ where: { checkoutId: paid.id } })).toBe(1);
});

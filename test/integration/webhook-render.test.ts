import { modules } from '../../src/gateway';
import { WebhookDispatcher } from '../../src/modules/webhooks/webhook.dispatcher';
import { eventRenderers } from '../../src/modules/webhooks/webhook.module';
import { checkoutBody, startHarness, type Harness } from '../support/harness';

/** The dispatcher's render pass: a batch of events rendered together, a failure kept to its own event. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

it('When a render pass meets an event whose object cannot be rendered, then that event carries the reference and its error while the others of the pass get their object', async () => {
  const a = await h.api('post', '/v1/checkouts').send(checkoutBody({ amount: 101 })).expect(201);
  const b = await h.api('post', '/v1/checkouts').send(checkoutBody({ amount: 102 })).expect(201);
  const missing = 'co_missing000000000000001';
  await h.db.prisma.merchantEvent.createMany({
    data: [
      { id: 'evt_r1', merchantId: 'mch_test', type: 'checkout.closed', checkoutId: a.body.id, objectKind: 'checkout', objectId: a.body.id },
      { id: 'evt_r2', merchantId: 'mch_test', type: 'checkout.closed', checkoutId: null, objectKind: 'checkout', objectId: missing },
      { id: 'evt_r3', merchantId: 'mch_test', type: 'checkout.closed', checkoutId: b.body.id, objectKind: 'checkout', objectId: b.body.id },
      { id: 'evt_r4', merchantId: 'mch_test', type: 'checkout.closed', checkoutId: b.body.id, objectKind: 'unknown_kind', objectId: 'x_1' },
    ],
  });
  const dispatcher = new WebhookDispatcher(h.deps, eventRenderers(h.deps, modules));
  try {
    expect(await dispatcher.renderPending()).toBe(4);
    expect(await dispatcher.renderPending()).toBe(0); // all rendered, none twice
  } finally {
    await dispatcher.close();
  }
  const ev = async (id: string) => {
    const e = await h.db.prisma.merchantEvent.findUniqueOrThrow({ where: { id } });
    return { body: JSON.parse(e.body!) as { id: string; type: string; data: { object: Record<string, unknown> } }, error: e.renderError, renderedAt: e.renderedAt };
  };
  for (const [id, c] of [['evt_r1', a], ['evt_r3', b]] as const) {
    const got = await ev(id);
    expect(got.error).toBeNull();
    expect(got.body).toMatchObject({ id, type: 'checkout.closed' });
    expect(got.body.data.object).toEqual((await h.api('get', `/v1/checkouts/${c.body.id}`).expect(200)).body);
  }
  const lost = await ev('evt_r2');
  expect(lost.body.data.object).toEqual({ id: missing, object: 'checkout' });
  expect(lost.error).toContain(missing);
  expect(lost.renderedAt).not.toBeNull();
  const unknown = await ev('evt_r4');
  expect(unknown.body.data.object).toEqual({ id: 'x_1', object: 'unknown_kind' });
  expect(unknown.error).toBe('no renderer for unknown_kind');
});

it('When two processes render the same new events at once, then each body is stored once and both agree', async () => {
  const c = await h.api('post', '/v1/checkouts').send(checkoutBody({ amount: 103 })).expect(201);
  await h.db.prisma.merchantEvent.createMany({
    data: Array.from({ length: 6 }, (_, i) => ({ id: `evt_twice${i}`, merchantId: 'mch_test', type: 'checkout.closed', checkoutId: c.body.id, objectKind: 'checkout', objectId: c.body.id })),
  });
  const one = new WebhookDispatcher(h.deps, eventRenderers(h.deps, modules));
  const two = new WebhookDispatcher(h.deps, eventRenderers(h.deps, modules));
  try {
    await Promise.all([one.renderPending(), two.renderPending()]);
  } finally {
    await Promise.all([one.close(), two.close()]);
  }
  const rows = await h.db.prisma.merchantEvent.findMany({ where: { id: { startsWith: 'evt_twice' } } });
  expect(rows).toHaveLength(6);
  for (const r of rows) expect(JSON.parse(r.body!)).toMatchObject({ id: r.id, data: { object: { id: c.body.id } } });
});

import request from 'supertest';
import { API_KEY, checkoutBody, startHarness, type Harness } from '../support/harness';
import { startReceiver } from '../support/webhook-receiver';
import { waitFor } from './split-support';

// Production mode: loopback is not allowed (the sandbox allows it for its built-in receiver).
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { APP_MODE: 'production', WEBHOOK_ALLOW_LOOPBACK: 'false', WEBHOOK_POLL_MS: '50', WEBHOOK_RETRY_SCHEDULE: '0.1' } });
  await h.startBackground();
});
afterAll(async () => h?.close());

const call = (method: 'get' | 'post', path: string) => request(h.app)[method](path).set('Authorization', `Bearer ${API_KEY}`);

it('When a loopback IP literal is registered in production, then 400 and nothing is written', async () => {
  for (const url of ['http://127.0.0.1:8080/hooks', 'http://[::1]/hooks', 'http://[::ffff:127.0.0.1]/hooks', 'https://192.168.1.10/hooks']) {
    const r = await call('post', '/v1/webhook_endpoints').send({ url }).expect(400);
    expect([url, r.body.error.code, r.body.error.field]).toEqual([url, 'VALIDATION_FAILED', 'url']);
  }
  expect(await h.db.prisma.webhookEndpoint.count()).toBe(0);
});

it('When a host name resolves to a loopback address, then the delivery is refused at connect time, the receiver gets nothing, and after the last retry the delivery fails and the endpoint is flagged', async () => {
  const rx = await startReceiver();
  try {
    // A name, not an IP literal: registration cannot know where it points; the connect-time check does.
    const e = (await call('post', '/v1/webhook_endpoints').send({ url: `http://localhost:${rx.port}/hooks` }).expect(201)).body;
    const c = await call('post', '/v1/checkouts').send(checkoutBody()).expect(201);
    // 200, or 409 when the sweeper expired it first (close moves expires_at to now): either way one event.
    expect([200, 409]).toContain((await call('post', `/v1/checkouts/${c.body.id}/close`)).status);
    const ev = await waitFor(async () => {
      const list = (await call('get', `/v1/events?checkout_id=${c.body.id}`).expect(200)).body.data;
      if (!list.length) return null;
      const d = (await call('get', `/v1/events/${list[0].id}`).expect(200)).body;
      return d.deliveries[0]?.status === 'failed' ? d : null;
    }, 15_000, 'the delivery to fail');
    expect(ev.deliveries[0].attempts).toHaveLength(2);
    for (const a of ev.deliveries[0].attempts) {
      expect(a.status).toBeNull();
      expect(a.error).toMatch(/not allowed/);
    }
    expect(rx.got).toHaveLength(0);
    const ep = (await call('get', `/v1/webhook_endpoints/${e.id}`).expect(200)).body;
    expect(ep.failing_since).not.toBeNull();
  } finally {
    await rx.close();
  }
});

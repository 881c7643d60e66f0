import request from 'supertest';
import { createApp } from '../../src/app';
import { createRedis } from '../../src/lib/redis';
import { checkoutBody, startHarness, UA, type Harness } from '../support/harness';

let h: Harness;
const dead = createRedis('redis://127.0.0.1:1');
beforeAll(async () => {
  h = await startHarness({ env: { PAYMENT_QUERY_AFTER_SECONDS: '0' } });
});
afterAll(async () => {
  dead.disconnect();
  await h?.close();
});

it('When Redis is down, then /healthz answers 503 quickly instead of hanging', async () => {
  const app = createApp({ ...h.deps, redis: dead });
  const t = Date.now();
  await request(app).get('/healthz').timeout(5000).expect(503);
  expect(Date.now() - t).toBeLessThan(3000);
});

it('When Redis is down, then the shopper status poll still answers (the throttle is skipped, not waited on)', async () => {
  const app = createApp({ ...h.deps, redis: dead });
  const c = await h.api('post', '/v1/checkouts').send(checkoutBody()).expect(201);
  await request(app).get(`/checkout/${c.body.id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
  await request(app).get(`/checkout/${c.body.id}/result`).set('Accept', 'application/json').timeout(5000).expect(200);
  const res = await request(app).get(`/checkout/${c.body.id}/status`).timeout(5000).expect(200);
  expect(res.body.status).toBe('open');
});

import type { Server } from 'node:http';
import type { Pool } from 'pg';
import request from 'supertest';
import { buildNotify } from '../../bench/load';
import { createApp, type AppDeps } from '../../src/app';
import { modules, outboxHandlers } from '../../src/gateway';
import { dispatchOutboxOnce } from '../../src/jobs/outbox.dispatcher';
import { eventRenderers } from '../../src/modules/webhooks/webhook.module';
import { WebhookDispatcher } from '../../src/modules/webhooks/webhook.dispatcher';
import { createMerchantCache, MERCHANT_KEY_REVOKED_CHANNEL, type MerchantCache } from '../../src/http/merchant-cache';
import { createPrisma, type PrismaClient } from '../../src/lib/prisma';
import { createRedis } from '../../src/lib/redis';
import { observedPool } from '../support/observed-pool';
import { API_KEY, checkoutBody, startHarness, UA, type Harness } from '../support/harness';

/**
 * Round trips to PostgreSQL and Redis of each hot request, counted at the drivers (every pg
 * `query` and every Redis command is one trip), so a regression fails CI without timing anything.
 * Budgets: raise one only with a reason written here.
 */
const BUDGET = {
  // Merchant from the in-process cache (src/http/merchant-cache.ts), then one INSERT … RETURNING.
  create: { db: 1, redis: 0 },
  // Checkout + merchant name + the (fresh) channel order of this payer in one SELECT.
  firstPageExistingOrder: { db: 1, redis: 0 },
  // The verified notify stored and its order read in one statement (the insert commits before any
  // check, 5xx if it cannot), then one statement that applies it: both compare-and-sets, the outbox
  // row, the merchant event with its deliveries, and the notify's outcome (was 12:
  // insert, 2 reads, BEGIN, 2 updates, outbox, event, endpoints, pg_notify, COMMIT, outcome update).
  notifyApplied: { db: 2, redis: 0 },
  // Same read; the order is already paid (terminal), so it is a duplicate: the outcome update only.
  notifyDuplicate: { db: 2, redis: 0 },
  // GET /v1/checkouts/{id} of a paid checkout without profit sharing or refunds (also what rendering
  // its checkout.paid event reads): the checkout with its channel orders in one SELECT (was 2 typed
  // reads + 4 split-record reads).
  getPaidCheckout: { db: 1, redis: 0 },
  // The follow-ups of a burst of payments (a pass handles up to 20) without profit sharing and
  // without another open order: the outbox pass's claim finds that no handler has anything to do
  // (idleWhen) and marks them processed itself, 1 (was 3: the claim, the other open orders' read, the
  // done-mark; before passes, 1 + 2 per payment); the render pass reads the new events, their
  // checkouts in 1 (was 1 each) and stores the bodies in 1 (was 1 each).
  outboxPass: { db: 1, redis: 0 },
  renderPass: { db: 3, redis: 0 },
  // The webhook dispatcher's pass when those payments' merchant has no endpoint: a claim of what is
  // due, then the render pass; its write says that no event of the pass has a pending delivery, so no
  // second claim (was 5: the claim ran again after every render).
  dispatcherPassNoEndpoint: { db: 4, redis: 0 },
};

let h: Harness;
let app: ReturnType<typeof createApp>;
let server: Server;
let pool: Pool;
let prisma: PrismaClient;
let redis: AppDeps['redis'];
let merchantCache: MerchantCache;
const trips = { db: 0, redis: 0, sql: [] as string[] };

beforeAll(async () => {
  h = await startHarness();
  // The same gateway, on a pool and a Redis client whose every round trip is counted.
  pool = observedPool(h.db.url, (q) => {
    trips.db++;
    trips.sql.push(q.text);
  });
  prisma = createPrisma(pool);
  redis = createRedis(h.config.REDIS_URL);
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((...a: Parameters<typeof send>) => {
    trips.redis++;
    return send(...a);
  }) as typeof send;
  merchantCache = createMerchantCache(h.deps.redis);
  app = createApp({ ...h.deps, prisma, redis, merchantCache }, modules);
  server = app.listen(0);
  await subscribers(1);
});

/** Waits until `n` merchant caches listen for revocations (their subscription is asynchronous). */
async function subscribers(n: number) {
  for (let i = 0; i < 200; i++) {
    const [, count] = (await h.deps.redis.pubsub('NUMSUB', MERCHANT_KEY_REVOKED_CHANNEL)) as [string, number];
    if (Number(count) >= n) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('merchant caches did not subscribe');
}
afterAll(async () => {
  server?.close();
  await prisma?.$disconnect();
  await pool?.end();
  await redis?.quit();
  await merchantCache?.close();
  await h?.close();
});

async function count(fn: () => Promise<unknown>): Promise<{ db: number; redis: number; sql: string[] }> {
  trips.db = 0;
  trips.redis = 0;
  trips.sql = [];
  await fn();
  return { db: trips.db, redis: trips.redis, sql: trips.sql };
}

const within = (got: { db: number; redis: number; sql: string[] }, budget: { db: number; redis: number }) => {
  if (got.db > budget.db || got.redis > budget.redis) throw new Error(`over budget ${JSON.stringify(budget)}: ${got.db} db, ${got.redis} redis\n${got.sql.join('\n')}`);
  expect(got.db).toBeGreaterThan(0);
};

it('When a merchant creates a checkout, then it costs at most its budget of round trips', async () => {
  await request(app).post('/v1/checkouts').set('Authorization', `Bearer ${API_KEY}`).send(checkoutBody()).expect(201); // warms the merchant cache
  const got = await count(() => request(app).post('/v1/checkouts').set('Authorization', `Bearer ${API_KEY}`).send(checkoutBody()).expect(201));
  within(got, BUDGET.create);
});

it('When a shopper reloads a checkout whose channel order exists, then the page costs at most its budget', async () => {
  const c = await request(app).post('/v1/checkouts').set('Authorization', `Bearer ${API_KEY}`).send(checkoutBody({ payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' } })).expect(201);
  await request(app).get(`/checkout/${c.body.id}`).set('User-Agent', UA.wechatIos).expect(200);
  const got = await count(() => request(app).get(`/checkout/${c.body.id}`).set('User-Agent', UA.wechatIos).expect(200));
  within(got, BUDGET.firstPageExistingOrder);
  const h5 = await request(app).post('/v1/checkouts').set('Authorization', `Bearer ${API_KEY}`).send(checkoutBody()).expect(201);
  await request(app).get(`/checkout/${h5.body.id}`).set('User-Agent', UA.safariIos).expect(200);
  within(await count(() => request(app).get(`/checkout/${h5.body.id}`).set('User-Agent', UA.safariIos).expect(200)), BUDGET.firstPageExistingOrder);
});

it('When a notify is applied and then repeated, then each copy costs at most its budget', async () => {
  const c = await request(app).post('/v1/checkouts').set('Authorization', `Bearer ${API_KEY}`).send(checkoutBody({ amount: 1999 })).expect(201);
  await request(app).get(`/checkout/${c.body.id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
  const order = await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: c.body.id } });
  const n = buildNotify({ platformKey: h.keys.platformPrivateKey, apiv3Key: h.keys.apiv3Key, serial: h.keys.platformPublicKeyId }, {
    mchid: h.config.WECHATPAY_MCHID, appid: h.config.WECHATPAY_APPID, out_trade_no: order.outTradeNo, transaction_id: `4200${Date.now()}`,
    trade_type: 'NATIVE', trade_state: 'SUCCESS', trade_state_desc: '支付成功', bank_type: 'OTHERS', attach: '', success_time: '2026-11-25T18:00:00+08:00',
    payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' }, amount: { total: 1999, payer_total: 1999, currency: 'CNY', payer_currency: 'CNY' },
  });
  const post = () => request(app).post('/notify/wechatpay/transactions').set(n.headers).send(n.body).expect(204);
  const applied = await count(post);
  within(applied, BUDGET.notifyApplied);
  // No NOTIFY in the payment's statement: it held PostgreSQL's notification-queue lock through every
  // payment's commit (webhook.wake.ts); the process wakes its own dispatcher instead.
  expect(applied.sql.join('\n')).not.toContain('pg_notify');
  within(await count(post), BUDGET.notifyDuplicate);
  const paid = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.body.id } });
  expect(paid.status).toBe('paid');
  expect(await h.db.prisma.outboxEvent.count({ where: { aggregateId: c.body.id, type: 'payment.succeeded' } })).toBe(1);
  const got = await count(() => request(app).get(`/v1/checkouts/${c.body.id}`).set('Authorization', `Bearer ${API_KEY}`).expect(200));
  within(got, BUDGET.getPaidCheckout);
});

it('When a burst of payments is followed up, then the outbox and render passes cost round trips per pass, not per payment', async () => {
  const payments = 4;
  const ids: string[] = [];
  for (let i = 0; i < payments; i++) {
    const c = await request(app).post('/v1/checkouts').set('Authorization', `Bearer ${API_KEY}`).send(checkoutBody({ amount: 500 + i })).expect(201);
    await request(app).get(`/checkout/${c.body.id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
    const order = await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: c.body.id } });
    const n = buildNotify({ platformKey: h.keys.platformPrivateKey, apiv3Key: h.keys.apiv3Key, serial: h.keys.platformPublicKeyId }, {
      mchid: h.config.WECHATPAY_MCHID, appid: h.config.WECHATPAY_APPID, out_trade_no: order.outTradeNo, transaction_id: `4201${Date.now()}${i}`,
      trade_type: 'NATIVE', trade_state: 'SUCCESS', trade_state_desc: '支付成功', bank_type: 'OTHERS', attach: '', success_time: '2026-11-25T18:00:00+08:00',
      payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' }, amount: { total: 500 + i, payer_total: 500 + i, currency: 'CNY', payer_currency: 'CNY' },
    });
    await request(app).post('/notify/wechatpay/transactions').set(n.headers).send(n.body).expect(204);
    ids.push(c.body.id);
  }
  const deps = { ...h.deps, prisma };
  const handlers = outboxHandlers(deps);
  // Earlier tests' payments are in the same database: handle them first, so that the pass counted is this burst's.
  const pending = await h.db.prisma.outboxEvent.count({ where: { processedAt: null, aggregateId: { notIn: ids } } });
  if (pending) await dispatchOutboxOnce(deps, handlers, { batch: pending });
  let handled = 0;
  const outbox = await count(async () => (handled = await dispatchOutboxOnce(deps, handlers)));
  expect(handled).toBe(payments);
  within(outbox, BUDGET.outboxPass);
  expect(await h.db.prisma.outboxEvent.count({ where: { aggregateId: { in: ids }, processedAt: null } })).toBe(0);

  const dispatcher = new WebhookDispatcher(deps, eventRenderers(deps, modules));
  try {
    const earlier = await h.db.prisma.merchantEvent.count({ where: { renderedAt: null, checkoutId: { notIn: ids } } });
    if (earlier) await dispatcher.renderPending(earlier);
    let rendered = 0;
    const render = await count(async () => (rendered = await dispatcher.renderPending()));
    expect(rendered).toBe(payments);
    within(render, BUDGET.renderPass);
    // The same burst again, unrendered, through a whole pass of the dispatcher.
    expect(await h.db.prisma.webhookEndpoint.count({ where: { merchantId: 'mch_test' } })).toBe(0);
    await h.db.prisma.merchantEvent.updateMany({ where: { checkoutId: { in: ids } }, data: { body: null, renderedAt: null } });
    const pass = await count(() => dispatcher.tick());
    within(pass, BUDGET.dispatcherPassNoEndpoint);
    expect(await h.db.prisma.merchantEvent.count({ where: { checkoutId: { in: ids }, renderedAt: null } })).toBe(0);
  } finally {
    await dispatcher.close();
  }
  // Each event's body is exactly what GET /v1/checkouts/{id} answers (the batch read maps as the one-by-one read).
  for (const id of ids) {
    const ev = await h.db.prisma.merchantEvent.findFirstOrThrow({ where: { checkoutId: id, type: 'checkout.paid' } });
    expect(ev.renderError).toBeNull();
    const got = await request(app).get(`/v1/checkouts/${id}`).set('Authorization', `Bearer ${API_KEY}`).expect(200);
    expect(JSON.parse(ev.body!).data.object).toEqual(got.body);
  }
});

it('When a key is revoked on one instance, then every instance stops answering from its cache at once', async () => {
  const other = createMerchantCache(h.deps.redis);
  try {
    await subscribers(2);
    let loads = 0;
    const load = async () => ({ id: 'mch_test', name: `load ${++loads}` });
    await other.get('hash-of-a-key', load);
    await other.get('hash-of-a-key', load);
    expect(loads).toBe(1);
    await merchantCache.invalidate('hash-of-a-key'); // the other instance's cache, through Redis
    for (let i = 0; i < 100 && (await other.get('hash-of-a-key', load))?.name === 'load 1'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(loads).toBe(2);
  } finally {
    await other.close();
  }
});

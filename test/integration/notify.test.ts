import { generateKeyPairSync, randomBytes } from 'node:crypto';
import request from 'supertest';
import { createApp } from '../../src/app';
import { createPrisma } from '../../src/lib/prisma';
import { startHarness, UA, type Harness } from '../support/harness';
import { buildNotify, openNativeCheckout } from '../support/notify';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

const openCheckout = (amount = 1999) => openNativeCheckout(h, amount);

const post = (n: { body: string; headers: Record<string, string> }) =>
  request(h.app).post('/notify/wechatpay/transactions').set(n.headers).send(n.body);

const attemptsFor = (outTradeNo: string) => h.sim.control.notifies.filter((a) => a.ref === outTradeNo);

const state = async (id: string) => {
  const c = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
  const outbox = await h.db.prisma.outboxEvent.count({ where: { aggregateId: id, type: 'payment.succeeded' } });
  return { status: c.status, transactionId: c.transactionId, outbox };
};

it('When a valid notify arrives, then the checkout is paid once, with its outbox row, and the raw notify is kept', async () => {
  const { id, tx } = await openCheckout();
  const n = buildNotify(h, tx);
  await post(n).expect(204);
  expect(await state(id)).toEqual({ status: 'paid', transactionId: tx.transaction_id, outbox: 1 });
  const log = await h.db.prisma.notifyLog.findFirstOrThrow({ where: { outTradeNo: tx.out_trade_no } });
  expect(log.body).toBe(n.body);
  expect(log.outcome).toBe('applied');
});

it('When the same notify arrives 10 times at once, then there is exactly one transition and every copy gets 2xx', async () => {
  const { id, tx } = await openCheckout();
  const n = buildNotify(h, tx);
  const answers = await Promise.all(Array.from({ length: 10 }, () => post(n)));
  expect(answers.map((a) => a.status)).toEqual(Array(10).fill(204));
  expect(await state(id)).toEqual({ status: 'paid', transactionId: tx.transaction_id, outbox: 1 });
  const outcomes = (await h.db.prisma.notifyLog.findMany({ where: { outTradeNo: tx.out_trade_no } })).map((l) => l.outcome).sort();
  expect(outcomes).toEqual(['applied', ...Array(9).fill('duplicate')]);
});

describe('When a notify must be refused, then WeChat gets 4xx {code,message} and nothing changes', () => {
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const cases: Array<[string, (h: Harness) => Parameters<typeof buildNotify>[2], number]> = [
    ['forged signature (another key)', () => ({ key: other }), 401],
    ['unknown serial', () => ({ serial: 'PUB_KEY_ID_0199999999999999999999999999' }), 401],
    ['stale timestamp (6 minutes old)', () => ({ ts: Math.floor(Date.now() / 1000) - 360 }), 401],
    ['timestamp from the future', () => ({ ts: Math.floor(Date.now() / 1000) + 360 }), 401],
    ['signature probe WECHATPAY/SIGNTEST/', () => ({ signature: 'WECHATPAY/SIGNTEST/' + randomBytes(32).toString('base64') }), 401],
    ['tampered ciphertext (validly signed)', () => ({ tamper: true }), 400],
  ];
  it.each(cases)('%s', async (_name, opt, status) => {
    const { id, tx } = await openCheckout();
    const res = await post(buildNotify(h, tx, opt(h)));
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ code: 'FAIL', message: expect.any(String) });
    expect(await state(id)).toEqual({ status: 'open', transactionId: null, outbox: 0 });
  });

  it('missing signature headers', async () => {
    const { id, tx } = await openCheckout();
    const n = buildNotify(h, tx);
    const res = await request(h.app).post('/notify/wechatpay/transactions').set('Content-Type', 'application/json').send(n.body);
    expect(res.status).toBe(401);
    expect((await state(id)).status).toBe('open');
  });

  it('body re-serialised after signing (whitespace changed)', async () => {
    const { id, tx } = await openCheckout();
    const n = buildNotify(h, tx);
    const res = await post({ ...n, body: JSON.stringify(JSON.parse(n.body), null, 1) });
    expect(res.status).toBe(401);
    expect((await state(id)).status).toBe('open');
  });

  it('amount that does not match our order', async () => {
    const { id, tx } = await openCheckout(1999);
    const res = await post(buildNotify(h, { ...tx, amount: { ...tx.amount, total: 1 } }));
    expect(res.status).toBe(400);
    expect(await state(id)).toEqual({ status: 'open', transactionId: null, outbox: 0 });
    expect((await h.db.prisma.notifyLog.findFirstOrThrow({ where: { outTradeNo: tx.out_trade_no } })).outcome).toBe('mismatch');
  });

  it('another mchid', async () => {
    const { id, tx } = await openCheckout();
    expect((await post(buildNotify(h, { ...tx, mchid: '1900000999' }))).status).toBe(400);
    expect((await state(id)).status).toBe('open');
  });

  it('unknown order', async () => {
    const { tx } = await openCheckout();
    expect((await post(buildNotify(h, { ...tx, out_trade_no: 'UNKNOWN_ORDER_123456' }))).status).toBe(404);
  });
});

it('When the database is down, then the notify is answered 5xx so WeChat retries', async () => {
  const { tx } = await openCheckout();
  const deadDb = createPrisma('postgresql://nobody:x@127.0.0.1:1/none');
  const app = createApp({ ...h.deps, prisma: deadDb });
  const n = buildNotify(h, tx);
  const res = await request(app).post('/notify/wechatpay/transactions').set(n.headers).send(n.body);
  expect(res.status).toBeGreaterThanOrEqual(500);
  expect(res.body.code).toBe('FAIL');
  await deadDb.$disconnect();
  // WeChat's retry then lands on a healthy gateway.
  await post(n).expect(204);
});

it('When the simulator pays and sends a probe first, duplicates and certificate-mode signatures, then one transition results', async () => {
  const { id, order } = await openCheckout();
  h.sim.control.setSigningMode('certificate');
  h.sim.control.notifyFaults({ signTestFirst: true, duplicate: 3 });
  try {
    h.sim.control.pay(order.outTradeNo);
    await h.sim.control.waitFor(() => attemptsFor(order.outTradeNo).filter((a) => a.status === 204).length >= 4, 8000);
  } finally {
    h.sim.control.notifyFaults({ signTestFirst: false, duplicate: 0 });
    h.sim.control.setSigningMode('public-key');
  }
  const probes = attemptsFor(order.outTradeNo).filter((a) => a.kind === 'probe');
  expect(probes.length).toBeGreaterThan(0);
  expect(probes.every((a) => a.status === 401)).toBe(true);
  const s = await state(id);
  expect(s.status).toBe('paid');
  expect(s.outbox).toBe(1);
});

it('When the notify is lost and WeChat retries after a 5xx, then the retry is applied', async () => {
  const { id, order } = await openCheckout();
  // The first attempt meets a database that refuses the raw notify's insert (a trigger raises once:
  // a sequence, not a row, counts the attempts, since the failed insert's transaction rolls back).
  await h.db.prisma.$executeRawUnsafe(`CREATE SEQUENCE notify_insert_attempts`);
  await h.db.prisma.$executeRawUnsafe(`CREATE FUNCTION refuse_first_notify() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN
      IF NEW.out_trade_no = '${order.outTradeNo}' AND nextval('notify_insert_attempts') = 1 THEN RAISE EXCEPTION 'connection lost'; END IF;
      RETURN NEW;
    END $f$`);
  await h.db.prisma.$executeRawUnsafe(`CREATE TRIGGER refuse_first_notify BEFORE INSERT ON notify_logs FOR EACH ROW EXECUTE FUNCTION refuse_first_notify()`);
  try {
    h.sim.control.pay(order.outTradeNo);
    await h.sim.control.waitFor(() => attemptsFor(order.outTradeNo).some((a) => a.status === 204), 8000);
  } finally {
    await h.db.prisma.$executeRawUnsafe(`DROP TRIGGER refuse_first_notify ON notify_logs`);
  }
  expect(attemptsFor(order.outTradeNo).map((a) => a.status)).toEqual([500, 204]);
  expect((await state(id)).status).toBe('paid');
});

it('When the shopper pays two channel orders of one checkout, then the first is the payment and the second is recorded as a double payment to refund', async () => {
  const { id, order: native } = await openCheckout();
  await h.http().get(`/checkout/${id}`).set('User-Agent', UA.safariIos).set('Accept', 'application/json').expect(200);
  const h5 = await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: id, tradeType: 'H5' } });
  h.sim.control.pay(native.outTradeNo);
  await h.sim.control.waitFor(() => attemptsFor(native.outTradeNo).some((a) => a.status === 204), 8000);
  h.sim.control.pay(h5.outTradeNo);
  await h.sim.control.waitFor(() => attemptsFor(h5.outTradeNo).some((a) => a.status === 204), 8000);
  const got = await h.api('get', `/v1/checkouts/${id}`).expect(200);
  expect(got.body.status).toBe('paid');
  expect(got.body.transaction_id).toBe(h.sim.control.transaction(native.outTradeNo)?.transactionId);
  expect(got.body.channel_orders.map((o: { status: string }) => o.status)).toEqual(['paid', 'paid']);
  const second = h.sim.control.transaction(h5.outTradeNo)!.transactionId!;
  expect(await h.db.prisma.outboxEvent.count({ where: { type: 'payment.double_paid', aggregateId: second } })).toBe(1);
  expect(await h.db.prisma.outboxEvent.count({ where: { type: 'payment.succeeded', aggregateId: id } })).toBe(1);
});

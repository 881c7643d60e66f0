import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { createApp } from '../../src/app';
import { modules } from '../../src/gateway';
import { createPrisma } from '../../src/lib/prisma';
import { purgeNotifyLogs } from '../../src/modules/payments/payment.notify';
import { REJECTED_BODY_BYTES } from '../../src/modules/payments/notify.intake';
import { startHarness, type Harness } from '../support/harness';
import { buildNotify, openNativeCheckout } from '../support/notify';
import { buildRefundNotify } from './refund-support';

/** Issue 8 §2: unauthenticated bytes cannot grow the database without bound; verified notifies are never limited. */
const PER_MINUTE = 10;
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { NOTIFY_REJECTED_PER_MINUTE: String(PER_MINUTE) } });
});
afterAll(async () => h?.close());

const NOTIFY = '/notify/wechatpay/transactions';
/** Each test speaks from its own address (trust proxy is loopback, so X-Forwarded-For is believed). */
const fromIp = (ip: string) => (t: request.Test) => t.set('X-Forwarded-For', ip);
const junk = (bytes: number) => JSON.stringify({ id: randomBytes(8).toString('hex'), pad: randomBytes(bytes / 2).toString('hex') }).slice(0, bytes);
const logStats = async () => {
  const [r] = await h.db.prisma.$queryRaw<Array<{ n: bigint; bytes: bigint | null }>>`SELECT count(*) AS n, sum(octet_length(body)) AS bytes FROM notify_logs`;
  return { n: Number(r!.n), bytes: Number(r!.bytes ?? 0) };
};

/** 100 forged 60 KB notifies to `path` from `ip`: all refused 4xx, at most the allowance stored, each cut short. */
async function forgedFlood(path: string, ip: string, kind: 'payment' | 'refund') {
  const before = await logStats();
  const startedMinute = Math.floor(Date.now() / 60_000);
  const statuses: number[] = [];
  for (let i = 0; i < 100; i++) {
    const res = await fromIp(ip)(request(h.app).post(path).set('Content-Type', 'application/json')
      .set('Wechatpay-Timestamp', String(Math.floor(Date.now() / 1000))).set('Wechatpay-Nonce', 'n').set('Wechatpay-Serial', h.keys.platformPublicKeyId)
      .set('Wechatpay-Signature', randomBytes(256).toString('base64'))).send(junk(60_000));
    statuses.push(res.status);
  }
  // The allowance is per clock minute: a slow machine may straddle a minute boundary.
  const windows = Math.floor(Date.now() / 60_000) - startedMinute + 1;
  const stored = statuses.filter((s) => s === 401).length;
  expect(stored).toBeGreaterThanOrEqual(PER_MINUTE);
  expect(stored).toBeLessThanOrEqual(PER_MINUTE * windows);
  expect(statuses.filter((s) => s === 429)).toHaveLength(100 - stored);
  const after = await logStats();
  expect(after.n - before.n).toBe(stored);
  expect(after.bytes - before.bytes).toBeLessThanOrEqual(stored * REJECTED_BODY_BYTES);
  const rows = await h.db.prisma.notifyLog.findMany({ where: { sourceIp: ip } });
  expect(rows.every((r) => r.kind === kind && r.outcome === 'rejected' && r.bodyBytes === 60_000 && Buffer.byteLength(r.body) <= REJECTED_BODY_BYTES)).toBe(true);
}

it('When 100 forged 60 KB notifies arrive from one address, then all are refused 4xx, at most the allowance is stored, each cut short', async () => {
  await forgedFlood(NOTIFY, '203.0.113.7', 'payment');
});

it('When an address is over its allowance, then a verified notify from it is still stored whole and applied', async () => {
  const ip = '203.0.113.8';
  for (let i = 0; i < PER_MINUTE + 3; i++) await fromIp(ip)(request(h.app).post(NOTIFY)).send('{}');
  const { id, tx } = await openNativeCheckout(h);
  const n = buildNotify(h, tx);
  await fromIp(ip)(request(h.app).post(NOTIFY).set(n.headers)).send(n.body).expect(204);
  expect((await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).status).toBe('paid');
  const log = await h.db.prisma.notifyLog.findFirstOrThrow({ where: { outTradeNo: tx.out_trade_no } });
  expect(log).toMatchObject({ body: n.body, outcome: 'applied', sourceIp: ip });
});

it('When a forged notify carries NUL characters, then it is refused 401, stored cut short, and nothing is logged at error level', async () => {
  const spy = jest.spyOn(h.deps.logger, 'error');
  try {
    const res = await fromIp('203.0.113.9')(request(h.app).post(NOTIFY).set('Content-Type', 'application/json')).send('{"id":"\u0000\u0000","x":"a\u0000b"}');
    expect(res.status).toBe(401);
    expect(spy).not.toHaveBeenCalled();
    const row = await h.db.prisma.notifyLog.findFirstOrThrow({ where: { sourceIp: '203.0.113.9' } });
    expect(row.body).toContain('\\u0000');
  } finally {
    spy.mockRestore();
  }
});

it('When PostgreSQL is down, then a forged notify is still a 4xx (only a verified one earns a 5xx)', async () => {
  const dead = createPrisma('postgresql://nobody:x@127.0.0.1:1/none');
  try {
    const app = createApp({ ...h.deps, prisma: dead });
    const res = await request(app).post(NOTIFY).set('Content-Type', 'application/json').send('{"forged":true}');
    expect(res.status).toBe(401);
  } finally {
    await dead.$disconnect();
  }
});

it('When a notify is signed by WeChat but cannot be decrypted, then it is kept whole (not cut, not limited) and answered 400', async () => {
  const { tx } = await openNativeCheckout(h);
  const n = buildNotify(h, tx, { tamper: true });
  const res = await fromIp('203.0.113.8')(request(h.app).post(NOTIFY).set(n.headers)).send(n.body);
  expect(res.status).toBe(400);
  const rows = await h.db.prisma.notifyLog.findMany({ where: { outcome: 'invalid' } });
  expect(rows.map((r) => r.body)).toContain(n.body);
});

it('When the retention purge runs, then rejected notifies go after their short retention and verified ones after the long one', async () => {
  const day = 86_400_000;
  const now = new Date();
  const mk = (id: string, outcome: string, ageDays: number) =>
    h.db.prisma.notifyLog.create({ data: { id, channel: 'wechatpay', kind: 'payment', headers: {}, body: '{}', outcome, receivedAt: new Date(now.getTime() - ageDays * day) } });
  await mk('ntf_old_rejected', 'rejected', 8);
  await mk('ntf_new_rejected', 'rejected', 6);
  await mk('ntf_old_applied', 'applied', 181);
  await mk('ntf_new_applied', 'applied', 179);
  await mk('ntf_old_invalid', 'invalid', 30);
  const out = await purgeNotifyLogs(h.db.prisma, { retentionDays: 180, rejectedRetentionDays: 7 }, now, 1);
  expect(out.rejected).toBeGreaterThanOrEqual(1);
  const left = (await h.db.prisma.notifyLog.findMany({ where: { id: { startsWith: 'ntf_' , in: ['ntf_old_rejected', 'ntf_new_rejected', 'ntf_old_applied', 'ntf_new_applied', 'ntf_old_invalid'] } } })).map((r) => r.id).sort();
  expect(left).toEqual(['ntf_new_applied', 'ntf_new_rejected', 'ntf_old_invalid']);
});

describe('refund notifies: the same policy as payment notifies', () => {
  const REFUND_NOTIFY = '/notify/wechatpay/refunds';
  const resource = (outRefundNo: string) => ({
    mchid: h.config.WECHATPAY_MCHID, out_trade_no: 'T_refund_storage', transaction_id: '4200000000000000000000000099', out_refund_no: outRefundNo,
    refund_id: '50300000000000000000000000099', refund_status: 'SUCCESS', success_time: '2026-12-02T12:00:00+08:00', user_received_account: '支付用户零钱',
    amount: { total: 1000, refund: 100, payer_total: 1000, payer_refund: 100 },
  });

  it('When 100 forged 60 KB refund notifies arrive from one address, then all are refused 4xx, at most the allowance is stored, each cut short', async () => {
    await forgedFlood(REFUND_NOTIFY, '198.51.100.7', 'refund');
  });

  it('When an address is over its allowance, then a verified refund notify from it is still stored whole and checked', async () => {
    const ip = '198.51.100.8';
    for (let i = 0; i < PER_MINUTE + 3; i++) await fromIp(ip)(request(h.app).post(REFUND_NOTIFY)).send('{}');
    const n = buildRefundNotify(h, resource('re_storage_unknown_1'));
    // Verified, for a refund we never made: a mismatch, not a 429.
    await fromIp(ip)(request(h.app).post(REFUND_NOTIFY).set(n.headers)).send(n.body).expect(404);
    const log = await h.db.prisma.notifyLog.findFirstOrThrow({ where: { kind: 'refund', body: n.body } });
    expect(log).toMatchObject({ outcome: 'mismatch', sourceIp: ip, outTradeNo: 'T_refund_storage', bodyBytes: Buffer.byteLength(n.body) });
    expect(log.eventId).toMatch(/^EV-/);
  });

  it('When PostgreSQL is down, then a forged refund notify is a 4xx and a verified one a 5xx (WeChat retries it)', async () => {
    const dead = createPrisma('postgresql://nobody:x@127.0.0.1:1/none');
    try {
      const app = createApp({ ...h.deps, prisma: dead }, modules);
      expect((await request(app).post(REFUND_NOTIFY).set('Content-Type', 'application/json').send('{"forged":true}')).status).toBe(401);
      const n = buildRefundNotify(h, resource('re_storage_unknown_2'));
      expect((await request(app).post(REFUND_NOTIFY).set(n.headers).send(n.body)).status).toBe(500);
    } finally {
      await dead.$disconnect();
    }
  });

  it('When a refund notify is signed by WeChat but cannot be decrypted, then it is kept whole (not cut, not limited) and answered 400', async () => {
    const n = buildRefundNotify(h, resource('re_storage_unknown_3'), { keys: { ...h.keys, apiv3Key: 'k'.repeat(32) } });
    const res = await fromIp('198.51.100.7')(request(h.app).post(REFUND_NOTIFY).set(n.headers)).send(n.body);
    expect(res.status).toBe(400);
    expect(await h.db.prisma.notifyLog.findFirst({ where: { kind: 'refund', outcome: 'invalid', body: n.body } })).not.toBeNull();
  });
});

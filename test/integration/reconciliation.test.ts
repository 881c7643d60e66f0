/**
 * Daily bill reconciliation (issue 12 §2) through the real gateway, PostgreSQL and the simulator's bills
 * (which publishes a day's bills at once here, as in the sandbox). The day is today's Beijing day.
 */
import request from 'supertest';
import { runCli } from '../../src/cli/admin';
import { sandboxEnv } from '../../src/config/sandbox';
import { createConsoleUser } from '../../src/modules/console/console.users';
import { beijingDate as beijingDayOf } from '../../src/lib/beijing';
import { reconcileDue } from '../../src/modules/reconciliation/reconcile.schedule';
import { claimRun, DEFAULT_ACCOUNT, ensureRun, executeRun, reconcileDay } from '../../src/modules/reconciliation/reconcile.service';
import { addPartnerAccountOnOwnSimulator } from '../support/accounts';
import { checkoutBody, OTHER_API_KEY, startHarness, TEST_KEYS_DIR, UA, type Harness } from '../support/harness';
import { testRedisUrl } from '../support/redis';
import { ENV as REFUND_ENV, postRefund, waitForRefund } from './refund-support';
import { paidCheckout, receivers, waitFor, waitForSplitStatus } from './split-support';

let h: Harness;
const day = beijingDayOf(new Date());
let plain: { id: string; outTradeNo: string };
let refundNo: string;
let splitOrderNo: string;

beforeAll(async () => {
  h = await startHarness({
    env: { ...REFUND_ENV, PROFIT_SHARING_POLL_MS: '20', RECONCILE_BILLS_RETRY_MS: '300' },
    sim: { bills: { publishImmediately: true } },
  });
  await h.startBackground();
  plain = await paidCheckout(h, { amount: 1234 });
  const refunded = await paidCheckout(h, { amount: 5000 });
  const r = await postRefund(h, refunded.id, { amount: 1500, reason: '对账测试' }).expect(201);
  await waitForRefund(h, r.body.id, ['succeeded']);
  refundNo = (await h.db.prisma.refund.findUniqueOrThrow({ where: { id: r.body.id } })).channelRefundNo;
  const split = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'planned', receivers: receivers(1, 300, 'rec-') } });
  await waitForSplitStatus(h, split.id, ['succeeded']);
  splitOrderNo = (await h.db.prisma.splitBatch.findFirstOrThrow({ where: { checkoutId: split.id } })).outOrderNo;
}, 60_000);
afterAll(async () => h?.close());
afterEach(() => h.sim.control.bills.clear());

const run = async () => (await reconcileDay(h.deps, day, { key: DEFAULT_ACCOUNT, accountId: null }))[0]!;
const openOfDay = () => h.db.prisma.billMismatch.findMany({ where: { billDate: day, status: 'open' }, orderBy: { kind: 'asc' } });

describe('daily bill reconciliation', () => {
  it('When the bills match our records, then the run succeeds with no mismatch and the day\'s totals', async () => {
    const r = await run();
    expect(r).toMatchObject({ status: 'succeeded', mismatches: 0, open: 0 });
    const row = await h.db.prisma.reconciliationRun.findUniqueOrThrow({ where: { accountKey_billDate: { accountKey: DEFAULT_ACCOUNT, billDate: day } } });
    expect(row).toMatchObject({ payments: 3, refunds: 1, paidFen: 1234 + 5000 + 10_000, refundedFen: 1500, splitFen: 300 });
    // Both bills were downloaded by token, gzip asked for.
    expect(h.sim.control.calls.some((c) => c.path.startsWith('/v3/bill/tradebill?') && c.path.includes('tar_type=GZIP'))).toBe(true);
    expect(h.sim.control.calls.some((c) => c.path.startsWith('/v3/profitsharing/bills?'))).toBe(true);
    expect(h.sim.control.calls.filter((c) => c.path.startsWith('/v3/billdownload/file') && c.status === 200).length).toBeGreaterThanOrEqual(2);
  });

  const ref = () => ({ payment: plain.outTradeNo, refund: refundNo, split: splitOrderNo });
  test.each([
    ['trade', 'drop', 'payment', 'PAYMENT_MISSING_CHANNEL'],
    ['trade', 'amount', 'payment', 'PAYMENT_AMOUNT_DIFFERS'],
    ['trade', 'state', 'payment', 'PAYMENT_STATE_DIFFERS'],
    ['trade', 'drop', 'refund', 'REFUND_MISSING_CHANNEL'],
    ['trade', 'amount', 'refund', 'REFUND_AMOUNT_DIFFERS'],
    ['trade', 'state', 'refund', 'REFUND_STATE_DIFFERS'],
    ['profitsharing', 'drop', 'split', 'SPLIT_MISSING_CHANNEL'],
    ['profitsharing', 'amount', 'split', 'SPLIT_AMOUNT_DIFFERS'],
    ['profitsharing', 'state', 'split', 'SPLIT_STATE_DIFFERS'],
  ] as const)('When the %s bill\'s %s line of the %s is altered (%s), then exactly that mismatch is found', async (bill, action, what, kind) => {
    h.sim.control.bills.fault({ bill, action, ref: ref()[what] });
    const r = await run();
    expect(r).toMatchObject({ status: 'succeeded', open: 1 });
    const open = await openOfDay();
    expect(open.map((m) => [m.bill, m.kind, m.ref.split(':')[0]])).toEqual([[bill, kind, ref()[what]]]);
    expect(open[0]!.merchantId).toBe('mch_test');
  });

  it('When a bill carries lines we never heard of, then PAYMENT_MISSING_OURS / SPLIT_MISSING_OURS are found', async () => {
    h.sim.control.bills.fault({ bill: 'trade', action: 'extra', ref: 'NEVERHEARD0001' });
    h.sim.control.bills.fault({ bill: 'profitsharing', action: 'extra', ref: 'NEVERSPLIT0001' });
    await run();
    expect((await openOfDay()).map((m) => [m.kind, m.ref.split(':')[0], m.merchantId])).toEqual([
      ['PAYMENT_MISSING_OURS', 'NEVERHEARD0001', null],
      ['SPLIT_MISSING_OURS', 'NEVERSPLIT0001', null],
    ]);
  });

  it('When a payment\'s notify was lost and never queried, then the bill finds it and it is recorded once through the payment path', async () => {
    h.sim.control.notifyFaults({ hold: true });
    try {
      const c = await h.api('post', '/v1/checkouts').send(checkoutBody({ amount: 888 })).expect(201);
      await h.http().get(`/checkout/${c.body.id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
      const order = await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: c.body.id } });
      expect(h.sim.control.pay(order.outTradeNo).ok).toBe(true);
      expect((await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.body.id } })).status).toBe('open');

      const r = await run();
      expect(r).toMatchObject({ status: 'succeeded', open: 0, recovered: 1 });
      const paid = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.body.id } });
      expect(paid.status).toBe('paid');
      const m = await h.db.prisma.billMismatch.findFirstOrThrow({ where: { billDate: day, ref: order.outTradeNo } });
      expect(m).toMatchObject({ kind: 'PAYMENT_STATE_DIFFERS', status: 'resolved', resolvedBy: 'system', checkoutId: c.body.id });
      // The channel was asked before anything was recorded.
      expect(h.sim.control.calls.some((x) => x.path.includes(`/out-trade-no/${order.outTradeNo}`) && x.method === 'GET')).toBe(true);

      // The late notify and a second run change nothing: paid exactly once.
      h.sim.control.notifyFaults({ hold: false });
      h.sim.control.releaseNotifies();
      await waitFor(async () => (await h.db.prisma.notifyLog.count({ where: { outTradeNo: order.outTradeNo } })) > 0, 10_000, 'the late notify');
      await run();
      expect(await h.db.prisma.merchantEvent.count({ where: { checkoutId: c.body.id, type: 'checkout.paid' } })).toBe(1);
      expect(await h.db.prisma.outboxEvent.count({ where: { aggregateId: c.body.id, type: 'payment.succeeded' } })).toBe(1);
    } finally {
      h.sim.control.notifyFaults({ hold: false });
      h.sim.control.releaseNotifies();
    }
  });

  it('When the hash does not match, then the bill is refused (nothing parsed, previous result kept) and retried by the scheduler', async () => {
    h.sim.control.bills.fault({ bill: 'trade', action: 'drop', ref: plain.outTradeNo });
    await run();
    const before = await openOfDay();
    expect(before.map((m) => m.kind)).toEqual(['PAYMENT_MISSING_CHANNEL']);
    h.sim.control.bills.clear();

    h.sim.control.bills.fault({ bill: 'trade', action: 'bad_hash' });
    const r = await run();
    expect(r.status).toBe('retrying');
    expect(r).toMatchObject({ error: expect.stringContaining('BILL_HASH_MISMATCH') });
    expect((await openOfDay()).map((m) => m.id)).toEqual(before.map((m) => m.id));
    const row = await h.db.prisma.reconciliationRun.findUniqueOrThrow({ where: { accountKey_billDate: { accountKey: DEFAULT_ACCOUNT, billDate: day } } });
    expect(row).toMatchObject({ status: 'retrying', leaseUntil: null });
    expect(row.nextAttemptAt.getTime()).toBeGreaterThan(Date.now());

    // Not yet due: the scheduler leaves it; after RECONCILE_BILLS_RETRY_MS it takes it and the good bill clears the day.
    expect((await reconcileDue(h.deps)).some((x) => x.runId === row.id)).toBe(false);
    await new Promise((res) => setTimeout(res, 350));
    const retried = await reconcileDue(h.deps);
    expect(retried.find((x) => x.runId === row.id)).toMatchObject({ status: 'succeeded', open: 0 });
    expect(await openOfDay()).toEqual([]);
  });

  it('When a day is re-run, then its result is replaced, and a mismatch already reported is not sent again', async () => {
    await h.api('post', '/v1/webhook_endpoints').send({ url: 'https://shop.example.com/hooks', events: ['reconciliation.mismatch'] }).expect(201);
    const events = () => h.db.prisma.merchantEvent.count({ where: { type: 'reconciliation.mismatch', objectKind: 'bill_mismatch' } });
    const e0 = await events();
    h.sim.control.bills.fault({ bill: 'trade', action: 'amount', ref: plain.outTradeNo, deltaFen: 7 });
    await run();
    await run();
    expect(await openOfDay()).toHaveLength(1);
    expect(await events()).toBe(e0 + 1);
    const ev = await h.db.prisma.merchantEvent.findFirstOrThrow({ where: { type: 'reconciliation.mismatch', objectKind: 'bill_mismatch' }, orderBy: { seq: 'desc' } });
    expect(ev.merchantId).toBe('mch_test');
    expect(await h.db.prisma.webhookDelivery.count({ where: { eventId: ev.id } })).toBe(1);
    // data.object is the bill mismatch, rendered once after the commit.
    const body = await waitFor(async () => (await h.db.prisma.merchantEvent.findUniqueOrThrow({ where: { id: ev.id } })).body, 10_000, 'the rendered event');
    expect(JSON.parse(body).data.object).toMatchObject({ object: 'bill_mismatch', bill_date: day, bill: 'trade', kind: 'PAYMENT_AMOUNT_DIFFERS', ref: plain.outTradeNo, ours: '1234', theirs: '1241', checkout_id: plain.id, status: 'open' });

    h.sim.control.bills.clear();
    await run();
    expect(await openOfDay()).toEqual([]);
    expect(await h.db.prisma.reconciliationRun.count({ where: { accountKey: DEFAULT_ACCOUNT, billDate: day } })).toBe(1);
    // Counted in metrics.
    const metrics = await request(h.app).get('/metrics').set('Authorization', `Bearer ${h.config.METRICS_TOKEN}`).expect(200);
    expect(metrics.text).toMatch(/gateway_bill_mismatches_found_total\{bill="trade",kind="PAYMENT_AMOUNT_DIFFERS"\} [1-9]/);
    expect(metrics.text).toMatch(/gateway_bill_mismatches_open 0/);
  });

  it('When two processes reach the same run, then one claims it, a re-run by hand reports it busy, and an expired claim is taken over', async () => {
    const account = { key: DEFAULT_ACCOUNT, accountId: null };
    const row = await ensureRun(h.db.prisma, account, day);
    const now = new Date();
    const claims = await Promise.all([claimRun(h.db.prisma, row.id, now, true), claimRun(h.db.prisma, row.id, now, true)]);
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect((await reconcileDay(h.deps, day, account))[0]).toMatchObject({ status: 'busy' });
    const first = claims.find(Boolean)!;
    expect(await claimRun(h.db.prisma, row.id, new Date(now.getTime() + 11 * 60_000), true)).toBeInstanceOf(Date);
    // The first process, late, finds its lease gone: it stores nothing (a dropped line would otherwise show).
    h.sim.control.bills.fault({ bill: 'trade', action: 'drop', ref: plain.outTradeNo });
    const before = await h.db.prisma.reconciliationRun.findUniqueOrThrow({ where: { id: row.id } });
    expect(await executeRun(h.deps, row.id, first)).toMatchObject({ status: 'retrying', error: expect.stringContaining('lease') });
    expect(await openOfDay()).toEqual([]);
    expect(await h.db.prisma.reconciliationRun.findUniqueOrThrow({ where: { id: row.id } })).toMatchObject({ status: before.status, finishedAt: before.finishedAt, leaseUntil: before.leaseUntil });
    await h.db.prisma.reconciliationRun.update({ where: { id: row.id }, data: { leaseUntil: null } });
  });

  it('When the bill is not ready yet, then the run waits for a retry instead of failing', async () => {
    h.sim.control.bills.fault({ bill: 'profitsharing', action: 'not_ready' });
    const r = await run();
    expect(r.status).toBe('retrying');
    expect(r).toMatchObject({ error: expect.stringContaining('BILL_NOT_READY') });
  });
});

describe('admin reconcile', () => {
  const io = () => {
    const lines: string[] = [];
    return { lines, io: { out: (s: string) => lines.push(s), err: (s: string) => lines.push(s), cwd: process.cwd() } };
  };
  const env = () => ({
    ...sandboxEnv({ keysDir: TEST_KEYS_DIR, simulatorUrl: h.sim.url, databaseUrl: h.db.url, redisUrl: testRedisUrl(), port: 0, publicBaseUrl: h.gatewayUrl }),
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
  });

  it('When mismatches remain open, then it prints them and exits 2; once the bills match, it exits 0', async () => {
    h.sim.control.bills.fault({ bill: 'trade', action: 'drop', ref: plain.outTradeNo });
    const a = io();
    expect(await runCli(['reconcile', '--date', day, '--account', 'default'], env(), a.io)).toBe(2);
    expect(a.lines.join('\n')).toContain('PAYMENT_MISSING_CHANNEL');
    expect(a.lines.join('\n')).toContain(plain.outTradeNo);
    h.sim.control.bills.clear();
    const b = io();
    expect(await runCli(['reconcile', '--date', day], env(), b.io)).toBe(0);
    expect(b.lines.join('\n')).toContain('no open mismatches');
  });

  it('When the input is wrong, then it says so with a usage error code; --help explains the command', async () => {
    const a = io();
    expect(await runCli(['reconcile', '--date', '2026-02-30'], env(), a.io)).toBe(65);
    expect(a.lines.join('\n')).toContain('--date');
    expect(await runCli(['reconcile', '--date', day, '--account', 'ca_nope'], env(), io().io)).toBe(66);
    const help = io();
    expect(await runCli(['reconcile', '--help'], env(), help.io)).toBe(0);
    expect(help.lines.join('\n')).toContain('reconcile --date YYYY-MM-DD');
  });
});

describe('console reconciliation', () => {
  async function signIn(email: string, password: string) {
    const agent = request.agent(h.app);
    const form = await agent.get('/console/login').expect(200);
    const token = /name="_login" value="([^"]+)"/.exec(form.text)![1]!;
    await agent.post('/console/login').type('form').send({ _login: token, email, password }).expect(303);
    return agent;
  }

  it('When an operator opens the page, then the run shows; resolving a mismatch with a note works once per confirmed form', async () => {
    await createConsoleUser(h.db.prisma, { email: 'rec-ops@example.com', role: 'operator', password: 'reconcile ops password' });
    await createConsoleUser(h.db.prisma, { email: 'rec-other@example.com', role: 'merchant', merchantId: 'mch_other', password: 'other merchant password' });
    h.sim.control.bills.fault({ bill: 'trade', action: 'amount', ref: plain.outTradeNo, deltaFen: 3 });
    await run();
    const [m] = await openOfDay();

    const ops = await signIn('rec-ops@example.com', 'reconcile ops password');
    const list = await ops.get('/console/reconciliation').expect(200);
    expect(list.text).toContain(day);
    const runRow = await h.db.prisma.reconciliationRun.findUniqueOrThrow({ where: { accountKey_billDate: { accountKey: DEFAULT_ACCOUNT, billDate: day } } });
    expect(list.text).toContain(`/console/reconciliation/runs/${runRow.id}`);
    const detail = await ops.get(`/console/reconciliation/runs/${runRow.id}`).expect(200);
    expect(detail.text).toContain('PAYMENT_AMOUNT_DIFFERS');
    const confirm = await ops.get(`/console/reconciliation/mismatches/${m!.id}?confirm=1`).expect(200);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(confirm.text)![1]!;
    const actionKey = /name="actionKey" value="([^"]+)"/.exec(confirm.text)![1]!;

    // A note is required; a form without the CSRF token is refused.
    await ops.post(`/console/reconciliation/mismatches/${m!.id}/resolve`).type('form').send({ _csrf: csrf, actionKey, note: '  ' }).expect(400);
    // NUL (which PostgreSQL refuses) is a clear 400, not a 500, as for a split mismatch's note.
    await ops.post(`/console/reconciliation/mismatches/${m!.id}/resolve`).type('form').send({ _csrf: csrf, actionKey, note: 'a\u0000b' }).expect(400);
    await ops.post(`/console/reconciliation/mismatches/${m!.id}/resolve`).type('form').send({ actionKey, note: 'x' }).expect(403);
    // A merchant user of another merchant cannot see or resolve it.
    const other = await signIn('rec-other@example.com', 'other merchant password');
    await other.get(`/console/reconciliation/mismatches/${m!.id}`).expect(404);

    const post = () => ops.post(`/console/reconciliation/mismatches/${m!.id}/resolve`).type('form').send({ _csrf: csrf, actionKey, note: '渠道调账 adjusted by WeChat' });
    await post().expect(303);
    await post().expect(303);
    expect(await h.db.prisma.consoleAudit.count({ where: { actionKey } })).toBe(1);
    const audit = await h.db.prisma.consoleAudit.findUniqueOrThrow({ where: { actionKey } });
    expect(audit).toMatchObject({ action: 'bill_mismatch.resolve', target: m!.id, note: '渠道调账 adjusted by WeChat' });
    const after = await h.db.prisma.billMismatch.findUniqueOrThrow({ where: { id: m!.id } });
    expect(after).toMatchObject({ status: 'resolved', note: '渠道调账 adjusted by WeChat', resolvedBy: audit.userId });
    const page = await ops.get(`/console/reconciliation/mismatches/${m!.id}`).expect(200);
    expect(page.text).toContain('渠道调账 adjusted by WeChat');

    // A re-run with the same line keeps the person's resolution.
    expect(await run()).toMatchObject({ status: 'succeeded', mismatches: 1, open: 0 });
    expect(await openOfDay()).toEqual([]);
  });
});

describe('a sub-merchant\'s own account', () => {
  it('When a service provider\'s sub-merchant is reconciled, then its bills are asked for with its sub_mchid and its mismatches are its merchant\'s', async () => {
    const p = await addPartnerAccountOnOwnSimulator(h, 'mch_other', { boundSubMchids: ['1900000801', '1900000802'], sim: { bills: { publishImmediately: true } } });
    try {
      const c = await h.api('post', '/v1/checkouts', OTHER_API_KEY).send(checkoutBody({ amount: 4321 })).expect(201);
      await h.http().get(`/checkout/${c.body.id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
      const order = await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: c.body.id } });
      expect(p.sim.control.pay(order.outTradeNo).ok).toBe(true);
      await waitFor(async () => (await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.body.id } })).status === 'paid', 10_000, 'the partner payment');

      const account = { key: p.accountId, accountId: p.accountId };
      const [clean] = await reconcileDay(h.deps, day, account);
      expect(clean).toMatchObject({ status: 'succeeded', mismatches: 0 });
      expect(p.sim.control.calls.some((x) => x.path.startsWith('/v3/bill/tradebill?') && x.path.includes(`sub_mchid=${p.subMchid}`))).toBe(true);
      const row = await h.db.prisma.reconciliationRun.findUniqueOrThrow({ where: { accountKey_billDate: { accountKey: p.accountId, billDate: day } } });
      expect(row).toMatchObject({ payments: 1, paidFen: 4321 });

      p.sim.control.bills.fault({ bill: 'trade', action: 'drop', ref: order.outTradeNo });
      p.sim.control.bills.fault({ bill: 'trade', action: 'extra', ref: 'PARTNERUNKNOWN01' });
      await reconcileDay(h.deps, day, account);
      const open = await h.db.prisma.billMismatch.findMany({ where: { runId: row.id, status: 'open' }, orderBy: { kind: 'asc' } });
      expect(open.map((m) => [m.kind, m.ref, m.merchantId])).toEqual([
        ['PAYMENT_MISSING_CHANNEL', order.outTradeNo, 'mch_other'],
        ['PAYMENT_MISSING_OURS', 'PARTNERUNKNOWN01', 'mch_other'],
      ]);
    } finally {
      await p.sim.close();
    }
  });
});

describe('split money taken back for a refund', () => {
  // Last in this file: the refund adds lines to the day's bills that the tests above do not expect.
  it('When a refund takes split money back from a receiver, then its 分账回退 line matches ours, and a dropped or altered one is found', async () => {
    const split = await h.db.prisma.splitBatch.findUniqueOrThrow({ where: { outOrderNo: splitOrderNo } });
    const r = await postRefund(h, split.checkoutId, { amount: 1000, reason: '回退对账', split_return: 'proportional' }).expect(201);
    await waitForRefund(h, r.body.id, ['succeeded']);
    const ret = await h.db.prisma.refundReturn.findFirstOrThrow({ where: { refundId: r.body.id } });
    expect(ret).toMatchObject({ amountFen: 30, state: 'succeeded' });

    expect(await run()).toMatchObject({ status: 'succeeded', mismatches: 0 });
    const row = await h.db.prisma.reconciliationRun.findUniqueOrThrow({ where: { accountKey_billDate: { accountKey: DEFAULT_ACCOUNT, billDate: day } } });
    expect(row).toMatchObject({ splitFen: 300, returnedFen: 30, refunds: 2 });
    // The sub-merchant's run of the same day (above) keeps its own open lines.
    const openOfRun = (runId: string) => h.db.prisma.billMismatch.findMany({ where: { runId, status: 'open' }, orderBy: { kind: 'asc' } });

    h.sim.control.bills.fault({ bill: 'profitsharing', action: 'drop', ref: ret.outReturnNo });
    expect(await run()).toMatchObject({ open: 1 });
    expect((await openOfRun(row.id)).map((m) => [m.kind, m.ref])).toEqual([['SPLIT_MISSING_CHANNEL', `${ret.outReturnNo}:${ret.account}`]]);
    h.sim.control.bills.clear();
    h.sim.control.bills.fault({ bill: 'profitsharing', action: 'amount', ref: ret.outReturnNo, deltaFen: 5 });
    await run();
    expect((await openOfRun(row.id)).map((m) => [m.kind, m.ours, m.theirs])).toEqual([['SPLIT_AMOUNT_DIFFERS', '30', '35']]);
  });
});

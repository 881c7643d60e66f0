import request from 'supertest';
import { createConsoleUser } from '../../src/modules/console/console.users';
import { OTHER_API_KEY, startHarness, type Harness } from '../support/harness';
import { csrfOf, signIn as signInAs } from './console-support';
import { paidCheckout, receivers, waitForSplitStatus } from './split-support';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { PROFIT_SHARING_RECEIVER_LIMIT: '5', PROFIT_SHARING_POLL_MS: '20' } });
  await h.startBackground();
  await createConsoleUser(h.db.prisma, { email: 'ops@example.com', role: 'operator', password: 'correct horse battery' });
  await createConsoleUser(h.db.prisma, { email: 'staff@other.example', role: 'merchant', merchantId: 'mch_other', password: 'other staff password' });
});
afterAll(async () => h?.close());

const signIn = (email: string, password: string, agent = request.agent(h.app)) => signInAs(h, email, password, agent);

describe('console sign-in', () => {
  it('When the password is right, then a session cookie (HttpOnly, SameSite=Strict, path /console) is set and the overview shows', async () => {
    const { agent, res } = await signIn('ops@example.com', 'correct horse battery');
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/console');
    const cookie = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('gw_console='))!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\/console/);
    const page = await agent.get('/console').expect(200);
    expect(page.text).toContain('概览 · Overview');
    // Only a hash of the session token is stored.
    const token = /gw_console=([^;]+)/.exec(cookie)![1]!;
    const rows = await h.db.prisma.consoleSession.findMany();
    expect(rows.some((r) => r.tokenHash === token || r.id === token)).toBe(false);
  });

  it('When the password is wrong or the form token is missing, then no session is created', async () => {
    const before = await h.db.prisma.consoleSession.count();
    const { res } = await signIn('ops@example.com', 'wrong password!!');
    expect(res.status).toBe(401);
    expect(res.text).toContain('邮箱或密码错误');
    await request(h.app).post('/console/login').type('form').send({ email: 'ops@example.com', password: 'correct horse battery' }).expect(403);
    expect(await h.db.prisma.consoleSession.count()).toBe(before);
  });

  it('When an email is tried too often, then sign-in is refused even with the right password', async () => {
    await createConsoleUser(h.db.prisma, { email: 'target@example.com', role: 'operator', password: 'the right password' });
    for (let i = 0; i < 10; i++) expect((await signIn('target@example.com', `guess number ${i}`)).res.status).toBe(401);
    const { res } = await signIn('target@example.com', 'the right password');
    expect(res.status).toBe(429);
  }, 60_000);

  it('When there is no session, then pages redirect to sign-in; a POST without the CSRF token is refused', async () => {
    const r = await request(h.app).get('/console/checkouts').expect(303);
    expect(r.headers.location).toBe('/console/login');
    const { agent } = await signIn('ops@example.com', 'correct horse battery');
    await agent.post('/console/logout').type('form').send({}).expect(403);
    const page = await agent.get('/console').expect(200);
    await agent.post('/console/logout').type('form').send({ _csrf: csrfOf(page.text) }).expect(303);
    await agent.get('/console').expect(303);
  });
});

describe('console pages', () => {
  it('When a split payment is made, then search, timeline, overview and receivers show it; a merchant user sees only its own', async () => {
    const plan = receivers(6, 100, 'con-');
    const { id, transactionId, outTradeNo } = await paidCheckout(h, { amount: 12_345, profit_sharing: { mode: 'planned', receivers: plan } });
    await waitForSplitStatus(h, id, ['succeeded']);
    const mine = await h.api('post', '/v1/checkouts', OTHER_API_KEY).send({ out_trade_no: `other-${Date.now()}`, amount: 777, description: '别家' }).expect(201);

    const { agent } = await signIn('ops@example.com', 'correct horse battery');
    const checkout = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
    for (const q of [id, checkout.outTradeNo, transactionId, outTradeNo]) {
      const found = await agent.get('/console/checkouts').query({ q }).expect(200);
      expect(found.text).toContain(`/console/checkouts/${id}`);
    }
    const byAmount = await agent.get('/console/checkouts').query({ amount: '123.45', status: 'paid' }).expect(200);
    expect(byAmount.text).toContain(`/console/checkouts/${id}`);
    const none = await agent.get('/console/checkouts').query({ amount: '123.46' }).expect(200);
    expect(none.text).not.toContain(`/console/checkouts/${id}`);

    const t = await agent.get(`/console/checkouts/${id}`).expect(200);
    for (const s of ['paid 已支付', 'notify 通知: applied', `${id}-s1-b1`, `${id}-s1-b2`, 'receiver 接收方 con-001: SUCCESS', 'event 事件 payment.succeeded']) expect(t.text).toContain(s);

    const o = await agent.get('/console').expect(200);
    expect(o.text).toContain('¥123.45');

    const csv = await agent.get('/console/receivers?format=csv').expect(200);
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    expect(csv.text).toContain(',con-001,');
    expect(csv.text).toMatch(/^,con-001,MERCHANT_ID,100,0,0,1\r$/m);

    // The other merchant's staff: its own checkout yes, this one is "not found", and no totals of ours.
    const staff = (await signIn('staff@other.example', 'other staff password')).agent;
    await staff.get(`/console/checkouts/${mine.body.id}`).expect(200);
    const foreign = await staff.get(`/console/checkouts/${id}`).expect(404);
    expect(foreign.text).toContain('没有这个订单');
    const list = await staff.get('/console/checkouts').query({ q: id }).expect(200);
    expect(list.text).not.toContain(`/console/checkouts/${id}`);
    const ov = await staff.get('/console').expect(200);
    expect(ov.text).not.toContain('¥123.45');
    expect((await staff.get('/console/receivers?format=csv').expect(200)).text).not.toContain('con-0');
  });
});

/**
 * The console in real headless Chromium at a phone's width: sign-in, overview, a search, a timeline,
 * a refund and a split retry confirmed from the console, and a merchant user who cannot see another
 * merchant's checkout. No console errors on any page (the CSP allows no inline script without its nonce).
 */
import type { Browser, Page } from 'playwright-core';
import { createConsoleUser } from '../../src/modules/console/console.users';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, waitFor, waitForSplitStatus } from '../integration/split-support';
import { CHROMIUM, hasChromium, launchChromium, phonePage } from './browser-support';

const run = hasChromium() ? describe : describe.skip;
if (!hasChromium()) console.warn(`[browser tests] skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

let h: Harness;
let browser: Browser;
const errors: string[] = [];

const newPage = (): Promise<Page> => phonePage(browser, errors);

async function signIn(page: Page, email: string, password: string) {
  await page.goto(`${h.gatewayUrl}/console/login`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(`${h.gatewayUrl}/console`), page.click('button[type=submit]')]);
}

run('console in Chromium (390 px)', () => {
  beforeAll(async () => {
    h = await startHarness({ env: { PROFIT_SHARING_RECEIVER_LIMIT: '5', PROFIT_SHARING_POLL_MS: '20' } });
    await h.startBackground();
    await createConsoleUser(h.db.prisma, { email: 'ops@example.com', role: 'operator', password: 'operator password 1' });
    await createConsoleUser(h.db.prisma, { email: 'staff@other.example', role: 'merchant', merchantId: 'mch_other', password: 'merchant password 1' });
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it('When an operator signs in, then the overview, a search and a timeline work on a phone, without console errors', async () => {
    const { id, outTradeNo } = await paidCheckout(h, { amount: 8_888, profit_sharing: { mode: 'planned', receivers: receivers(3, 100, 'br-') } });
    await waitForSplitStatus(h, id, ['succeeded']);
    const checkout = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
    const page = await newPage();
    await signIn(page, 'ops@example.com', 'operator password 1');
    await page.getByText('需要关注 · Needs attention').waitFor();
    expect(await page.locator('.kpi .value').first().textContent()).toContain('¥88.88');
    // Nothing wider than the phone's screen.
    expect(Number(await page.evaluate('document.documentElement.scrollWidth'))).toBeLessThanOrEqual(390);
    if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/console-overview.png`, fullPage: true });

    await page.click('a[href="/console/checkouts"]');
    await page.fill('#q', checkout.outTradeNo);
    await Promise.all([page.waitForURL(/\/console\/checkouts\?/), page.click('form.search button')]);
    await Promise.all([page.waitForURL(`${h.gatewayUrl}/console/checkouts/${id}`), page.click(`a[href="/console/checkouts/${id}"]`)]);
    await page.getByText('时间线 · Timeline').waitFor();
    const timeline = await page.locator('ol.timeline').textContent();
    expect(timeline).toContain('paid 已支付');
    expect(timeline).toContain(`${outTradeNo}`);
    expect(timeline).toContain('receiver 接收方 br-000: SUCCESS');
    expect(Number(await page.evaluate('document.documentElement.scrollWidth'))).toBeLessThanOrEqual(390);
    if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/console-timeline.png`, fullPage: true });

    // A merchant user of another merchant: the same URL is "not found".
    const other = await newPage();
    await signIn(other, 'staff@other.example', 'merchant password 1');
    const res = await other.goto(`${h.gatewayUrl}/console/checkouts/${id}`);
    expect(res?.status()).toBe(404);
    await other.getByText('没有这个订单').waitFor();
    expect(errors.filter((e) => !/404/.test(e))).toEqual([]);
  }, 120_000);

  /** Opens a checkout the way a person does: search by out_trade_no, follow the result. */
  async function openCheckout(page: Page, id: string) {
    const c = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
    await page.goto(`${h.gatewayUrl}/console/checkouts`);
    await page.fill('#q', c.outTradeNo);
    await Promise.all([page.waitForURL(/\/console\/checkouts\?/), page.click('form.search button')]);
    await Promise.all([page.waitForURL(`${h.gatewayUrl}/console/checkouts/${id}`), page.click(`a[href="/console/checkouts/${id}"]`)]);
  }
  const narrow = async (page: Page) => expect(Number(await page.evaluate('document.documentElement.scrollWidth'))).toBeLessThanOrEqual(390);

  it('When an operator refunds from the console, then the confirm step states the amount and the outcome shows on the timeline', async () => {
    const { id } = await paidCheckout(h, { amount: 1_000 });
    const page = await newPage();
    await signIn(page, 'ops@example.com', 'operator password 1');
    await openCheckout(page, id);
    await Promise.all([page.waitForURL(/\/refund$/), page.click('a:has-text("退款 Refund")')]);
    await page.fill('#f-amount', '3.50');
    await page.fill('#f-reason', '顾客退货');
    await Promise.all([page.waitForURL(/\/refund\?/), page.click('form.choose button')]);
    const summary = await page.locator('table.summary').textContent();
    expect(summary).toContain('¥3.50 (350 fen)');
    expect(summary).toContain('顾客退货');
    await narrow(page);
    if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/console-refund-confirm.png`, fullPage: true });
    await Promise.all([page.waitForURL(/\?done=/), page.click('form.confirm button')]);
    expect(await page.locator('#outcome').textContent()).toContain('¥3.50');
    // The refund completes at the simulator; a reload shows it on the timeline with who asked for it.
    await waitFor(async () => (await h.db.prisma.refund.findFirst({ where: { checkoutId: id, status: 'succeeded' } })) ?? null, 15_000, 'refund');
    await page.reload();
    const timeline = await page.locator('ol.timeline').textContent();
    expect(timeline).toMatch(/refund 退款 re_[0-9a-z]+ ¥3\.50: succeeded/);
    expect(timeline).toContain('action 操作 refund · ops@example.com');
    expect(await h.db.prisma.refund.count({ where: { checkoutId: id } })).toBe(1);
    await narrow(page);
  }, 120_000);

  it('When a split receiver failed, then an operator retries the batch from the timeline and sees the new batch succeed', async () => {
    const { id } = await paidCheckout(h, { amount: 1_000, profit_sharing: { mode: 'on_demand' } });
    h.sim.control.profitSharing.failReceiver('brt-001', 'ACCOUNT_ABNORMAL');
    await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', `browser-${id}`).send({ receivers: receivers(2, 100, 'brt-') }).expect(201);
    const s = await waitForSplitStatus(h, id, ['partially_failed']);
    h.sim.control.profitSharing.failReceiver('brt-001', null);

    const page = await newPage();
    await signIn(page, 'ops@example.com', 'operator password 1');
    await openCheckout(page, id);
    await Promise.all([page.waitForURL(/\/retry$/), page.click(`a[href$="/batches/${s.batches[0]!.out_order_no}/retry"]`)]);
    const summary = await page.locator('table.summary').textContent();
    expect(summary).toContain('brt-001');
    expect(summary).toContain(`${id}-s2-b1`);
    await narrow(page);
    await Promise.all([page.waitForURL(/\?done=/), page.click('form.confirm button')]);
    expect(await page.locator('#outcome').textContent()).toContain(`${id}-s2-b1`);
    await waitForSplitStatus(h, id, ['partially_failed', 'succeeded']);
    await waitFor(async () => (await h.db.prisma.splitBatch.findFirst({ where: { outOrderNo: `${id}-s2-b1`, state: 'succeeded' } })) ?? null, 15_000, 'retry batch');
    await page.reload();
    const timeline = await page.locator('ol.timeline').textContent();
    expect(timeline).toContain(`split batch 分账批次 ${id}-s2-b1: succeeded`);
    expect(timeline).toContain('action 操作 split.retry · ops@example.com');
    await narrow(page);
  }, 120_000);

  it('When a merchant user looks for another merchant\'s checkout or its actions, then it is not found; and no console page logged an error', async () => {
    const { id } = await paidCheckout(h, { amount: 4_321 });
    const other = await newPage();
    await signIn(other, 'staff@other.example', 'merchant password 1');
    const c = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
    await other.goto(`${h.gatewayUrl}/console/checkouts?q=${c.outTradeNo}`);
    await other.getByText('没有匹配的订单').waitFor();
    for (const path of ['', '/refund?amount=1', '/splits/finish']) {
      const res = await other.goto(`${h.gatewayUrl}/console/checkouts/${id}${path}`);
      expect(res?.status()).toBe(404);
      expect(await other.locator('form.confirm').count()).toBe(0);
    }
    // Every console page an operator opens, in Chromium: none logs an error or breaks the CSP.
    const ops = await newPage();
    await signIn(ops, 'ops@example.com', 'operator password 1');
    for (const path of ['/console', '/console/checkouts', `/console/checkouts/${id}`, `/console/checkouts/${id}/refund`, `/console/checkouts/${id}/refund?amount=1.00`, '/console/receivers', '/console/receivers?by=day']) {
      const res = await ops.goto(`${h.gatewayUrl}${path}`);
      expect(res?.status()).toBe(200);
      await narrow(ops);
    }
    expect(errors.filter((e) => !/ 404 /.test(e) && !/status of 404/.test(e))).toEqual([]);
  }, 120_000);
});

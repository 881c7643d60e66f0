/**
 * The console in real headless Chromium at a phone's width: sign-in, overview, a search, a timeline,
 * and a merchant user who cannot see another merchant's checkout. No console errors on any page.
 */
import type { Browser, Page } from 'playwright-core';
import { createConsoleUser } from '../../src/modules/console/console.users';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, waitForSplitStatus } from '../integration/split-support';
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
});

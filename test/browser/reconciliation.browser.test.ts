/**
 * The reconciliation console in real headless Chromium at a phone's width: the runs page, a run, a
 * mismatch, and resolving it through the confirm form. No console errors, nothing wider than the phone.
 */
import type { Browser } from 'playwright-core';
import { createConsoleUser } from '../../src/modules/console/console.users';
import { beijingDate as beijingDayOf } from '../../src/lib/beijing';
import { DEFAULT_ACCOUNT, reconcileDay } from '../../src/modules/reconciliation/reconcile.service';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout } from '../integration/split-support';
import { hasChromium, launchChromium, phonePage } from './browser-support';

const run = hasChromium() ? describe : describe.skip;

let h: Harness;
let browser: Browser;
const errors: string[] = [];

run('reconciliation console in Chromium (390 px)', () => {
  beforeAll(async () => {
    h = await startHarness({ sim: { bills: { publishImmediately: true } } });
    await createConsoleUser(h.db.prisma, { email: 'ops@example.com', role: 'operator', password: 'operator password 1' });
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it('When an operator resolves a mismatch from the console, then it is resolved with the note, once', async () => {
    const paid = await paidCheckout(h, { amount: 2_500 });
    const day = beijingDayOf(new Date());
    h.sim.control.bills.fault({ bill: 'trade', action: 'drop', ref: paid.outTradeNo });
    await reconcileDay(h.deps, day, { key: DEFAULT_ACCOUNT, accountId: null });

    const page = await phonePage(browser, errors);
    await page.goto(`${h.gatewayUrl}/console/login`);
    await page.fill('#email', 'ops@example.com');
    await page.fill('#password', 'operator password 1');
    await Promise.all([page.waitForURL(`${h.gatewayUrl}/console`), page.click('button[type=submit]')]);

    await page.click('a[href="/console/reconciliation"]');
    await page.getByRole('heading', { name: /Daily bill reconciliation/ }).waitFor();
    expect(Number(await page.evaluate('document.documentElement.scrollWidth'))).toBeLessThanOrEqual(390);
    await page.click(`a:has-text("${day}")`);
    await page.click('a:has-text("PAYMENT_MISSING_CHANNEL")');
    await page.click('a:has-text("Resolve…")');
    await page.fill('#note', '渠道漏记，已联系微信支付 · missing at WeChat, ticket opened');
    await Promise.all([page.waitForURL(/done=1/), page.click('button:has-text("Resolve")')]);
    await page.getByText('已处理 · Resolved').waitFor();
    expect(await page.textContent('main')).toContain('渠道漏记，已联系微信支付');
    if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/console-reconciliation-mismatch.png`, fullPage: true });

    // Going back to the confirm page shows no form any more (the page is not cached; the mismatch is resolved).
    await page.goBack();
    expect(await page.locator('form[action$="/resolve"]').count()).toBe(0);
    expect(await h.db.prisma.consoleAudit.count({ where: { action: 'bill_mismatch.resolve' } })).toBe(1);
    expect(await h.db.prisma.billMismatch.count({ where: { status: 'open' } })).toBe(0);
    expect(errors).toEqual([]);
  }, 60_000);
});

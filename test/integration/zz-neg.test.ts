import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SANDBOX_APP_SECRET } from '../../src/config/sandbox';
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '../../src/simulator/app';
import { startHarness, UA, type Harness } from '../support/harness';
import { paidCheckout, receivers, splitOf, waitFor, waitForSplitStatus } from './split-support';

/*
 * The sandbox restarted: the database keeps its rows and the simulator (WeChat's stand-in) must
 * keep its orders, or every split made before looks unknown to the channel and old QR codes fail.
 */
const INTERVAL = 300;
let h: Harness;
let dir: string;
let restarted: RunningSimulator | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gateway-simstate-'));
  h = await startHarness({
    sim: { stateFile: join(dir, 'simulator.json') },
    env: { PROFIT_SHARING_RECEIVER_LIMIT: '2', PROFIT_SHARING_POLL_MS: '20', RECONCILE_INTERVAL_MS: String(INTERVAL) },
  });
  await h.startBackground();
});
afterAll(async () => {
  await restarted?.close();
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('When the simulator restarts after paid split checkouts, then reconciliation finds no mismatch and an open checkout’s old QR code still pays', async () => {
  const paid: string[] = [];
  for (const tag of ['ra-', 'rb-']) {
    const { id } = await paidCheckout(h, { amount: 1000, profit_sharing: { mode: 'planned', receivers: receivers(3, 10, tag) } });
    paid.push(id);
  }
  for (const id of paid) await waitForSplitStatus(h, id, ['succeeded']);

  const open = await h.api('post', '/v1/checkouts').send({ out_trade_no: `QR${Date.now()}`, amount: 123, description: '重启前的二维码' }).expect(201);
  const page = (await h.http().get(`/checkout/${open.body.id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200)).body;
  expect(page.code_url).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=/);

  // Restart: a new simulator process on the same address, with nothing but the state file.
  const port = Number(new URL(h.sim.url).port);
  await h.sim.close();
  expect(JSON.parse(readFileSync(join(dir, 'simulator.json'), 'utf8')).transactions.length).toBeGreaterThanOrEqual(3);
  const options: SimulatorOptions & { port: number } = {
    keys: h.keys,
    appSecret: SANDBOX_APP_SECRET,
    notifyUrlPolicy: 'any-no-query',
    h5Domains: ['127.0.0.1', 'localhost'],
    oauthDomains: ['127.0.0.1', 'localhost'],
    profitSharing: { minDelayAfterPayMs: 0, resultDelayMs: 0 },
    port,
  };
  restarted = await startSimulator(options);

  // Reconciliation has asked the restarted channel about both payments (twice each), and stored its findings.
  const amountQueries = () => restarted!.control.calls.filter((c) => c.path.includes('/v3/profitsharing/transactions/') && c.path.endsWith('/amounts'));
  await waitFor(async () => amountQueries().length >= paid.length * 2, 15_000, 'reconciliation cycles after the restart');
  await new Promise((r) => setTimeout(r, INTERVAL * 2));
  expect(amountQueries().every((c) => c.status === 200)).toBe(true);
  expect(await h.db.prisma.splitMismatch.findMany({ where: { checkoutId: { in: paid } } })).toEqual([]);
  for (const id of paid) expect((await splitOf(h, id)).mismatches).toEqual([]);

  // The shopper scans the QR they still have on screen (the gateway reuses it on reload).
  const again = (await h.http().get(`/checkout/${open.body.id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200)).body;
  expect(again.code_url).toBe(page.code_url);
  const scan = await fetch(`${restarted.url}/_sim/native/scan`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code_url: page.code_url }) });
  expect(scan.status).toBe(200);
  await waitFor(async () => (await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: open.body.id } })).status === 'paid', 10_000, 'the old QR code paid');
}, 90_000);

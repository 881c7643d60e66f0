/**
 * A large merchant's day through the real reconciliation: 70,000 billed payments (more than
 * PostgreSQL's 65,535 parameters of one statement: our records are read with the billed numbers as one
 * array), downloaded gzipped from the simulator, parsed, matched and stored, with exactly the seeded
 * differences found. Memory at this size and beyond is measured by bench/bills.ts.
 */
import { beijingDate } from '../../src/lib/beijing';
import { DEFAULT_ACCOUNT, reconcileDay } from '../../src/modules/reconciliation/reconcile.service';
import { billedAmount, billedOutTradeNo, seedOurPayments, seedSimulatorPayments } from '../support/bill-seed';
import { startHarness, type Harness } from '../support/harness';

const N = 70_000;
let h: Harness;
// Yesterday in Beijing: a day of its own (other tests' payments are today's).
const paidAtMs = Date.now() - 86_400_000;
const day = beijingDate(new Date(paidAtMs));

beforeAll(async () => {
  h = await startHarness({ sim: { bills: { publishImmediately: true } } });
  seedSimulatorPayments(h.sim.ctx, 0, N, paidAtMs);
  await seedOurPayments(h.db.prisma, 'mch_test', 0, N, paidAtMs);
}, 120_000);
afterAll(async () => h?.close());

it('When a day of 70,000 payments is billed with three differences, then exactly those three are found and the totals are the bill\'s', async () => {
  const missingOurs = 'NEVER_RECORDED_0001';
  h.sim.control.bills.fault({ bill: 'trade', action: 'extra', ref: missingOurs, deltaFen: 777 });
  h.sim.control.bills.fault({ bill: 'trade', action: 'drop', ref: billedOutTradeNo(12_345) });
  h.sim.control.bills.fault({ bill: 'trade', action: 'amount', ref: billedOutTradeNo(69_999), deltaFen: 1 });

  const [r] = await reconcileDay(h.deps, day, { key: DEFAULT_ACCOUNT, accountId: null });
  expect(r).toMatchObject({ status: 'succeeded', mismatches: 3, open: 3, recovered: 0 });

  const open = await h.db.prisma.billMismatch.findMany({ where: { billDate: day, status: 'open' }, orderBy: { kind: 'asc' } });
  expect(open.map((m) => [m.kind, m.ref, m.ours, m.theirs])).toEqual([
    ['PAYMENT_AMOUNT_DIFFERS', billedOutTradeNo(69_999), String(billedAmount(69_999)), String(billedAmount(69_999) + 1)],
    ['PAYMENT_MISSING_CHANNEL', billedOutTradeNo(12_345), String(billedAmount(12_345)), null],
    ['PAYMENT_MISSING_OURS', missingOurs, null, '777'],
  ]);
  let paidFen = 777 + 1 - billedAmount(12_345);
  for (let i = 0; i < N; i++) paidFen += billedAmount(i);
  const run = await h.db.prisma.reconciliationRun.findUniqueOrThrow({ where: { accountKey_billDate: { accountKey: DEFAULT_ACCOUNT, billDate: day } } });
  expect(run).toMatchObject({ payments: N, refunds: 0, paidFen });
}, 120_000);

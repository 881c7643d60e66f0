import { formatProfitSharingBill, formatTradeBill, type BillPaymentRow, type BillSplitRow } from '../../src/simulator/bills/format';
import { BILL_COLUMNS, matchProfitSharingBill, matchTradeBill, type OurPayment, type OurRefund } from '../../src/modules/reconciliation/bill.match';
import { BillFormatError, billCount, parseBill, yuanToFen } from '../../src/modules/reconciliation/bill.parse';

// An ALL trade bill with the refund row of the axios-wechatpay fixture (tests/fixtures/bill.ALL.csv, quoted in
// FACTS-partner-bills.md §2.6; the product name is elided there too), LF line ends and no BOM as in the
// WXJAVA / gunsluo fixtures.
const HEADER_ALL =
  '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注';
const AXIOS_REFUND_ROW =
  '`2019-02-19 05:01:46,`wxab8acd895ab1638a,`1921000401,`0,`harryma007,`4200000263201902167700134212,`autotest_20190216081946_82335,`oHkLxtx0vUqe-18p_AXTZ1innxkCY,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50000709672019011908420787722,`REF4200000263201902167700963919,`0.01,`0.00,`ORIGINAL,`SUCCESS,`…,`,`0.00000,`39.00%,`0.00,`0.01,`';

describe('bill parsing', () => {
  test('reads the official refund row by header name, with LF and no BOM', () => {
    const bill = parseBill(`${HEADER_ALL}\n${AXIOS_REFUND_ROW}\n总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n\`1,\`0.00,\`0.01,\`0.00,\`0.00000,\`0.00,\`0.01\n`);
    expect(bill.rows).toHaveLength(1);
    const row = bill.rows[0]!;
    expect(row['交易状态']).toBe('REFUND');
    expect(row['商户退款单号']).toBe('REF4200000263201902167700963919');
    expect(row['商户数据包']).toBe('');
    expect(row['费率备注']).toBe('');
    expect(yuanToFen(row['退款金额']!)).toBe(1);
    expect(bill.summary?.['退款总金额']).toBe('0.01');
  });

  test('amounts in yuan become exact fen; counts may print as "45.0"', () => {
    expect(yuanToFen('12.34')).toBe(1234);
    expect(yuanToFen('0.04000')).toBe(4);
    expect(yuanToFen('-0.02000')).toBe(-2);
    expect(yuanToFen('0.00600')).toBe(1);
    expect(yuanToFen('21474836.47')).toBe(2147483647);
    expect(billCount('45.0')).toBe(45);
    expect(() => yuanToFen('1,00')).toThrow(BillFormatError);
  });

  test('a line whose field count differs from its header is refused', () => {
    expect(() => parseBill(`${HEADER_ALL}\n\`a,\`b\n`)).toThrow(/line 2 has 2 fields/);
  });

  test('with the columns to keep, a row holds only those (either spelling of a parenthesis), read from bytes with BOM, CRLF and blank lines', () => {
    const text = `\uFEFF${HEADER_ALL}\r\n\r\n${AXIOS_REFUND_ROW}\r\n`;
    const bill = parseBill(Buffer.from(text), ['交易状态', '商户退款单号', '退款金额']);
    expect(bill.header).toHaveLength(27);
    expect(bill.rows).toEqual([{ 交易状态: 'REFUND', 商户退款单号: 'REF4200000263201902167700963919', 退款金额: '0.01' }]);
    expect(parseBill(text)).toEqual(parseBill(Buffer.from(text)));
    const sharing = parseBill('业务类型,分账金额（元）,备注\n`分账,`1.00,`x\n', BILL_COLUMNS.profitsharing);
    expect(sharing.rows).toEqual([{ 业务类型: '分账', '分账金额（元）': '1.00' }]);
  });

  test('a row keeping few columns still has every field counted, on its real line number; nothing may follow the summary', () => {
    expect(() => parseBill(`${HEADER_ALL}\r\n\r\n${AXIOS_REFUND_ROW}\r\n\`a,\`b\r\n`, ['交易状态'])).toThrow(/line 4 has 2 fields, its header 27/);
    expect(() => parseBill(`${HEADER_ALL}\n${AXIOS_REFUND_ROW}\n总交易单数\n\`1\n\`2\n`)).toThrow(/unexpected line 5 after the summary/);
    expect(() => parseBill('\n \r\n')).toThrow(/empty bill/);
    // A line of other whitespace is blank too; a summary line is taken as it comes, backtick or not.
    const spaced = parseBill('a,b\n`1,`2\n\u3000\n\u00a0\f\n`3,`4\nS\n9\n', ['a']);
    expect(spaced.rows).toEqual([{ a: '1' }, { a: '3' }]);
    expect(spaced.summary).toEqual({ S: '9' });
    expect(() => parseBill('`1,`2\n')).toThrow(/does not start with a header line/);
  });
});

/** As the reconciliation run reads them: only the columns the matchers name (a missing one throws). */
const tradeBill = (text: string) => parseBill(text, BILL_COLUMNS.trade);
const sharingBill = (text: string) => parseBill(text, BILL_COLUMNS.profitsharing);

const payment = (n: number, totalFen: number, extra: Partial<BillPaymentRow> = {}): BillPaymentRow => ({
  time: `2026-12-01 10:00:${String(n).padStart(2, '0')}`,
  appid: 'wxappid',
  mchid: '1900000001',
  transactionId: `42000000002026120100000000${n}`,
  outTradeNo: `co_${n}_n`,
  openid: 'o-openid',
  tradeType: 'NATIVE',
  bankType: 'OTHERS',
  totalFen,
  couponFen: 0,
  feeFen: Math.round(totalFen * 0.006),
  feeRateBp: 60,
  description: '测试商品, 含逗号',
  attach: '',
  ...extra,
});

describe('trade bill matching (the simulator writes, the gateway reads)', () => {
  const p1 = payment(1, 1000);
  const p2 = payment(2, 2550, { couponFen: 50 });
  const refund = { time: '2026-12-01 11:00:00', payment: p1, refundId: '50300000001', outRefundNo: 're_1', refundFen: 400, feeReturnedFen: 2, refundType: 'ORIGINAL', refundState: 'SUCCESS', successTime: '' };
  const ours = (): { payments: OurPayment[]; refunds: OurRefund[] } => ({
    payments: [p1, p2].map((p) => ({ outTradeNo: p.outTradeNo, transactionId: p.transactionId, amountFen: p.totalFen, paid: true, dueOnDay: true })),
    refunds: [{ outRefundNo: 're_1', amountFen: 400, status: 'succeeded', dueOnDay: true }],
  });

  test('a clean day has no mismatch, and fees are totalled (charged minus returned)', () => {
    const text = formatTradeBill('ALL', [p1, p2], [refund]);
    expect(text.startsWith('\uFEFF')).toBe(true);
    expect(text.endsWith('\r\n')).toBe(true);
    const r = matchTradeBill(tradeBill(text), ours());
    expect(r.mismatches).toEqual([]);
    expect(r).toMatchObject({ payments: 2, refunds: 1, paidFen: 3550, refundedFen: 400, feesFen: 6 + 15 - 2 });
  });

  test('each altered or missing line is exactly its mismatch', () => {
    const missingOurs = ours();
    missingOurs.payments = missingOurs.payments.filter((p) => p.outTradeNo !== p2.outTradeNo);
    expect(matchTradeBill(tradeBill(formatTradeBill('ALL', [p1, p2], [refund])), missingOurs).mismatches.map((m) => [m.kind, m.ref])).toEqual([
      ['PAYMENT_MISSING_OURS', p2.outTradeNo],
    ]);
    expect(matchTradeBill(tradeBill(formatTradeBill('ALL', [p1], [refund])), ours()).mismatches.map((m) => [m.kind, m.ref])).toEqual([
      ['PAYMENT_MISSING_CHANNEL', p2.outTradeNo],
    ]);
    expect(matchTradeBill(tradeBill(formatTradeBill('ALL', [p1, { ...p2, totalFen: 2551 }], [refund])), ours()).mismatches.map((m) => m.kind)).toEqual([
      'PAYMENT_AMOUNT_DIFFERS',
    ]);
    const unpaid = ours();
    unpaid.payments[0]!.paid = false;
    expect(matchTradeBill(tradeBill(formatTradeBill('ALL', [p1, p2], [refund])), unpaid).mismatches.map((m) => m.kind)).toEqual(['PAYMENT_STATE_DIFFERS']);
    expect(matchTradeBill(tradeBill(formatTradeBill('ALL', [p1, p2], [])), ours()).mismatches.map((m) => [m.kind, m.ref])).toEqual([['REFUND_MISSING_CHANNEL', 're_1']]);
    expect(matchTradeBill(tradeBill(formatTradeBill('ALL', [p1, p2], [{ ...refund, refundFen: 300 }])), ours()).mismatches.map((m) => m.kind)).toEqual([
      'REFUND_AMOUNT_DIFFERS',
    ]);
    const refused = ours();
    refused.refunds[0]!.status = 'failed';
    expect(matchTradeBill(tradeBill(formatTradeBill('ALL', [p1, p2], [refund])), refused).mismatches.map((m) => m.kind)).toEqual(['REFUND_STATE_DIFFERS']);
  });

  test('a summary that does not add up to its lines is reported', () => {
    const text = formatTradeBill('SUCCESS', [p1, p2], []);
    const lines = text.split('\r\n');
    lines.splice(1, 1); // a detail line dropped after the summary was written
    const r = matchTradeBill(tradeBill(lines.join('\r\n')), { payments: ours().payments.slice(1), refunds: [] });
    expect(r.mismatches.map((m) => m.kind)).toEqual(['SUMMARY_DIFFERS']);
  });
});

describe('profit-sharing bill matching', () => {
  const row = (outOrderNo: string, account: string, amountFen: number, businessType: BillSplitRow['businessType'] = '分账'): BillSplitRow => ({
    time: '2026-12-01 12:00:00',
    initiator: '1900000001',
    sponsor: '1900000001',
    transactionId: '4200000000',
    orderId: `3008${outOrderNo}`,
    outOrderNo,
    detailId: `3600${account}`,
    receiverAccount: account,
    amountFen,
    businessType,
    status: 'SUCCESS',
    description: '分给商户',
  });
  const ours = [
    { outOrderNo: 'co_1-s1-b1', account: '1900000109', amountFen: 100, kind: 'split' as const, state: 'SUCCESS', dueOnDay: true },
    { outOrderNo: 'co_1-s1-b1', account: '1900000110', amountFen: 50, kind: 'split' as const, state: 'SUCCESS', dueOnDay: true },
  ];

  test('clean, missing, altered and unknown lines', () => {
    const clean = [row('co_1-s1-b1', '1900000109', 100), row('co_1-s1-b1', '1900000110', 50), row('co_1-unfreeze', '1900000001', 850, '解冻给分账方')];
    expect(matchProfitSharingBill(sharingBill(formatProfitSharingBill(clean)), ours)).toEqual({ mismatches: [], splitFen: 150, returnedFen: 0 });
    expect(matchProfitSharingBill(sharingBill(formatProfitSharingBill(clean.slice(1))), ours).mismatches.map((m) => [m.kind, m.ref])).toEqual([
      ['SPLIT_MISSING_CHANNEL', 'co_1-s1-b1:1900000109'],
    ]);
    expect(matchProfitSharingBill(sharingBill(formatProfitSharingBill([row('co_1-s1-b1', '1900000109', 101), clean[1]!])), ours).mismatches.map((m) => m.kind)).toEqual([
      'SPLIT_AMOUNT_DIFFERS',
    ]);
    expect(matchProfitSharingBill(sharingBill(formatProfitSharingBill([...clean, row('zz', '1900000111', 5)])), ours).mismatches.map((m) => m.kind)).toEqual([
      'SPLIT_MISSING_OURS',
    ]);
    const closed = ours.map((l, i) => (i === 0 ? { ...l, state: 'CLOSED' } : l));
    expect(matchProfitSharingBill(sharingBill(formatProfitSharingBill(clean)), closed).mismatches.map((m) => m.kind)).toEqual(['SPLIT_STATE_DIFFERS']);
  });
});

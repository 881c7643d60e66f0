import fc from 'fast-check';
import { explicitReturns, outReturnNo, proportionalReturns, type Holding } from '../../src/modules/refunds/refund.rules';

const h = (account: string, keptFen: number, outOrderNo = 'o1', type = 'MERCHANT_ID'): Holding => ({ account, keptFen, outOrderNo, type });

describe('proportional returns', () => {
  test('the total is the exact share rounded once; leftover fen go to the largest remainders', () => {
    const r = proportionalReturns(333, 1000, [h('a', 100), h('b', 100), h('c', 99)]);
    expect(r.map((x) => [x.account, x.amountFen])).toEqual([['a', 34], ['b', 33], ['c', 33]]);
  });

  test('personal receivers return nothing; an account split over batches returns from its oldest first', () => {
    const r = proportionalReturns(1000, 1000, [h('a', 30, 'o1'), h('p', 50, 'o1', 'PERSONAL_OPENID'), h('a', 70, 'o2')]);
    expect(r).toEqual([{ account: 'a', outOrderNo: 'o1', amountFen: 30 }, { account: 'a', outOrderNo: 'o2', amountFen: 70 }]);
  });

  test('for any payment: parts add up to round(refund × kept / paid), and nobody returns more than it keeps', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 30 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (paid, keptRaw, f) => {
          const scale = Math.min(1, (paid * 0.3) / keptRaw.reduce((a, b) => a + b, 0));
          const kept = keptRaw.map((k) => Math.max(1, Math.floor(k * scale)));
          const total = kept.reduce((a, b) => a + b, 0);
          fc.pre(total <= paid);
          const refund = Math.max(1, Math.floor(paid * f));
          const r = proportionalReturns(refund, paid, kept.map((k, i) => h(`m${i}`, k)));
          const sum = r.reduce((s, x) => s + x.amountFen, 0);
          expect(sum).toBe(Math.round((refund * total) / paid));
          for (const x of r) expect(x.amountFen).toBeLessThanOrEqual(kept[Number(x.account.slice(1))]!);
        },
      ),
    );
  });
});

describe('explicit returns', () => {
  test('refuses personal receivers, unknown accounts, more than kept and more than the refund', () => {
    const hs = [h('a', 100), h('p', 50, 'o1', 'PERSONAL_OPENID')];
    expect(() => explicitReturns([{ account: 'p', amount: 1 }], 500, hs)).toThrow(/PERSONAL_OPENID/);
    expect(() => explicitReturns([{ account: 'x', amount: 1 }], 500, hs)).toThrow(/no split money/);
    expect(() => explicitReturns([{ account: 'a', amount: 101 }], 500, hs)).toThrow(/holds 100/);
    expect(() => explicitReturns([{ account: 'a', amount: 60 }], 50, hs)).toThrow(/more than the refund/);
    expect(explicitReturns([{ account: 'a', amount: 60 }], 500, hs)).toEqual([{ account: 'a', outOrderNo: 'o1', amountFen: 60 }]);
  });
});

test('out_return_no is deterministic and a retry gets the next number', () => {
  expect(outReturnNo('re_x', 2, 0)).toBe('re_x-r2');
  expect(outReturnNo('re_x', 2, 1)).toBe('re_x-r2-1');
});

import fc from 'fast-check';
import { beijingShopperTime } from '../../src/lib/beijing';

describe('beijingShopperTime', () => {
  it('When any instant from 2000 to 2100 is shown, then the text is what toLocaleString(zh-CN, Asia/Shanghai) makes', () => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) }), (ms) => {
        const d = new Date(ms);
        expect(beijingShopperTime(d)).toBe(d.toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false }));
      }),
      { numRuns: 2000 },
    );
  });

  it('When it is 16:00 UTC, then the shopper reads midnight of the next day', () => {
    expect(beijingShopperTime(new Date('2026-12-31T16:00:00Z'))).toBe('2027/1/1 00:00:00');
  });
});

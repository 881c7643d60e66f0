import { fenToYuan, fenTimesRatio } from '../../src/lib/money';

describe('money', () => {
  it('formats fen as yuan for display', () => {
    expect(fenToYuan(1)).toBe('0.01');
    expect(fenToYuan(12345)).toBe('123.45');
    expect(fenToYuan(100)).toBe('1.00');
  });
  it('takes a ratio of an amount without float drift, rounding down', () => {
    expect(fenTimesRatio(100, 0.3)).toBe(30);
    expect(fenTimesRatio(999, 0.3)).toBe(299);
    expect(fenTimesRatio(1, 0.3)).toBe(0);
    expect(fenTimesRatio(123456789, 0.3)).toBe(37037036);
  });
});

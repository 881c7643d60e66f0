import { SourceLimiter } from '../../src/lib/source-limiter';

describe('SourceLimiter', () => {
  it('When a source goes over its allowance, then it is refused until the next minute, and other sources are not affected', () => {
    let now = 60_000 * 1000 + 5;
    const l = new SourceLimiter(2, () => now);
    expect([l.take('a'), l.take('a'), l.take('a')]).toEqual([true, true, false]);
    expect(l.take('b')).toBe(true);
    now += 60_000;
    expect(l.take('a')).toBe(true);
    expect(l.totals).toEqual({ allowed: 4, limited: 1 });
  });

  it('When more sources than it tracks arrive in one minute, then new ones are refused (memory stays bounded)', () => {
    const l = new SourceLimiter(5, () => 0, 3);
    expect(['a', 'b', 'c', 'd'].map((s) => l.take(s))).toEqual([true, true, true, false]);
    expect(l.take('a')).toBe(true);
  });
});

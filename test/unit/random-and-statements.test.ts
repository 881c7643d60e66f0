import { pooledRandomBytes } from '../../src/lib/random';
import { PLAN_EACH_TIME, statementNamer } from '../../src/lib/prepared-statements';

describe('pooledRandomBytes', () => {
  it('When many small values are drawn across pool refills, then each has its length and none repeats', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const b = pooledRandomBytes(16);
      expect(b).toHaveLength(16);
      seen.add(b.toString('hex'));
    }
    expect(seen.size).toBe(5000);
  });

  it('When a value is kept and more are drawn, then the kept bytes do not change (a copy, not a view of the pool)', () => {
    const kept = pooledRandomBytes(32);
    const before = kept.toString('hex');
    for (let i = 0; i < 600; i++) pooledRandomBytes(32);
    expect(kept.toString('hex')).toBe(before);
  });

  it('When more than the pool hands out at once is asked for, then it is drawn directly', () => {
    expect(pooledRandomBytes(10_000)).toHaveLength(10_000);
  });
});

describe('statementNamer', () => {
  it('When a text has parameters, then it gets a name that depends only on the text', () => {
    const a = statementNamer();
    const b = statementNamer();
    const name = a({ sql: 'SELECT $1', args: [1] });
    expect(name).toMatch(/^gw_[\w-]{24}$/);
    expect(b({ sql: 'SELECT $1', args: [2] })).toBe(name);
    expect(a({ sql: 'SELECT $1 + 1', args: [2] })).not.toBe(name);
  });

  it('When a text has no parameters (it may hold several statements), then it stays unnamed', () => {
    expect(statementNamer()({ sql: 'BEGIN', args: [] })).toBeUndefined();
  });

  it('When a text asks to be planned each time, then it stays unnamed', () => {
    expect(statementNamer()({ sql: `${PLAN_EACH_TIME} SELECT $1`, args: [1] })).toBeUndefined();
  });

  it('When the cap of distinct texts is reached, then known texts keep their names and new ones run unnamed', () => {
    const n = statementNamer(2);
    const first = n({ sql: 'SELECT $1', args: [1] });
    n({ sql: 'SELECT $1, 2', args: [1] });
    expect(n({ sql: 'SELECT $1, 3', args: [1] })).toBeUndefined();
    expect(n({ sql: 'SELECT $1', args: [1] })).toBe(first);
  });
});

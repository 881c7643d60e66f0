import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config';
import { dueBillDates } from '../../src/modules/reconciliation/reconcile.schedule';

describe('bill reconciliation schedule', () => {
  it('When Beijing time passes RECONCILE_BILLS_AT, then yesterday (Beijing) becomes due; before it, the day before is the newest', () => {
    // 2026-12-02 02:29 UTC = 10:29 Beijing; 02:30 UTC = 10:30.
    expect(dueBillDates(new Date('2026-12-02T02:29:00Z'), '10:30')).toEqual(['2026-11-30', '2026-11-29', '2026-11-28']);
    expect(dueBillDates(new Date('2026-12-02T02:30:00Z'), '10:30')).toEqual(['2026-12-01', '2026-11-30', '2026-11-29']);
    // 17:00 UTC on Dec 1 is already Dec 2 in Beijing (01:00): before 10:30, so Nov 30 is the newest due.
    expect(dueBillDates(new Date('2026-12-01T17:00:00Z'), '10:30')[0]).toBe('2026-11-30');
    expect(dueBillDates(new Date('2026-12-01T16:00:00Z'), '00:00')[0]).toBe('2026-12-01');
  });

  it('When RECONCILE_BILLS_AT is not a time of day, then start-up fails naming it', () => {
    const env = Object.fromEntries(
      readFileSync(path.join(__dirname, '../../.env.example'), 'utf8')
        .split('\n')
        .filter((l) => /^[A-Z0-9_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    for (const bad of ['25:00', '10:3', 'ten', '10:60']) {
      expect(() => loadConfig({ ...env, RECONCILE_BILLS_AT: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ ...env, RECONCILE_BILLS_AT: bad })).toThrow(/RECONCILE_BILLS_AT/);
    }
    expect(loadConfig({ ...env, RECONCILE_BILLS_AT: '09:05' }).RECONCILE_BILLS_AT).toBe('09:05');
  });
});

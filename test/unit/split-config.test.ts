import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config';
import { sandboxEnv } from '../../src/config/sandbox';

const example = Object.fromEntries(
  readFileSync(path.join(__dirname, '../../.env.example'), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z0-9_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

describe('PROFIT_SHARING_DELAY (issue 3: "paid_at + PROFIT_SHARING_DELAY", seconds)', () => {
  it('When it is not set, then the wait after payment is 70 seconds', () => {
    const env = { ...example };
    delete env.PROFIT_SHARING_DELAY;
    expect(loadConfig(env).PROFIT_SHARING_DELAY).toBe(70);
    expect(example.PROFIT_SHARING_DELAY).toBe('70');
  });

  it('When it is a whole number of seconds ≥ 0, then it is taken as is; otherwise the error names it', () => {
    expect(loadConfig({ ...example, PROFIT_SHARING_DELAY: '0' }).PROFIT_SHARING_DELAY).toBe(0);
    expect(loadConfig({ ...example, PROFIT_SHARING_DELAY: '90' }).PROFIT_SHARING_DELAY).toBe(90);
    for (const bad of ['-1', '1.5', 'soon']) {
      expect(() => loadConfig({ ...example, PROFIT_SHARING_DELAY: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ ...example, PROFIT_SHARING_DELAY: bad })).toThrow(/PROFIT_SHARING_DELAY/);
    }
  });

  it('When the gateway runs in sandbox mode, then the wait is 0', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'split-config-'));
    try {
      for (const f of ['apiv3_key', 'merchant_cert_serial', 'platform_public_key_id', 'platform_cert_serial']) writeFileSync(path.join(dir, f), 'x');
      const env = sandboxEnv({ keysDir: dir, simulatorUrl: 'http://127.0.0.1:1', databaseUrl: 'postgres://x', redisUrl: 'redis://x', port: 0, publicBaseUrl: 'http://127.0.0.1:1' });
      expect(env.PROFIT_SHARING_DELAY).toBe('0');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('issue 7 §3 / issue 8 §8: what WeChat grants and allows', () => {
  it('When PROFIT_SHARING_MAX_RATIO is above 0.3 (WeChat grants a direct merchant 30% by default), then the config is refused naming it', () => {
    expect(() => loadConfig({ ...example, PROFIT_SHARING_MAX_RATIO: '1' })).toThrow(/PROFIT_SHARING_MAX_RATIO/);
    expect(() => loadConfig({ ...example, PROFIT_SHARING_MAX_RATIO: '0.31' })).toThrow(ConfigError);
    expect(loadConfig({ ...example, PROFIT_SHARING_MAX_RATIO: '0.3' }).PROFIT_SHARING_MAX_RATIO).toBe(0.3);
  });

  it('When PROFIT_SHARING_ORDER_INTERVAL_MS is not set, then one order gets at most one split request per second', () => {
    const env = { ...example };
    delete env.PROFIT_SHARING_ORDER_INTERVAL_MS;
    expect(loadConfig(env).PROFIT_SHARING_ORDER_INTERVAL_MS).toBe(1000);
    expect(loadConfig({ ...example, PROFIT_SHARING_ORDER_INTERVAL_MS: '0' }).PROFIT_SHARING_ORDER_INTERVAL_MS).toBe(0);
  });
});

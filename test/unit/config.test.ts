import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, envSchema, loadConfig } from '../../src/config/config';

const example = Object.fromEntries(
  readFileSync(path.join(__dirname, '../../.env.example'), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z0-9_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

describe('config', () => {
  it('When .env.example is loaded, then it parses and documents every key of the schema', () => {
    const cfg = loadConfig(example);
    expect(cfg.WECHATPAY_PLATFORM_KEYS).toEqual({ PUB_KEY_ID_0100000000000000000000000000: '/etc/gateway/pub_key.pem' });
    expect(cfg.notifyUrl).toBe('https://pay.example.com/notify/wechatpay/transactions');
    expect(Object.keys(example).sort()).toEqual(Object.keys(envSchema.shape).sort());
  });

  it('When variables are bad, then the error names each of them', () => {
    const bad = { ...example, WECHATPAY_APIV3_KEY: 'short', PORT: 'eighty', PROFIT_SHARING_RECEIVER_LIMIT: '51', DATABASE_POOL_SIZE: '0' };
    delete (bad as Record<string, string>).DATABASE_URL;
    try {
      loadConfig(bad);
      throw new Error('expected ConfigError');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const msg = (e as Error).message;
      for (const k of ['WECHATPAY_APIV3_KEY', 'PORT', 'DATABASE_URL', 'PROFIT_SHARING_RECEIVER_LIMIT', 'DATABASE_POOL_SIZE']) expect(msg).toContain(k);
    }
  });
});

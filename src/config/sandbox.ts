import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Env } from './config';

/** Fixed ids of the sandbox merchant account (the simulator accepts exactly these). */
export const SANDBOX_MCHID = '1900000109';
export const SANDBOX_APPID = 'wxd678efh567hg6787';
export const SANDBOX_APP_SECRET = 'sandbox-official-account-secret';

/**
 * The environment sandbox mode runs with: every WeChat URL points at the simulator and the key
 * files are the ones in `keysDir` (see README "Sandbox keys"). Explicit env values win.
 */
export function sandboxEnv(args: {
  keysDir: string;
  simulatorUrl: string;
  databaseUrl: string;
  redisUrl: string;
  port: number;
  publicBaseUrl: string;
}): Env {
  const read = (f: string) => readFileSync(join(args.keysDir, f), 'utf8').trim();
  return {
    APP_MODE: 'sandbox',
    NODE_ENV: 'development',
    PORT: String(args.port),
    PUBLIC_BASE_URL: args.publicBaseUrl,
    DATABASE_URL: args.databaseUrl,
    REDIS_URL: args.redisUrl,
    STATE_SECRET: `sandbox-state-secret-${read('apiv3_key')}`,
    METRICS_TOKEN: 'sandbox-metrics-token',
    WECHATPAY_BASE_URL: args.simulatorUrl,
    WECHAT_OAUTH_BASE_URL: args.simulatorUrl,
    WECHAT_API_BASE_URL: args.simulatorUrl,
    WECHATPAY_MCHID: SANDBOX_MCHID,
    WECHATPAY_APPID: SANDBOX_APPID,
    WECHAT_APP_SECRET: SANDBOX_APP_SECRET,
    WECHATPAY_MERCHANT_PRIVATE_KEY_PATH: join(args.keysDir, 'merchant_private_key.pem'),
    WECHATPAY_MERCHANT_CERT_SERIAL: read('merchant_cert_serial'),
    WECHATPAY_APIV3_KEY: read('apiv3_key'),
    // Both verification modes at once, as during a real migration.
    WECHATPAY_PLATFORM_KEYS: [
      `${read('platform_public_key_id')}=${join(args.keysDir, 'platform_public_key.pem')}`,
      `${read('platform_cert_serial')}=${join(args.keysDir, 'platform_cert.pem')}`,
    ].join(','),
    // Stable across runs (derived from the sandbox's own key files): sandbox secrets stay readable.
    SECRETS_MASTER_KEY: `sandbox:${createHash('sha256').update(`secrets:${read('apiv3_key')}`).digest('base64')}`,
    ADMIN_TOKEN: `sandbox-admin-${createHash('sha256').update(`admin:${read('apiv3_key')}`).digest('hex').slice(0, 32)}`,
    PROFIT_SHARING_DELAY: '0',
    PAYMENT_QUERY_AFTER_SECONDS: '3',
    REFUND_QUERY_AFTER_MS: '5000',
    // The demo shop's built-in receiver is on loopback; a short schedule shows retries in minutes, not days.
    WEBHOOK_ALLOW_LOOPBACK: 'true',
    WEBHOOK_RETRY_SCHEDULE: '1,5,15,60',
  };
}

import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { parseMasterKeys } from '../lib/secrets';

/**
 * The whole runtime configuration, parsed once at boot from the environment.
 * `process.env` is read nowhere else: everything below receives a `Config`.
 * Every key here is documented, one line each, in `.env.example`.
 */
const bool = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1');

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  APP_MODE: z.enum(['sandbox', 'production']).default('production'),
  PORT: int(3000, 0),
  PUBLIC_BASE_URL: z.url().default('http://localhost:3000'),
  TRUST_PROXY: z.string().default('loopback'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
  /** Read by `npm start` (the shell), not by the app: V8's old-space cap in MB; validated here so a typo fails clearly. */
  GATEWAY_HEAP_MB: int(192, 64),
  /** Prepare parameterised statements per connection (src/lib/prepared-statements.ts); false behind a pooler that cannot carry them. */
  DATABASE_PREPARED_STATEMENTS: bool.default(true),
  /** PostgreSQL connections per gateway process (pg's pool, shared by the client and the hot raw statements). */
  DATABASE_POOL_SIZE: int(10, 1),
  /** One server (redis://, rediss://) or a Redis Cluster: redis+cluster://host:port,host:port (src/lib/redis.ts). */
  REDIS_URL: z.string().regex(/^rediss?(\+cluster)?:\/\//, 'must be a redis://, rediss:// or redis+cluster:// URL'),
  STATE_SECRET: z.string().min(32, 'must be at least 32 characters'),

  SANDBOX_API_KEY: z.string().min(16).default('sk_sandbox_demo_key_0001'),
  /** API key of the sandbox's second demo merchant, a sub-merchant of the demo service provider. */
  SANDBOX_PARTNER_API_KEY: z.string().min(16).default('sk_test_sandbox_partner_0001'),

  /** Bearer token of the admin API (/admin/api/...); unset = the admin API answers 404. */
  ADMIN_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Master key(s) of the channel-secret envelopes: kid:base64(32 bytes)[,kid:base64…], first = current. */
  SECRETS_MASTER_KEY: z
    .string()
    .optional()
    .superRefine((v, ctx) => {
      try {
        parseMasterKeys(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
      }
    }),
  /** Bearer token of GET /metrics; unset = no /metrics route (404). */
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),

  WECHATPAY_BASE_URL: z.url().default('https://api.mch.weixin.qq.com'),
  WECHAT_OAUTH_BASE_URL: z.url().default('https://open.weixin.qq.com'),
  WECHAT_API_BASE_URL: z.url().default('https://api.weixin.qq.com'),
  WECHATPAY_MCHID: z.string().regex(/^\d{8,32}$/, 'must be the numeric merchant id'),
  WECHATPAY_APPID: z.string().regex(/^wx[0-9a-zA-Z]{16}$/, 'must look like wx + 16 characters'),
  WECHAT_APP_SECRET: z.string().min(1),
  WECHATPAY_MERCHANT_PRIVATE_KEY_PATH: z.string().min(1),
  WECHATPAY_MERCHANT_CERT_SERIAL: z.string().regex(/^[0-9A-Fa-f]{8,40}$/, 'must be the hex serial of the merchant API certificate'),
  WECHATPAY_APIV3_KEY: z.string().length(32, 'must be exactly 32 characters'),
  /** `serial-or-PUB_KEY_ID=path.pem` pairs, comma separated: public-key mode and platform certificates side by side. */
  WECHATPAY_PLATFORM_KEYS: z
    .string()
    .min(1)
    .transform((s, ctx) => {
      const out: Record<string, string> = {};
      for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
        const eq = part.indexOf('=');
        if (eq <= 0) {
          ctx.addIssue({ code: 'custom', message: `"${part}" is not serial=path` });
          return z.NEVER;
        }
        out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
      }
      return out;
    }),
  /** Defaults to PUBLIC_BASE_URL + /notify/wechatpay/transactions. */
  WECHATPAY_NOTIFY_URL: z.url().optional(),
  WECHATPAY_HTTP_TIMEOUT_MS: int(10_000, 100),

  CHECKOUT_DEFAULT_EXPIRES_IN: int(7200, 60),
  /** After the shopper is back on the result page this long without a notify, ask the channel. */
  PAYMENT_QUERY_AFTER_SECONDS: int(5, 0),
  SWEEPER_INTERVAL_MS: int(30_000, 100),

  PROFIT_SHARING_RECEIVER_LIMIT: int(50, 1).pipe(z.number().max(50)),
  /** WeChat grants a direct merchant at most 30% by default (cumulative, on amount − fee): no more. */
  PROFIT_SHARING_MAX_RATIO: z.coerce.number().gt(0).max(0.3, 'must be at most 0.3: WeChat grants a direct merchant at most 30% (分账比例) by default').default(0.3),
  PROFIT_SHARING_MAX_REQUESTS: int(50, 1),
  /** Seconds after paid_at before the first split request (issue 3 names it PROFIT_SHARING_DELAY). */
  PROFIT_SHARING_DELAY: int(70, 0),
  PROFIT_SHARING_CONCURRENCY: int(4, 1),
  PROFIT_SHARING_RATE_PER_SECOND: int(30, 1),
  /** Partner mode: split requests per second per service provider (WeChat: 300), on top of the per-sub-merchant rate above. */
  PROFIT_SHARING_SP_RATE_PER_SECOND: int(300, 1),
  /** Least time between two split requests of the SAME payment, from the last answer (WeChat: "1秒1次" per order). */
  PROFIT_SHARING_ORDER_INTERVAL_MS: int(1000, 0),
  PROFIT_SHARING_POLL_MS: int(2_000, 10),
  PROFIT_SHARING_WINDOW_DAYS: int(30, 1),
  PROFIT_SHARING_ALERT_BEFORE_DAYS: int(3, 0),
  RECONCILE_INTERVAL_MS: int(60_000, 100),

  /** Daily bill reconciliation: on (default) or off for this deployment (the CLI works either way). */
  RECONCILE_BILLS_ENABLED: bool.default(true),
  /**
   * Beijing time `HH:MM` from which yesterday's bills are fetched. WeChat: "每日10点后生成昨日交易账单文件"
   * (FACTS-partner-bills §2.1, §2.3); a bill not yet there is retried every RECONCILE_BILLS_RETRY_MS.
   */
  RECONCILE_BILLS_AT: z
    .string()
    .default('10:30')
    .refine((v) => /^([01]\d|2[0-3]):[0-5]\d$/.test(v), 'must be HH:MM (Beijing time, 24 h)'),
  /** How often a gateway process looks for reconciliation runs that are due, ms. */
  RECONCILE_BILLS_POLL_MS: int(60_000, 100),
  /** Wait before a failed run (bill not ready, bad hash, channel down) is tried again, ms (WeChat: every 30 min). */
  RECONCILE_BILLS_RETRY_MS: int(1_800_000, 100),
  /** Attempts before a run is marked failed (a person re-runs it with `admin reconcile`). */
  RECONCILE_BILLS_MAX_ATTEMPTS: int(48, 1),

  /** Verified notifies (the audit trail of payments) are kept this long. */
  NOTIFY_RETENTION_DAYS: int(180, 1),
  /** Notifies refused before verification (forged, probes, junk) are kept this long, cut short. */
  NOTIFY_REJECTED_RETENTION_DAYS: int(7, 0),
  /** Rejected notifies stored per source IP per minute; more are only counted (verified ones are never limited). */
  NOTIFY_REJECTED_PER_MINUTE: int(60, 0),
  NOTIFY_PURGE_INTERVAL_MS: int(3_600_000, 1000),

  /** HTTP server: slow clients must not hold connections (Node's defaults allow 300 s per request). */
  HTTP_HEADERS_TIMEOUT_MS: int(15_000, 1000),
  HTTP_REQUEST_TIMEOUT_MS: int(30_000, 1000),
  /** Longer than the proxy's idle timeout (nginx 60 s, ALB 60 s), so the proxy closes idle connections first. */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: int(65_000, 0),
  HTTP_MAX_CONNECTIONS: int(2_000, 1),

  /** No refund notify this long after WeChat accepted a refund: query it (then with backoff). */
  REFUND_QUERY_AFTER_MS: int(60_000, 10),
  /** How often refunds due for a step (retry, query, crashed driver) are picked up. */
  REFUND_SYNC_INTERVAL_MS: int(1_000, 50),
  /** Return orders of one refund sent at once (1 = one by one: a failure then stops before more money moves). */
  REFUND_RETURN_CONCURRENCY: int(5, 1).pipe(z.number().max(50)),

  /** Seconds between webhook delivery attempts, comma-separated (jittered upward); the last failure marks the delivery failed. */
  WEBHOOK_RETRY_SCHEDULE: z
    .string()
    .default('5,300,1800,7200,18000,36000,36000,86400,86400')
    .transform((s, ctx) => {
      const out = s.split(',').map((p) => Number(p.trim()));
      if (out.length === 0 || out.some((n) => !Number.isFinite(n) || n < 0)) {
        ctx.addIssue({ code: 'custom', message: 'must be non-negative numbers of seconds, comma-separated' });
        return z.NEVER;
      }
      return out;
    }),
  /** A webhook answer must come within this (2xx = delivered). */
  WEBHOOK_TIMEOUT_MS: int(10_000, 100),
  /** Deliveries in flight per gateway process (a hanging endpoint holds one slot per checkout, never all). */
  WEBHOOK_CONCURRENCY: int(32, 1),
  /** How often the dispatcher looks for new events and due deliveries, ms. */
  WEBHOOK_POLL_MS: int(200, 10),
  /** Allow loopback webhook URLs (127.0.0.0/8, ::1): true in the sandbox for its built-in receiver, never in production. */
  WEBHOOK_ALLOW_LOOPBACK: bool.default(false),

  RUN_WORKERS: bool.default(true),
  /** SIGTERM: requests and jobs in flight get this long to finish (keep it under the orchestrator's grace period, 30 s in Kubernetes). */
  SHUTDOWN_TIMEOUT_MS: int(25_000, 1000),
  /** Gateway processes on one port (node:cluster); unset: one per core in production, 1 in the sandbox. */
  WEB_CONCURRENCY: z.coerce.number().int().min(1).max(64).optional(),
  /** Prefix of every BullMQ key in Redis (separates environments sharing one Redis). */
  QUEUE_PREFIX: z.string().regex(/^[\w-]{1,32}$/).default('gw'),
});

/** Raw environment: every value a string, as process.env has it. */
export type Env = { [K in keyof z.input<typeof envSchema>]?: string };
export type Config = z.output<typeof envSchema> & { notifyUrl: string; sandbox: boolean; webConcurrency: number };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** The subset the admin CLI needs (it runs where the WeChat Pay settings may be absent). */
// REDIS_URL optional: with it, a revoked key is dropped at once from every running gateway's key cache.
export const adminEnvSchema = envSchema
  .pick({ APP_MODE: true, DATABASE_URL: true, DATABASE_PREPARED_STATEMENTS: true, DATABASE_POOL_SIZE: true, SECRETS_MASTER_KEY: true, PUBLIC_BASE_URL: true, LOG_LEVEL: true })
  .extend({ REDIS_URL: envSchema.shape.REDIS_URL.optional() });
export type AdminEnvConfig = z.output<typeof adminEnvSchema>;

export function loadAdminConfig(env: Record<string, string | undefined>): AdminEnvConfig {
  const clean = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = adminEnvSchema.safeParse(clean);
  if (!parsed.success)
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${clean[String(i.path[0])] === undefined ? 'is required' : i.message}`));
  return parsed.data;
}

/** Parses the environment; throws a ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const clean = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(clean);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const name = i.path.join('.') || '(env)';
        return `${name}: ${clean[name] === undefined ? 'is required' : i.message}`;
      }),
    );
  }
  const c = parsed.data;
  if (c.HTTP_HEADERS_TIMEOUT_MS > c.HTTP_REQUEST_TIMEOUT_MS)
    throw new ConfigError(['HTTP_HEADERS_TIMEOUT_MS: must not exceed HTTP_REQUEST_TIMEOUT_MS (Node refuses it)']);
  return {
    ...c,
    sandbox: c.APP_MODE === 'sandbox',
    webConcurrency: c.WEB_CONCURRENCY ?? (c.APP_MODE === 'sandbox' ? 1 : availableParallelism()),
    notifyUrl: c.WECHATPAY_NOTIFY_URL ?? new URL('/notify/wechatpay/transactions', c.PUBLIC_BASE_URL).toString(),
  };
}

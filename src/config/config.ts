import { z } from 'zod';

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
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL'),
  STATE_SECRET: z.string().min(32, 'must be at least 32 characters'),

  SANDBOX_API_KEY: z.string().min(16).default('sk_sandbox_demo_key_0001'),
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
  PROFIT_SHARING_MAX_RATIO: z.coerce.number().gt(0).max(1).default(0.3),
  PROFIT_SHARING_MAX_REQUESTS: int(50, 1),
  /** Seconds after paid_at before the first split request (issue 3 names it PROFIT_SHARING_DELAY). */
  PROFIT_SHARING_DELAY: int(70, 0),
  PROFIT_SHARING_CONCURRENCY: int(4, 1),
  PROFIT_SHARING_RATE_PER_SECOND: int(30, 1),
  PROFIT_SHARING_POLL_MS: int(2_000, 10),
  PROFIT_SHARING_WINDOW_DAYS: int(30, 1),
  PROFIT_SHARING_ALERT_BEFORE_DAYS: int(3, 0),
  RECONCILE_INTERVAL_MS: int(60_000, 100),

  RUN_WORKERS: bool.default(true),
  /** Prefix of every BullMQ key in Redis (separates environments sharing one Redis). */
  QUEUE_PREFIX: z.string().regex(/^[\w-]{1,32}$/).default('gw'),
});

/** Raw environment: every value a string, as process.env has it. */
export type Env = { [K in keyof z.input<typeof envSchema>]?: string };
export type Config = z.output<typeof envSchema> & { notifyUrl: string; sandbox: boolean };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
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
  return {
    ...c,
    sandbox: c.APP_MODE === 'sandbox',
    notifyUrl: c.WECHATPAY_NOTIFY_URL ?? new URL('/notify/wechatpay/transactions', c.PUBLIC_BASE_URL).toString(),
  };
}

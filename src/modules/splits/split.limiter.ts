import { pooledRandomBytes } from '../../lib/random';
import type { Redis } from 'ioredis';

/**
 * Limits split requests (POST /v3/profitsharing/orders and /orders/unfreeze) the way WeChat counts them,
 * shared by every worker through Redis: per mchid in a sliding second for a direct merchant (FACTS §5:
 * FREQUENCY_LIMITED beyond the cap); in partner mode per service provider (300/s) AND per sub-merchant
 * (30/s) at once (FACTS-partner-bills §1.10): a request goes only when both windows have room, and then
 * counts in both. A sliding-window log per key, not a token bucket:
 *
 *   acquire: drop entries older than the window from every key; if each key has fewer than its limit,
 *            add one entry to every key, scored "in flight" (now + inFlightMs), and go; otherwise answer
 *            how long the fullest key needs.
 *   done:    re-score the entries with the time the answer came back.
 *
 * Why re-score at the answer: the channel stamps a request when it ARRIVES, somewhere between our
 * acquire and the answer. Counting each request until (answer + window) is conservative for every
 * arrival order, so the channel can never see more than `limit` in any window of its own, however
 * the network delays individual requests. Time is Redis's clock, common to all workers.
 *
 * Redis Cluster: one script touches all the keys of a request, so they must share a slot. The prefix is
 * the queue's hash tag (`{gw}`); without one, the partner keys carry the SP's mchid as their own tag.
 */
const ACQUIRE = `
local window = tonumber(ARGV[1])
local inflight = tonumber(ARGV[2])
local member = ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local w = tonumber(first[2]) + window - now + 1
    if w > wait then wait = w end
  end
end
if wait == 0 then
  for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, now + inflight, member)
    redis.call('PEXPIRE', key, window + inflight + 1000)
  end
  return 0
end
if wait > window then wait = window end
if wait < 1 then wait = 1 end
return wait
`;

const DONE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, key in ipairs(KEYS) do redis.call('ZADD', key, 'XX', now, ARGV[1]) end
return 1
`;

/** Who a split request counts against: the signing mchid, and in partner mode the sub-merchant too. */
export interface LimitKey {
  mchid: string;
  subMchid?: string;
}

export interface RateLimiter {
  /** Waits for a slot under every limit of `key`, runs `fn`, and records when its answer came back. */
  run<T>(key: LimitKey, fn: () => Promise<T>): Promise<T>;
}

export function createRedisRateLimiter(
  redis: Redis,
  opts: {
    keyPrefix: string;
    /** Per direct mchid, and per sub-merchant in partner mode (WeChat: 30/s). */
    limitPerSecond: number;
    /** Per service provider in partner mode (WeChat: 300/s); default = limitPerSecond. */
    spLimitPerSecond?: number;
    inFlightMs: number;
    windowMs?: number;
    sleep?: (ms: number) => Promise<void>;
    /** Once per request that had to wait, with the seconds it waited (metrics). */
    onWait?: (seconds: number) => void;
  },
): RateLimiter {
  const windowMs = opts.windowMs ?? 1000;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const base = `${opts.keyPrefix}:split-rate`;
  const keysOf = (k: LimitKey): Array<[string, number]> =>
    k.subMchid === undefined
      ? [[`${base}:${k.mchid}`, opts.limitPerSecond]]
      : [
          [`${base}:{${k.mchid}}:sp`, opts.spLimitPerSecond ?? opts.limitPerSecond],
          [`${base}:{${k.mchid}}:sub:${k.subMchid}`, opts.limitPerSecond],
        ];
  return {
    async run(key, fn) {
      const keys = keysOf(key);
      const names = keys.map(([k]) => k);
      const member = pooledRandomBytes(9).toString('base64url');
      const started = performance.now();
      let waited = false;
      for (;;) {
        const wait = Number(await redis.eval(ACQUIRE, names.length, ...names, windowMs, opts.inFlightMs, member, ...keys.map(([, l]) => l)));
        if (wait === 0) break;
        waited = true;
        // A little jitter so waiting workers do not all retry in the same millisecond.
        await sleep(wait + Math.floor(Math.random() * 5));
      }
      if (waited) opts.onWait?.((performance.now() - started) / 1000);
      try {
        return await fn();
      } finally {
        await redis.eval(DONE, names.length, ...names, member).catch(() => undefined);
      }
    },
  };
}

/** The limit key of a channel's split requests. */
export const limitKeyOf = (channel: { mchid: string; partner?: { subMchid: string } }): LimitKey =>
  channel.partner ? { mchid: channel.mchid, subMchid: channel.partner.subMchid } : { mchid: channel.mchid };

import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Per-merchant limit on split requests (POST /v3/profitsharing/orders and /orders/unfreeze), shared by
 * every worker through Redis. WeChat counts requests per mchid in a sliding second (FACTS §5:
 * FREQUENCY_LIMITED beyond the cap), so this is a sliding-window log, not a token bucket:
 *
 *   acquire: drop entries older than the window; if fewer than `limit` remain, add one whose score
 *            is "in flight" (now + inFlightMs) and go; otherwise answer how long to wait.
 *   done:    re-score the entry with the time the answer came back.
 *
 * Why re-score at the answer: the channel stamps a request when it ARRIVES, somewhere between our
 * acquire and the answer. Counting each request until (answer + window) is conservative for every
 * arrival order, so the channel can never see more than `limit` in any window of its own, however
 * the network delays individual requests. Time is Redis's clock, common to all workers.
 */
const ACQUIRE = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local inflight = tonumber(ARGV[3])
local member = ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local n = redis.call('ZCARD', key)
if n < limit then
  redis.call('ZADD', key, now + inflight, member)
  redis.call('PEXPIRE', key, window + inflight + 1000)
  return 0
end
local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local wait = tonumber(first[2]) + window - now + 1
if wait > window then wait = window end
if wait < 1 then wait = 1 end
return wait
`;

const DONE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
return 1
`;

export interface RateLimiter {
  /** Waits for a slot, runs `fn`, and records when its answer came back. */
  run<T>(mchid: string, fn: () => Promise<T>): Promise<T>;
}

export function createRedisRateLimiter(
  redis: Redis,
  opts: {
    keyPrefix: string;
    limitPerSecond: number;
    inFlightMs: number;
    windowMs?: number;
    sleep?: (ms: number) => Promise<void>;
    /** Once per request that had to wait, with the seconds it waited (metrics). */
    onWait?: (seconds: number) => void;
  },
): RateLimiter {
  const windowMs = opts.windowMs ?? 1000;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const key = (mchid: string) => `${opts.keyPrefix}:split-rate:${mchid}`;
  return {
    async run(mchid, fn) {
      const member = randomBytes(9).toString('base64url');
      const started = performance.now();
      let waited = false;
      for (;;) {
        const wait = Number(await redis.eval(ACQUIRE, 1, key(mchid), opts.limitPerSecond, windowMs, opts.inFlightMs, member));
        if (wait === 0) break;
        waited = true;
        // A little jitter so waiting workers do not all retry in the same millisecond.
        await sleep(wait + Math.floor(Math.random() * 5));
      }
      if (waited) opts.onWait?.((performance.now() - started) / 1000);
      try {
        return await fn();
      } finally {
        await redis.eval(DONE, 1, key(mchid), member).catch(() => undefined);
      }
    },
  };
}

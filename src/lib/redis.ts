import { Redis } from 'ioredis';
import type { Logger } from './logger';

/**
 * The app's Redis client (throttles, queue producers). It fails fast when Redis is down — a command
 * errors after one reconnect attempt or 2 s — so /healthz answers 503 and callers fall back instead
 * of hanging. BullMQ workers use their own connection with maxRetriesPerRequest: null, as BullMQ
 * requires for blocking commands.
 */
export function createRedis(url: string, logger?: Logger): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, commandTimeout: 2000 });
  let lastLog = 0;
  redis.on('error', (err) => {
    // Reconnect attempts repeat the same error many times a second: log at most every 10 s.
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      logger?.warn({ err }, 'redis connection error');
    }
  });
  return redis;
}

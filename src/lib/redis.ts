import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger';

/**
 * REDIS_URL is either one server (`redis://` / `rediss://`) or a Redis Cluster given by some of its
 * nodes: `redis+cluster://[user:password@]host:port,host:port` (`rediss+cluster://` for TLS). In a
 * cluster every multi-key command and script must touch one hash slot: BullMQ's prefix is a hash
 * tag (`{gw}`, split.module.ts) and every other key we use is single-key.
 */
export type RedisTarget =
  | { cluster: false; url: string }
  | { cluster: true; nodes: { host: string; port: number }[]; username?: string; password?: string; tls: boolean };

export function parseRedisUrl(url: string): RedisTarget {
  const m = /^(rediss?)\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/?$/.exec(url);
  if (!m) return { cluster: false, url };
  const nodes = m[4]!.split(',').map((hp) => {
    const i = hp.lastIndexOf(':');
    return { host: i > 0 ? hp.slice(0, i) : hp, port: i > 0 ? Number(hp.slice(i + 1)) : 6379 };
  });
  const dec = (s: string | undefined) => (s ? decodeURIComponent(s) : undefined);
  return { cluster: true, nodes, username: dec(m[2]), password: dec(m[3]), tls: m[1] === 'rediss' };
}

/**
 * The app's Redis client (throttles, queue producers). It fails fast when Redis is down — a command
 * errors after one reconnect attempt or 2 s — so /healthz answers 503 and callers fall back instead
 * of hanging. BullMQ workers use their own connection (`blocking`: maxRetriesPerRequest null, as
 * BullMQ requires for blocking commands). A Cluster is typed as Redis: the commands we use are the same.
 */
export function createRedis(url: string, logger?: Logger, opts: { blocking?: boolean } = {}): Redis {
  const base: RedisOptions = opts.blocking ? { maxRetriesPerRequest: null } : { maxRetriesPerRequest: 1, commandTimeout: 2000 };
  const target = parseRedisUrl(url);
  const redis: Redis = target.cluster
    ? (new Cluster(target.nodes, {
        redisOptions: { ...base, username: target.username, password: target.password, ...(target.tls ? { tls: {} } : {}) },
      }) as unknown as Redis)
    : new Redis(url, base);
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

import { DelayedError, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AppDeps } from '../../app.types';
import { createRedis } from '../../lib/redis';
import { driveCheckout, LOCK_LOST, type DriverDeps } from './split.driver';
import { claimSplitRun, settleSplitRun } from './split.due';
import { createRedisRateLimiter, type RateLimiter } from './split.limiter';
import { SPLIT_QUEUE } from './split.queue';
import { driveJobSchema } from './split.schemas';

export interface SplitWorkerOptions {
  queuePrefix: string;
  /** Payments driven in parallel by this process (default PROFIT_SHARING_CONCURRENCY). */
  concurrency?: number;
  /** Waits up to this long happen inside the job; longer ones put the job back as delayed. */
  inlineWaitMaxMs?: number;
  /** BullMQ job lock: a crashed worker's job is picked up again after this. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  pollBaseMs?: number;
  /** A run's claim on `split_due_at` (split.due.ts): the due scan leaves the payment alone this long. */
  dueLeaseMs?: number;
}

export interface SplitWorker {
  limiter: RateLimiter;
  /** Graceful: lets running jobs reach their next wait. */
  stop(): Promise<void>;
  /** As if the process died: stops at once, jobs keep their locks until they expire (tests). */
  kill(): Promise<void>;
}

/** Per-payment mutual exclusion across workers: one run at a time, so one batch in flight. */
function paymentLock(redis: Redis, prefix: string, ttlMs: number) {
  const key = (checkoutId: string) => `${prefix}:split-lock:${checkoutId}`;
  return {
    async acquire(checkoutId: string, owner: string): Promise<boolean> {
      if ((await redis.set(key(checkoutId), owner, 'PX', ttlMs, 'NX')) === 'OK') return true;
      // Re-entrant for the same job id: a stalled job picked up again after its worker died.
      const r = await redis.eval(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
        1, key(checkoutId), owner, ttlMs);
      return Number(r) === 1;
    },
    async release(checkoutId: string, owner: string): Promise<void> {
      await redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, key(checkoutId), owner);
    },
    /** false = the lock is not ours any more (expired and taken by another worker). */
    async renew(checkoutId: string, owner: string): Promise<boolean> {
      const r = await redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0", 1, key(checkoutId), owner, ttlMs);
      return Number(r) === 1;
    },
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The split worker: BullMQ jobs "drive checkout X" (split.driver.ts). Channel errors never fail a
 * job — the driver stores them and answers "wait"; a job fails only on unexpected errors (database
 * down: BullMQ retries with backoff) or a payload that can never be valid (UnrecoverableError).
 */
export async function startSplitWorker(deps: AppDeps, opts: SplitWorkerOptions): Promise<SplitWorker> {
  const { config } = deps;
  const limiter = createRedisRateLimiter(deps.redis, {
    keyPrefix: opts.queuePrefix,
    limitPerSecond: config.PROFIT_SHARING_RATE_PER_SECOND,
    spLimitPerSecond: config.PROFIT_SHARING_SP_RATE_PER_SECOND,
    inFlightMs: config.WECHATPAY_HTTP_TIMEOUT_MS + 1000,
    onWait: (seconds) => {
      deps.metrics.limiterWaits.inc();
      deps.metrics.limiterWaitSeconds.inc(seconds);
    },
  });
  const driverDeps: DriverDeps = { ...deps, limiter, pollBaseMs: opts.pollBaseMs };
  const lockDurationMs = opts.lockDurationMs ?? 30_000;
  const lockTtlMs = Math.max(lockDurationMs, 5_000);
  const lock = paymentLock(deps.redis, opts.queuePrefix, lockTtlMs);
  const inlineMax = opts.inlineWaitMaxMs ?? 1_000;
  const dueLeaseMs = opts.dueLeaseMs ?? 15_000;
  let stopping = false;
  // Its own blocking connection (a Cluster when REDIS_URL is redis+cluster://), closed with the worker.
  const workerRedis = createRedis(config.REDIS_URL, deps.logger, { blocking: true });

  const worker = new Worker(
    SPLIT_QUEUE,
    async (job, token) => {
      const parsed = driveJobSchema.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError(`bad split job payload: ${parsed.error.issues[0]?.message}`);
      const { checkoutId } = parsed.data;
      const owner = job.id ?? `anon-${Date.now()}`;
      const later = async (ms: number): Promise<never> => {
        await job.moveToDelayed(Date.now() + Math.max(0, ms), token);
        throw new DelayedError();
      };
      if (!(await lock.acquire(checkoutId, owner))) return later(100 + Math.floor(Math.random() * 200));
      // The run's due-time bookkeeping in PostgreSQL (split.due.ts): a lease first, before any state
      // is read, then the next due time (or NULL) when the run ends, by compare-and-set on the lease.
      let lease: Date | null = null;
      let settled = false;
      const settle = async (next: Date | null) => {
        settled = true;
        if (lease) await settleSplitRun(deps.prisma, checkoutId, lease, next);
      };
      // Renewed before every driver step (a run can take hundreds of steps), at most every TTL/3.
      // One step is bounded by the channel timeouts, well under the TTL; if the lock was lost
      // anyway, the run stops at the next step and the job comes back later.
      let renewedAt = Date.now();
      let leasedAt = Date.now();
      const extendLease = async () => {
        if (Date.now() - leasedAt < dueLeaseMs / 3) return;
        const next = new Date(deps.now().getTime() + dueLeaseMs);
        // false: an event lowered the due time meanwhile; keep it (the scan re-runs the payment after us).
        if (lease && (await settleSplitRun(deps.prisma, checkoutId, lease, next))) lease = next;
        leasedAt = Date.now();
      };
      const beforeStep = async (): Promise<boolean> => {
        // Shutting down: stop between two steps (each is idempotent), handed back below as due now.
        if (stopping) return false;
        await extendLease();
        if (Date.now() - renewedAt < lockTtlMs / 3) return true;
        const ok = await lock.renew(checkoutId, owner);
        if (ok) renewedAt = Date.now();
        return ok;
      };
      try {
        lease = await claimSplitRun(deps.prisma, checkoutId, new Date(deps.now().getTime() + dueLeaseMs));
        for (;;) {
          const step = await driveCheckout(driverDeps, checkoutId, undefined, { beforeStep });
          if (step.kind === 'done') {
            await settle(null);
            return step.reason;
          }
          if (step.reason === LOCK_LOST) break;
          const ms = step.until - deps.now().getTime();
          if (ms > inlineMax || stopping || step.yieldSlot) {
            // Stored before the job is delayed: if Redis loses the delayed job, the due scan has the time.
            await settle(new Date(step.until));
            return await later(ms);
          }
          if (ms > 0) await sleep(ms);
          if (!(await lock.renew(checkoutId, owner))) break;
          renewedAt = Date.now();
        }
        // The Redis lock is gone (taken over, or Redis lost its data), or we are shutting down: due now, so that if the job
        // cannot come back through Redis the due scan brings it back within its grace.
        await settle(deps.now());
        return await later(100 + Math.floor(Math.random() * 200));
      } finally {
        // An unexpected error (database down, bug): BullMQ retries, and the due scan too once the lease ends.
        if (!settled && lease) await settleSplitRun(deps.prisma, checkoutId, lease, deps.now()).catch(() => undefined);
        await lock.release(checkoutId, owner).catch(() => undefined);
      }
    },
    {
      connection: workerRedis as never,
      prefix: opts.queuePrefix,
      concurrency: opts.concurrency ?? config.PROFIT_SHARING_CONCURRENCY,
      lockDuration: lockDurationMs,
      stalledInterval: opts.stalledIntervalMs ?? lockDurationMs,
      maxStalledCount: 10,
    },
  );
  worker.on('failed', (job, err) => deps.logger.error({ err, jobId: job?.id }, 'split job failed'));
  worker.on('error', (err) => deps.logger.error({ err }, 'split worker error'));
  await worker.waitUntilReady();

  return {
    limiter,
    async stop() {
      stopping = true;
      await worker.close();
      await workerRedis.quit().catch(() => undefined);
    },
    async kill() {
      stopping = true;
      await worker.close(true);
      workerRedis.disconnect();
    },
  };
}

import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { DriveJob } from './split.schemas';

/** One queue: every job "drives" one payment's splits forward; the job id is the business key. */
export const SPLIT_QUEUE = 'splits';
export const DRIVE_JOB = 'drive';

export interface SplitQueue {
  readonly prefix: string;
  /** Idempotent per jobId while that job exists; BullMQ job ids may not contain ':'. */
  enqueue(jobId: string, data: DriveJob, delayMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Read side for metrics: jobs by state, and how long the oldest waiting job has been due (0 when none waits). */
export interface SplitQueueDepth {
  depth(now: number): Promise<{ counts: Record<QueueState, number>; oldestWaitingMs: number }>;
}

export const QUEUE_STATES = ['wait', 'prioritized', 'delayed', 'active'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

const JOB_OPTIONS: JobsOptions = {
  // Unexpected failures only (database down, bug): channel errors are handled and stored by the driver.
  attempts: 12,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: true,
  // A kept failed job would block every later enqueue of its (fixed) id, e.g. the sweeper's kick_{id}.
  // Failures are logged by the worker's 'failed' event and the split state is in the database.
  removeOnFail: true,
};

/**
 * BullMQ's key prefix as a Redis Cluster hash tag (`gw` -> `{gw}`): its scripts touch many keys of a
 * queue at once, which a cluster allows only within one slot. A prefix that already has a tag is kept.
 */
export function queueKeyPrefix(prefix: string): string {
  return /\{[^}]+\}/.test(prefix) ? prefix : `{${prefix}}`;
}

const ENQUEUE_TIMEOUT_MS = 5_000;

/** Producer side. Shares the app's ioredis connection (no blocking commands here). */
export function createSplitQueue(redis: Redis, prefix: string): SplitQueue {
  const queue = new Queue(SPLIT_QUEUE, { connection: redis as never, prefix });
  return {
    prefix,
    async enqueue(jobId, data, delayMs = 0) {
      // Bounded: while Redis restarts, BullMQ can wait for the connection indefinitely, which would
      // hold the caller (the outbox loop, the due scan) with it. A timeout is a failure the caller retries.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('split queue: enqueue timed out (Redis unavailable?)')), ENQUEUE_TIMEOUT_MS);
      });
      try {
        await Promise.race([queue.add(DRIVE_JOB, data, { ...JOB_OPTIONS, jobId: jobId.replace(/:/g, '_'), delay: Math.max(0, Math.round(delayMs)) }), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    close: () => queue.close(),
  };
}

/** Shares the app's ioredis connection, as the producer does; made at the first scrape, not at boot. */
export function createSplitQueueDepth(redis: Redis, prefix: string): SplitQueueDepth {
  let q: Queue | undefined;
  return {
    async depth(now) {
      const queue = (q ??= new Queue(SPLIT_QUEUE, { connection: redis as never, prefix }));
      const raw = await queue.getJobCounts(...QUEUE_STATES);
      const counts = Object.fromEntries(QUEUE_STATES.map((s) => [s, raw[s] ?? 0])) as Record<QueueState, number>;
      // asc: the head of the wait list, i.e. the job waiting longest. A promoted delayed job has been due since timestamp + delay.
      const [oldest] = await queue.getJobs(['wait'], 0, 0, true);
      const dueAt = oldest ? oldest.timestamp + (oldest.delay ?? 0) : now;
      return { counts, oldestWaitingMs: Math.max(0, now - dueAt) };
    },
  };
}

import { randomBytes } from 'node:crypto';

/** The run's redis-server (test/setup/global-setup.ts). */
export function testRedisUrl(): string {
  const url = process.env.TEST_REDIS_URL;
  if (!url) throw new Error('TEST_REDIS_URL is unset: run the tests through jest (test/setup/global-setup.ts)');
  return url;
}

/** A BullMQ `prefix` no other test shares, so queues never see each other's jobs. */
export function testQueuePrefix(label = 'test'): string {
  return `${label}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

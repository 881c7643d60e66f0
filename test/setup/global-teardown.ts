import { rm } from 'node:fs/promises';
import { SERVICES_KEY, type TestServices } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const services = (globalThis as Record<string, unknown>)[SERVICES_KEY] as TestServices | undefined;
  if (!services) return;
  await Promise.allSettled([services.redis.stop(), services.postgres.stop()]);
  await rm(services.baseDir, { recursive: true, force: true });
}

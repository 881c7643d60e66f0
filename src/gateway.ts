import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createApp, type AppDeps, type AppModule } from './app';
import type { PaymentChannel } from './channels/channel';
import { createChannelRegistry, defaultChannelFactories } from './channels/registry';
import type { Config } from './config/config';
import { dispatchOutboxOnce, type OutboxHandler } from './jobs/outbox.dispatcher';
import { startLoop } from './jobs/loop';
import { createLogger, type Logger } from './lib/logger';
import { createMetrics } from './lib/metrics';
import { createPrisma } from './lib/prisma';
import { createRedis } from './lib/redis';
import { PAYMENT_SUCCEEDED } from './modules/payments/payment.apply';
import { closeSiblingOrders } from './modules/payments/payment.followups';
import { SweepBackoff, sweepExpiredCheckouts } from './modules/payments/payment.sync';
import { consoleModule } from './modules/console/console.module';
import { splitsModule } from './modules/splits/split.module';

/** The feature modules plugged into the core. */
export const modules: AppModule[] = [splitsModule, consoleModule];

export interface Gateway {
  deps: AppDeps;
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Builds the real dependencies from config (channel, database, Redis). */
export function buildDeps(config: Config, overrides: { logger?: Logger; channel?: PaymentChannel; now?: () => Date } = {}): AppDeps {
  const logger = overrides.logger ?? createLogger(config.LOG_LEVEL, { service: 'gateway' });
  return {
    config,
    logger,
    metrics: createMetrics(),
    prisma: createPrisma(config.DATABASE_URL),
    redis: createRedis(config.REDIS_URL, logger),
    // One channel per gateway today; a second one (Alipay) is a registry entry, not a code path here.
    channel: overrides.channel ?? createChannelRegistry(defaultChannelFactories(config, (p) => readFileSync(p, 'utf8'), logger)).get('wechatpay'),
    now: overrides.now ?? (() => new Date()),
  };
}

/** Background work of the core and of every module. Each loop is safe to run on several instances. */
export async function startBackground(deps: AppDeps, mods: AppModule[] = modules): Promise<{ stop(): Promise<void> }> {
  const handlers: Record<string, OutboxHandler[]> = { [PAYMENT_SUCCEEDED]: [closeSiblingOrders(deps)] };
  for (const m of mods)
    for (const [type, hs] of Object.entries(m.outboxHandlers?.(deps) ?? {})) (handlers[type] ??= []).push(...hs);
  const sweepBackoff = new SweepBackoff();
  const loops = [
    startLoop('outbox', 250, () => dispatchOutboxOnce(deps, handlers), deps.logger),
    startLoop('sweeper', deps.config.SWEEPER_INTERVAL_MS, () => sweepExpiredCheckouts(deps, { backoff: sweepBackoff }), deps.logger),
  ];
  const workers = await Promise.all(mods.filter((m) => m.startWorkers).map((m) => m.startWorkers!(deps)));
  return {
    async stop() {
      await Promise.all([...loops.map((l) => l.stop()), ...workers.map((w) => w.stop())]);
    },
  };
}

export async function startGateway(config: Config, deps: AppDeps = buildDeps(config)): Promise<Gateway> {
  const app = createApp(deps, modules);
  const background = config.RUN_WORKERS ? await startBackground(deps) : { stop: async () => undefined };
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(config.PORT, () => resolve(s));
  });
  const addr = server.address();
  const url = typeof addr === 'object' && addr ? `http://127.0.0.1:${addr.port}` : config.PUBLIC_BASE_URL;
  deps.logger.info({ url, mode: config.APP_MODE }, 'gateway listening');
  return {
    deps,
    server,
    url,
    async close() {
      await new Promise<void>((r) => server.close(() => r()));
      await background.stop();
      await deps.redis.quit().catch(() => undefined);
      await deps.prisma.$disconnect();
    },
  };
}

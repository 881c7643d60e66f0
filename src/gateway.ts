import { readFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createApp, type AppDeps, type AppModule } from './app';
import type { PaymentChannel } from './channels/channel';
import { createChannelRegistry, defaultChannelFactories } from './channels/registry';
import type { Config } from './config/config';
import { dispatchOutboxOnce, OUTBOX_BATCH, type OutboxHandler } from './jobs/outbox.dispatcher';
import { startLoop } from './jobs/loop';
import { createLogger, type Logger } from './lib/logger';
import { channelCallObserver, createMetrics } from './lib/metrics';
import { createPrisma, disconnectPrisma } from './lib/prisma';
import { createRedis } from './lib/redis';
import { createMerchantCache } from './http/merchant-cache';
import { PAYMENT_SUCCEEDED } from './modules/payments/payment.apply';
import { closeSiblingOrders } from './modules/payments/payment.followups';
import { purgeNotifyLogs } from './modules/payments/payment.notify';
import { SWEEP_BATCH, SweepBackoff, sweepExpiredCheckouts } from './modules/payments/payment.sync';
import { refundsModule } from './modules/refunds/refund.module';
import { consoleModule } from './modules/console/console.module';
import { splitsModule } from './modules/splits/split.module';
import { createWebhooksModule } from './modules/webhooks/webhook.module';
import { createChannelResolver } from './modules/merchants/channel-resolver';
import { merchantsModule } from './modules/merchants/merchant.module';
import { reconciliationModule } from './modules/reconciliation/reconciliation.module';

/** The feature modules plugged into the core (webhooks renders every module's event objects). */
// reconciliationModule after consoleModule: its pages rely on the console's session and CSRF middleware.
export const modules: AppModule[] = [splitsModule, refundsModule, merchantsModule, consoleModule, reconciliationModule];
modules.push(createWebhooksModule(() => modules));

export interface Gateway {
  deps: AppDeps;
  server: Server;
  url: string;
  /**
   * Graceful stop (SIGTERM): /readyz turns 503 and every response says `Connection: close`; the
   * listener closes, so new connections are refused; requests in flight finish; then background work
   * stops at its next safe point and gives back what it holds (loops end their tick and hand back
   * claimed outbox rows, the split worker lets each running job finish its current step and delays
   * it with its per-payment lock released and due time set, webhook sends and refund kicks finish and
   * clear their lease); then Redis and PostgreSQL are closed. Past `deadlineMs` (SHUTDOWN_TIMEOUT_MS) the open
   * connections are cut and the result is { clean: false }: work still running keeps its leases,
   * which expire as after a crash.
   */
  close(opts?: { deadlineMs?: number }): Promise<{ clean: boolean }>;
}

/** Builds the real dependencies from config (channel, database, Redis). */
export function buildDeps(config: Config, overrides: { logger?: Logger; channel?: PaymentChannel; now?: () => Date } = {}): AppDeps {
  const logger = overrides.logger ?? createLogger(config.LOG_LEVEL, { service: 'gateway' }, { pretty: config.sandbox });
  const prisma = createPrisma(config.DATABASE_URL, { preparedStatements: config.DATABASE_PREPARED_STATEMENTS, poolSize: config.DATABASE_POOL_SIZE });
  const redis = createRedis(config.REDIS_URL, logger);
  const metrics = createMetrics();
  const onCall = channelCallObserver(metrics);
  // The default account's channel; a second channel kind (Alipay) is a registry entry, not a code path here.
  const channel = overrides.channel ?? createChannelRegistry(defaultChannelFactories(config, (p) => readFileSync(p, 'utf8'), logger, onCall)).get('wechatpay');
  return {
    config,
    logger,
    metrics,
    prisma,
    redis,
    merchantCache: createMerchantCache(redis, { logger }),
    channel,
    channels: createChannelResolver({ prisma, config, logger, defaultChannel: channel, redis, onCall }),
    now: overrides.now ?? (() => new Date()),
  };
}

/** The outbox's handlers: the core's (a paid checkout's other orders closed) and every module's. */
export function outboxHandlers(deps: AppDeps, mods: AppModule[] = modules): Record<string, OutboxHandler[]> {
  const handlers: Record<string, OutboxHandler[]> = { [PAYMENT_SUCCEEDED]: [closeSiblingOrders(deps)] };
  for (const m of mods)
    for (const [type, hs] of Object.entries(m.outboxHandlers?.(deps) ?? {})) (handlers[type] ??= []).push(...hs);
  return handlers;
}

/** Background work of the core and of every module. Each loop is safe to run on several instances. */
export async function startBackground(deps: AppDeps, mods: AppModule[] = modules): Promise<{ stop(): Promise<void> }> {
  const handlers = outboxHandlers(deps, mods);
  const sweepBackoff = new SweepBackoff();
  const loops = [
    // A full batch means more are waiting: go on at once (a 250 ms pause per 20 events capped a burst
    // of payments' follow-ups at ~80/s); a partial or failing batch waits for the next tick.
    startLoop('outbox', 250, async (stopping) => {
      while ((await dispatchOutboxOnce(deps, handlers, { stopping })) === OUTBOX_BATCH && !stopping());
    }, deps.logger),
    // A full batch handled goes on at once, as the outbox does (one batch of 50 per 30 s capped
    // expirations at 1.7/s); a batch with failures waits for the next tick (WeChat may be down).
    startLoop('sweeper', deps.config.SWEEPER_INTERVAL_MS, async (stopping) => {
      while ((await sweepExpiredCheckouts(deps, { backoff: sweepBackoff })).handled === SWEEP_BATCH && !stopping());
    }, deps.logger),
    startLoop('notify-retention', deps.config.NOTIFY_PURGE_INTERVAL_MS, async () => {
      const purged = await purgeNotifyLogs(deps.prisma, { retentionDays: deps.config.NOTIFY_RETENTION_DAYS, rejectedRetentionDays: deps.config.NOTIFY_REJECTED_RETENTION_DAYS }, deps.now());
      if (purged.rejected + purged.verified > 0) deps.logger.info(purged, 'notify logs purged');
    }, deps.logger),
  ];
  const workers = await Promise.all(mods.filter((m) => m.startWorkers).map((m) => m.startWorkers!(deps)));
  return {
    async stop() {
      await Promise.all([...loops.map((l) => l.stop()), ...workers.map((w) => w.stop())]);
    },
  };
}

/**
 * Timeouts and a connection cap for a payment page behind a proxy: a slow (slowloris) client gets
 * 408 after HTTP_HEADERS_TIMEOUT_MS / HTTP_REQUEST_TIMEOUT_MS instead of Node's 300 s; idle
 * keep-alive outlives the proxy's own idle timeout so the proxy, not us, closes reused connections.
 */
export function createHttpServer(
  app: RequestListener,
  config: Pick<Config, 'HTTP_HEADERS_TIMEOUT_MS' | 'HTTP_REQUEST_TIMEOUT_MS' | 'HTTP_KEEP_ALIVE_TIMEOUT_MS' | 'HTTP_MAX_CONNECTIONS'>,
): Server {
  const server = createServer({
    headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    // Node checks the two timeouts above only this often (default 30 s): check every second.
    connectionsCheckingInterval: 1000,
  }, app);
  server.maxConnections = config.HTTP_MAX_CONNECTIONS;
  return server;
}

/** `host` narrows where it listens (the sandbox: 127.0.0.1 only); default every interface. */
export async function startGateway(config: Config, deps: AppDeps = buildDeps(config), opts: { host?: string } = {}): Promise<Gateway> {
  let draining = false;
  deps.draining = () => draining;
  const app = createApp(deps, modules);
  const background = config.RUN_WORKERS ? await startBackground(deps) : { stop: async () => undefined };
  const server = await new Promise<Server>((resolve, reject) => {
    const http = createHttpServer(app, config);
    // Before the app sees the request: a keep-alive client is told to reconnect (to another instance).
    http.prependListener('request', (_req, res) => {
      if (draining) res.setHeader('Connection', 'close');
    });
    const s = opts.host ? http.listen(config.PORT, opts.host, () => resolve(s)) : http.listen(config.PORT, () => resolve(s));
    s.once('error', reject);
  });
  const addr = server.address();
  const url = typeof addr === 'object' && addr ? `http://127.0.0.1:${addr.port}` : config.PUBLIC_BASE_URL;
  deps.logger.info({ url, mode: config.APP_MODE }, 'gateway listening');
  let closing: Promise<{ clean: boolean }> | undefined;
  const close = async (deadlineMs: number): Promise<{ clean: boolean }> => {
    draining = true;
    const httpClosed = new Promise<void>((r) => server.close(() => r()));
    // close() drops idle keep-alive connections once; those busy now are dropped as they go idle.
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((r) => (timer = setTimeout(() => r('deadline'), deadlineMs)));
    const drained = (async () => {
      await httpClosed;
      clearInterval(idle);
      await background.stop();
      return 'drained' as const;
    })();
    const outcome = await Promise.race([drained, deadline]);
    clearTimeout(timer);
    clearInterval(idle);
    if (outcome === 'deadline') {
      deps.logger.error({ deadlineMs }, 'shutdown deadline passed: cutting connections; leases still held expire as after a crash');
      server.closeAllConnections();
    }
    await deps.merchantCache?.close();
    await deps.channels?.close?.();
    await deps.redis.quit().catch(() => undefined);
    await disconnectPrisma(deps.prisma);
    return { clean: outcome === 'drained' };
  };
  return {
    deps,
    server,
    url,
    close: (o = {}) => (closing ??= close(o.deadlineMs ?? config.SHUTDOWN_TIMEOUT_MS)),
  };
}

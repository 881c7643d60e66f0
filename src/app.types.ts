// Types every module needs: a leaf file, so modules never import app.ts (which assembles them).
import type { Router } from 'express';
import type { Redis } from 'ioredis';
import type { PaymentChannel } from './channels/channel';
import type { Config } from './config/config';
import type { MerchantCache } from './http/merchant-cache';
import type { OutboxHandler } from './jobs/outbox.dispatcher';
import type { Logger } from './lib/logger';
import type { Metrics } from './lib/metrics';
import type { PrismaClient } from './lib/prisma';
import type { CheckoutJsonExtension } from './modules/checkout/checkout.api';
import type { EventObjectRef } from './modules/webhooks/webhook.publish';
import type { ChannelResolver } from './modules/merchants/channel-resolver';

export interface AppDeps {
  config: Config;
  prisma: PrismaClient;
  redis: Redis;
  /** The default account's channel (WECHATPAY_* env): merchants without a channel account use it. */
  channel: PaymentChannel;
  /** Per-merchant channel accounts (issue 10); read it through channelsOf(deps), which falls back to `channel`. */
  channels?: ChannelResolver;
  logger: Logger;
  metrics: Metrics;
  now: () => Date;
  /** True once a graceful shutdown has begun (src/gateway.ts): /readyz answers 503. */
  draining?: () => boolean;
  /** Merchant-by-API-key cache (src/http/merchant-cache.ts); without it every API call reads the database. */
  merchantCache?: MerchantCache;
}

/** A feature that plugs into the app without the core knowing it (e.g. splits). */
export interface AppModule {
  /** Routes; anything under /v1 is already behind merchant Bearer auth and JSON parsing. */
  apiRoutes?: (deps: AppDeps) => Router;
  checkoutJson?: (deps: AppDeps) => CheckoutJsonExtension;
  /** Browser pages outside /v1 (e.g. the console): mounted after the checkout pages, before the 404. */
  pageRoutes?: (deps: AppDeps) => Router;
  /** Follow-up work for outbox events (type -> handlers). */
  outboxHandlers?: (deps: AppDeps) => Record<string, OutboxHandler[]>;
  /** Scrape-time gauges of this module's backlog (deps.metrics.addGauge). */
  registerMetrics?: (deps: AppDeps) => void;
  /** Background workers (BullMQ etc.), started by the gateway when RUN_WORKERS is on. */
  startWorkers?: (deps: AppDeps) => Promise<{ stop(): Promise<void> }>;
  /** Renders the JSON of objects this module owns for merchant events (webhooks): what its GET returns. */
  eventObjects?: (deps: AppDeps) => EventRenderers;
}

/**
 * Renders the object of one merchant event (`data.object`), by the module that owns the kind. `many`,
 * where a module has it, renders a batch at once (one query for a dispatcher pass): a value per id;
 * an id left out, or mapped to an Error, could not be rendered.
 */
export type EventRenderer = ((id: string) => Promise<unknown>) & { many?: (ids: string[]) => Promise<Map<string, unknown>> };
export type EventRenderers = Partial<Record<EventObjectRef['kind'], EventRenderer>>;

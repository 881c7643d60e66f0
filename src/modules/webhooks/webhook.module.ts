import type { AppDeps, AppModule } from '../../app.types';
import { startLoop } from '../../jobs/loop';
import { renderCheckoutJson } from '../checkout/checkout.api';
import { getCheckout, getCheckouts } from '../checkout/checkout.service';
import { listenForEvents } from './webhook.listen';
import { onEventsCommitted } from './webhook.wake';
import { WebhookDispatcher, type EventRenderers } from './webhook.dispatcher';
import { webhookApiRouter } from './webhook.routes';

/** Every module's renderers of event objects; `checkout` is built exactly as GET /v1/checkouts/{id} builds it. */
export function eventRenderers(deps: AppDeps, mods: AppModule[]): EventRenderers {
  const renderers: EventRenderers = {};
  for (const m of mods) Object.assign(renderers, m.eventObjects?.(deps) ?? {});
  return renderers;
}

/**
 * Merchant webhooks (issue 9 §2), plugged in through AppModule:
 *   apiRoutes     /v1/webhook_endpoints (CRUD, rotate_secret), /v1/events (list, one with attempts, redeliver)
 *   eventObjects  `checkout`: what GET /v1/checkouts/{id} returns, with every module's section (split, refunds)
 *   startWorkers  the dispatcher (render, claim, deliver): woken by NOTIFY when an event commits (by
 *                 this process after a payment's statement: webhook.wake.ts) and when a delivery ends,
 *                 and polling every WEBHOOK_POLL_MS (retries fall due; another process's payment)
 * `modules` is read lazily: the list that holds this module is built after it.
 */
export function createWebhooksModule(modules: () => AppModule[]): AppModule {
  return {
    apiRoutes: (deps) => webhookApiRouter(deps),
    eventObjects: (deps) => {
      const extensions = modules().flatMap((m) => (m.checkoutJson ? [m.checkoutJson(deps)] : []));
      const one = async (id: string) => renderCheckoutJson(deps, extensions, await getCheckout(deps.prisma, id));
      // A pass's checkouts in one query (one per event was a round trip each on the payment's follow-up path).
      const many = async (ids: string[]) => {
        const out = new Map<string, unknown>();
        for (const [id, c] of await getCheckouts(deps.prisma, ids)) out.set(id, await renderCheckoutJson(deps, extensions, c).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))));
        return out;
      };
      return { checkout: Object.assign(one, { many }) };
    },
    startWorkers: async (deps) => {
      const dispatcher = new WebhookDispatcher(deps, eventRenderers(deps, modules()));
      const loop = startLoop('webhooks', deps.config.WEBHOOK_POLL_MS, () => dispatcher.tick(), deps.logger);
      const listener = listenForEvents(deps.config.DATABASE_URL, deps.logger, () => dispatcher.wake());
      const unregister = onEventsCommitted(() => dispatcher.wake());
      return {
        async stop() {
          unregister();
          await listener.stop();
          await loop.stop();
          await dispatcher.close();
        },
      };
    },
  };
}

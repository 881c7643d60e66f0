import express, { Router } from 'express';
import { Webhook } from 'standardwebhooks';
import type { AppDeps } from '../../app.types';
import { SANDBOX_MERCHANT_ID } from '../merchants/merchant.service';
import { newWebhookSecret, signingSecrets } from '../webhooks/webhook.service';
import { newId } from '../../lib/ids';

export const DEMO_RECEIVER_PATH = '/demo/webhooks/receiver';
const KEEP = 50;

export interface ReceivedWebhook {
  id: string;
  type: string;
  checkoutId: string | null;
  objectStatus: string | null;
  receivedAt: string;
  verified: boolean;
  duplicate: boolean;
  answered: number;
}

export function demoReceiverUrl(deps: Pick<AppDeps, 'config'>): string {
  return new URL(DEMO_RECEIVER_PATH, deps.config.PUBLIC_BASE_URL).toString();
}

/** The sandbox merchant's built-in webhook endpoint (created once, at sandbox start). */
export async function ensureDemoReceiver(deps: Pick<AppDeps, 'prisma' | 'config'>): Promise<void> {
  const url = demoReceiverUrl(deps);
  const existing = await deps.prisma.webhookEndpoint.findFirst({ where: { merchantId: SANDBOX_MERCHANT_ID, url, deletedAt: null } });
  if (!existing)
    await deps.prisma.webhookEndpoint.create({
      data: { id: newId('we'), merchantId: SANDBOX_MERCHANT_ID, url, events: [], description: '演示商店内置接收端 (built-in receiver)', secret: newWebhookSecret() },
    });
}

/**
 * The demo shop's webhook receiver, written the way a merchant would: verify with the
 * `standardwebhooks` package over the raw body, then store (here: the last 50, in memory) and 2xx.
 * "下两次返回 500" makes it fail twice, to watch the gateway retry.
 */
export function demoWebhooksRouter(deps: AppDeps): Router {
  const r = Router();
  const received: ReceivedWebhook[] = [];
  let failNext = 0;

  r.post(DEMO_RECEIVER_PATH, express.text({ type: '*/*', limit: '256kb' }), async (req, res) => {
    const raw = typeof req.body === 'string' ? req.body : '';
    const endpoint = await deps.prisma.webhookEndpoint.findFirst({ where: { merchantId: SANDBOX_MERCHANT_ID, url: demoReceiverUrl(deps), deletedAt: null } });
    const headers = { 'webhook-id': req.get('webhook-id') ?? '', 'webhook-timestamp': req.get('webhook-timestamp') ?? '', 'webhook-signature': req.get('webhook-signature') ?? '' };
    // During a rotation the header carries both signatures; either secret we hold may verify it.
    const verified = !!endpoint && signingSecrets(endpoint, deps.now()).some((s) => {
      try {
        new Webhook(s).verify(raw, headers);
        return true;
      } catch {
        return false;
      }
    });
    const answered = !verified ? 400 : failNext > 0 ? 500 : 200;
    if (answered === 500) failNext--;
    let msg: { id?: string; type?: string; data?: { object?: { id?: string; object?: string; status?: string; checkout_id?: string } } } = {};
    try {
      msg = JSON.parse(raw);
    } catch {
      /* shown as unverified */
    }
    const o = msg.data?.object;
    received.unshift({
      id: String(msg.id ?? headers['webhook-id']),
      type: String(msg.type ?? '?'),
      checkoutId: o?.object === 'checkout' ? (o.id ?? null) : (o?.checkout_id ?? null),
      objectStatus: o?.status ?? null,
      receivedAt: deps.now().toISOString(),
      verified,
      duplicate: received.some((x) => x.id === msg.id && x.answered === 200),
      answered,
    });
    received.length = Math.min(received.length, KEEP);
    res.status(answered).json({ received: answered === 200 });
  });

  r.get('/demo/webhooks', async (req, res) => {
    const endpoint = await deps.prisma.webhookEndpoint.findFirst({ where: { merchantId: SANDBOX_MERCHANT_ID, url: demoReceiverUrl(deps), deletedAt: null } });
    if (req.accepts(['html', 'json']) === 'json') return res.json({ endpoint_id: endpoint?.id ?? null, received });
    res.render('demo/webhooks', { base: { title: 'Webhook 接收记录', sandbox: true }, endpoint, received, failNext });
  });

  r.post('/demo/webhooks/fail-next', (_req, res) => {
    failNext = 2;
    res.redirect(303, '/demo/webhooks');
  });
  return r;
}

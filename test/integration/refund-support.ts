/** Helpers shared by the refund integration tests (test/integration/refund-*.test.ts). */
import { createCipheriv, randomBytes, sign } from 'node:crypto';
import type { Harness } from '../support/harness';
import { waitFor } from './split-support';

export const ENV = { REFUND_SYNC_INTERVAL_MS: '100', REFUND_QUERY_AFTER_MS: '300' };

let keySeq = 0;
export const newKey = () => `idem-${Date.now()}-${++keySeq}-${Math.floor(Math.random() * 1e9)}`;

export function postRefund(h: Harness, checkoutId: string, body: Record<string, unknown>, key: string | null = newKey(), apiKey?: string) {
  const t = h.api('post', `/v1/checkouts/${checkoutId}/refunds`, apiKey);
  if (key !== null) t.set('Idempotency-Key', key);
  return t.send(body);
}

export interface RefundJson {
  id: string;
  checkout_id: string;
  amount: number;
  out_refund_no: string;
  status: string;
  split_returns: Array<{ account: string; amount: number; out_return_no: string; out_order_no: string; state: string; reason?: string }>;
  failure_code?: string;
  failure_reason?: string;
  succeeded_at?: string;
}

export async function getRefund(h: Harness, id: string, apiKey?: string): Promise<RefundJson> {
  return (await h.api('get', `/v1/refunds/${id}`, apiKey).expect(200)).body as RefundJson;
}

export function waitForRefund(h: Harness, id: string, statuses: string[], timeoutMs = 15_000, apiKey?: string): Promise<RefundJson> {
  return waitFor(async () => {
    const r = await getRefund(h, id, apiKey);
    return statuses.includes(r.status) ? r : null;
  }, timeoutMs, `refund ${id} ${statuses.join('|')}`);
}

/**
 * A refund notify built the way WeChat builds it (FACTS §3, §6), independent of src/channels; `keys`: another
 * account's (a service provider's) instead of the default account's.
 */
export function buildRefundNotify(
  h: Harness,
  resource: Record<string, unknown>,
  o: { eventType?: string; badSignature?: boolean; keys?: Pick<Harness['keys'], 'apiv3Key' | 'platformPrivateKey' | 'platformPublicKeyId'> } = {},
) {
  const keys = o.keys ?? h.keys;
  const nonce = randomBytes(6).toString('hex');
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(keys.apiv3Key, 'utf8'), Buffer.from(nonce, 'utf8'));
  cipher.setAAD(Buffer.from('refund', 'utf8'));
  const ct = Buffer.concat([cipher.update(JSON.stringify(resource), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  const body = JSON.stringify({
    id: `EV-${randomBytes(8).toString('hex')}`,
    create_time: '2026-11-25T18:00:00+08:00',
    resource_type: 'encrypt-resource',
    event_type: o.eventType ?? 'REFUND.SUCCESS',
    summary: '退款成功',
    resource: { original_type: 'refund', algorithm: 'AEAD_AES_256_GCM', ciphertext: ct.toString('base64'), associated_data: 'refund', nonce },
  });
  const ts = String(Math.floor(Date.now() / 1000));
  const hnonce = randomBytes(16).toString('hex');
  let signature = sign('sha256', Buffer.from(`${ts}\n${hnonce}\n${body}\n`), keys.platformPrivateKey).toString('base64');
  if (o.badSignature) signature = sign('sha256', Buffer.from(`${ts}\n${hnonce}\n${body}x\n`), keys.platformPrivateKey).toString('base64');
  return {
    body,
    headers: {
      'Content-Type': 'application/json',
      'Wechatpay-Timestamp': ts,
      'Wechatpay-Nonce': hnonce,
      'Wechatpay-Signature': signature,
      'Wechatpay-Serial': keys.platformPublicKeyId,
      'Wechatpay-Signature-Type': 'WECHATPAY2-SHA256-RSA2048',
    },
  };
}

/** Refund requests (POST) the simulator received. */
export function refundCalls(h: Harness) {
  return h.sim.control.calls.filter((c) => c.method === 'POST' && c.path.startsWith('/v3/refund/domestic/refunds'));
}
export function returnCalls(h: Harness) {
  return h.sim.control.calls.filter((c) => c.method === 'POST' && c.path.startsWith('/v3/profitsharing/return-orders'));
}

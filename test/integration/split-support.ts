/** Helpers shared by the split integration tests (test/integration/split-*.test.ts). */
import type { RunningSimulator } from '../../src/simulator/app';
import { checkoutBody, UA, type Harness } from '../support/harness';

export async function waitFor<T>(fn: () => Promise<T | false | null | undefined>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 40));
  }
}

export function receivers(n: number, amount: number, tag = 'r') {
  return Array.from({ length: n }, (_, i) => ({
    type: 'MERCHANT_ID' as const,
    account: `${tag}${String(i).padStart(3, '0')}`,
    name: `分账接收方 ${tag} ${i} 有限公司`,
    amount,
    description: `分给 ${tag}${i}`,
    relation_type: 'PARTNER' as const,
  }));
}

/**
 * Creates a checkout, opens it on a desktop browser (Native order at the simulator), pays it there.
 * `o`: another merchant's API key and the simulator its account lives on (e.g. a partner fixture's).
 */
export async function paidCheckout(
  h: Harness,
  body: Record<string, unknown>,
  o: { apiKey?: string; sim?: RunningSimulator } = {},
): Promise<{ id: string; transactionId: string; outTradeNo: string }> {
  const c = await h.api('post', '/v1/checkouts', o.apiKey).send(checkoutBody(body)).expect(201);
  const id = c.body.id as string;
  await h.http().get(`/checkout/${id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
  const order = await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: id } });
  const paid = (o.sim ?? h.sim).control.pay(order.outTradeNo);
  if (!paid.ok) throw new Error(`simulator refused to pay: ${JSON.stringify(paid)}`);
  const row = await waitFor(async () => {
    const r = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
    return r.status === 'paid' ? r : null;
  }, 10_000, 'the payment notify');
  return { id, transactionId: row.transactionId!, outTradeNo: order.outTradeNo };
}

export async function splitOf(h: Harness, id: string, apiKey?: string) {
  const r = await h.api('get', `/v1/checkouts/${id}`, apiKey).expect(200);
  return r.body.split as {
    status: string;
    batches: Array<{ out_order_no: string; state: string; amount: number; error: { code: string; message: string } | null;
      receivers: Array<{ account: string; amount: number; state: string; reason: string | null }> }>;
    unfrozen_amount: number;
    unfreeze: { method: string; state: string; amount: number | null; out_order_no: string } | null;
    budget: { max_amount: number; reserved_amount: number; requests_used: number };
    mismatches: Array<{ kind: string; ref: string; occurrences: number }>;
    alerts: Array<{ kind: string; message: string }>;
  };
}

export async function waitForSplitStatus(h: Harness, id: string, statuses: string[], timeoutMs = 15_000, apiKey?: string) {
  return waitFor(async () => {
    const s = await splitOf(h, id, apiKey);
    return statuses.includes(s.status) && (!s.unfreeze || ['succeeded', 'failed'].includes(s.unfreeze.state)) ? s : null;
  }, timeoutMs, `split status ${statuses.join('|')}`);
}

/** Split (not unfreeze) requests the simulator received for one transaction. */
export function splitRequests(h: Harness, transactionId: string, sim: RunningSimulator = h.sim) {
  return sim.control.profitSharing.requests().filter((r) => r.kind === 'split' && r.transactionId === transactionId);
}

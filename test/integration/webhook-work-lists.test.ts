import { Pool } from 'pg';
import { modules } from '../../src/gateway';
import { createPrisma, type PrismaClient } from '../../src/lib/prisma';
import { WebhookDispatcher } from '../../src/modules/webhooks/webhook.dispatcher';
import { eventRenderers } from '../../src/modules/webhooks/webhook.module';
import { observedPool } from '../support/observed-pool';
import { startHarness, type Harness } from '../support/harness';
import { startReceiver } from '../support/webhook-receiver';

/**
 * The dispatcher's reads cost what its work costs, not what the tables hold: each statement of a
 * pass is replayed under EXPLAIN (ANALYZE, BUFFERS) with its own parameters and must touch few pages
 * while thousands of deliveries and events are done and a thousand are pending behind their
 * checkouts' first events. (Before: the claim's window read every pending row, 18 ms per claim at
 * 2,000 pending; the renderer walked every rendered event in seq order.) No timing: page counts.
 */
const DONE = 3000;
const PENDING_CHECKOUTS = 100;
const PER_CHECKOUT = 10;
/** Pages one statement of a pass may touch here; the old statements touched thousands. */
const PAGES = 300;

let h: Harness;
let pool: Pool;
let prisma: PrismaClient;
const seen: Array<{ text: string; values: unknown[] }> = [];

beforeAll(async () => {
  h = await startHarness();
  pool = observedPool(h.db.url, (q) => seen.push(q));
  prisma = createPrisma(pool);
});
afterAll(async () => {
  await prisma?.$disconnect();
  await pool?.end();
  await h?.close();
});

it('When thousands of deliveries are done and a thousand wait behind their checkouts, then a dispatcher pass sends each checkout\'s first event and none of its statements reads more than a few pages', async () => {
  const rx = await startReceiver();
  try {
    const ep = (await h.api('post', '/v1/webhook_endpoints').send({ url: rx.url }).expect(201)).body as { id: string };
    const body = `json_build_object('id', e.id, 'type', 'checkout.closed', 'data', json_build_object('object', json_build_object('id', e.checkout_id)))::text`;
    await h.db.prisma.$executeRawUnsafe(`
      INSERT INTO merchant_events (id, merchant_id, type, checkout_id, object_kind, object_id, body, rendered_at)
      SELECT 'evt_done_' || g, 'mch_test', 'checkout.closed', 'co_done_' || (g % 500), 'checkout', 'co_done_' || (g % 500), '{}', now()
        FROM generate_series(1, ${DONE}) g`);
    await h.db.prisma.$executeRawUnsafe(`
      INSERT INTO webhook_deliveries (id, event_id, endpoint_id, checkout_id, event_seq, status, attempts, delivered_at, updated_at)
      SELECT 'whd_' || e.id, e.id, '${ep.id}', e.checkout_id, e.seq, 'delivered', 1, now(), now()
        FROM merchant_events e WHERE e.id LIKE 'evt_done_%'`);
    // Pending: event k of checkout c, published round-robin (as a burst of payments' events would be).
    await h.db.prisma.$executeRawUnsafe(`
      INSERT INTO merchant_events (id, merchant_id, type, checkout_id, object_kind, object_id, rendered_at)
      SELECT 'evt_wait_' || k || '_' || c, 'mch_test', 'checkout.closed', 'co_wait_' || c, 'checkout', 'co_wait_' || c, now()
        FROM generate_series(1, ${PER_CHECKOUT}) k, generate_series(1, ${PENDING_CHECKOUTS}) c ORDER BY k, c`);
    await h.db.prisma.$executeRawUnsafe(`UPDATE merchant_events e SET body = ${body} WHERE id LIKE 'evt_wait_%'`);
    await h.db.prisma.$executeRawUnsafe(`
      INSERT INTO webhook_deliveries (id, event_id, endpoint_id, checkout_id, event_seq, updated_at)
      SELECT 'whd_' || e.id, e.id, '${ep.id}', e.checkout_id, e.seq, now() FROM merchant_events e WHERE e.id LIKE 'evt_wait_%'`);
    await h.db.prisma.$executeRawUnsafe('ANALYZE merchant_events, webhook_deliveries');

    const dispatcher = new WebhookDispatcher({ ...h.deps, prisma }, eventRenderers({ ...h.deps, prisma }, modules));
    seen.length = 0;
    try {
      // One endpoint gets a quarter of the slots, each for a checkout's first event.
      expect(await dispatcher.tick()).toBe(dispatcher.perEndpoint);
    } finally {
      await dispatcher.close(); // no more claims; the sends in flight (and any their completions started) finish
    }
    const got = rx.got.map((g) => g.json.id as string);
    expect(got.slice(0, dispatcher.perEndpoint).every((id) => id.startsWith('evt_wait_1_'))).toBe(true);
    // Every checkout's events arrived in order, none twice.
    const next = new Map<string, number>();
    for (const id of got) {
      const [, k, c] = /^evt_wait_(\d+)_(\d+)$/.exec(id)!;
      expect(Number(k)).toBe((next.get(c!) ?? 0) + 1);
      next.set(c!, Number(k));
    }

    const reads = seen.filter((s) => /^\s*(SELECT|WITH RECURSIVE)/i.test(s.text));
    expect(reads.some((r) => r.text.includes('webhook_deliveries'))).toBe(true); // the claim
    expect(reads.some((r) => r.text.includes('merchant_events') && r.text.includes('rendered_at'))).toBe(true); // the renderer's list
    const explain = new Pool({ connectionString: h.db.url, max: 1 });
    const client = await explain.connect();
    try {
      for (const r of reads) {
        const [{ 'QUERY PLAN': plan }] = (await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${r.text}`, r.values)).rows as Array<{ 'QUERY PLAN': Array<{ Plan: Record<string, number> }> }>;
        const pages = plan[0]!.Plan['Shared Hit Blocks']! + plan[0]!.Plan['Shared Read Blocks']!;
        if (pages > PAGES) throw new Error(`${pages} pages (budget ${PAGES}) for:\n${r.text}`);
      }
    } finally {
      client.release();
      await explain.end();
    }
  } finally {
    await rx.close();
  }
});

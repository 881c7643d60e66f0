import type { AppDeps, EventRenderers } from '../../app.types';
import { newId } from '../../lib/ids';
import { Prisma, sqlUtc } from '../../lib/prisma';
import type { EventObjectRef } from './webhook.publish';
import { createSender, signatureHeader, type Sender, type SendResult } from './webhook.sender';
import { signingSecrets } from './webhook.service';
import { rawExecute, rawQuery } from '../../lib/raw-sql';

export type { EventRenderers };

type Deps = Pick<AppDeps, 'prisma' | 'config' | 'logger' | 'now'> & Partial<Pick<AppDeps, 'metrics'>>;

/** A leased delivery with what its send needs (the endpoint's secrets as signingSecrets reads them). */
type ClaimedDelivery = {
  id: string; endpoint_id: string; attempts: number; event_id: string; body: string; url: string; failing: boolean;
  secret: string; previousSecret: string | null; previousSecretExpiresAt: Date | null;
};

/** What rendering an event reads of it. */
type PendingEvent = { id: string; type: string; objectKind: string; objectId: string; createdAt: Date };

/** Events rendered per dispatcher pass (more follow in the next pass, after the claims). */
const RENDER_BATCH = 20;

/**
 * Renders new events and delivers them. One per gateway process; several processes share the work.
 *
 * 1. Render: events without a body get `data.object` from the module that owns the kind, right
 *    after their transaction committed (the next poll), stored once (compare-and-set on body IS NULL).
 * 2. Claim: due pending deliveries of rendered events whose endpoint is enabled and which have no
 *    earlier pending delivery of the same checkout to the same endpoint (order per checkout), at most
 *    `perEndpoint` in flight per endpoint in this process (a hanging endpoint cannot take every
 *    slot). Claimed rows get a committed lease (FOR UPDATE SKIP LOCKED): other instances skip them,
 *    a crashed instance's rows come back when the lease ends.
 * 3. Send without holding the tick (a 10 s timeout never delays the next claim); record the attempt
 *    and the delivery's outcome in one transaction: 2xx = delivered, else retry per
 *    WEBHOOK_RETRY_SCHEDULE (jittered upward, so the schedule's total is a floor), then failed and
 *    the endpoint flagged.
 */
export class WebhookDispatcher {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly perEndpointInFlight = new Map<string, number>();
  private readonly sender: Sender;
  readonly perEndpoint: number;

  constructor(
    private readonly deps: Deps,
    private readonly renderers: EventRenderers,
    opts: { sender?: Sender; random?: () => number } = {},
  ) {
    this.sender = opts.sender ?? createSender({ timeoutMs: deps.config.WEBHOOK_TIMEOUT_MS, allowLoopback: deps.config.WEBHOOK_ALLOW_LOOPBACK });
    this.random = opts.random ?? Math.random;
    this.perEndpoint = Math.max(1, Math.floor(deps.config.WEBHOOK_CONCURRENCY / 4));
  }
  private readonly random: () => number;

  private running: Promise<number> | null = null;
  private again = false;
  /** New events may be waiting to be rendered (a poll or an events wake-up since the last render). */
  private renderWanted = false;

  /**
   * One pass: claim, render, claim what that made due. Never two at once in a process: a call while
   * one runs asks for one more pass after it (so a wake-up is never lost). Returns how many sends
   * started. `render: false` (a delivery finished: a slot is free, its checkout's next event may be
   * due) skips the renderer's read unless a wake-up asked for it: at a burst's pace that read was
   * one more statement per delivery.
   */
  async tick(o: { render?: boolean } = {}): Promise<number> {
    if (o.render !== false) this.renderWanted = true;
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      let started = 0;
      do {
        this.again = false;
        // Due deliveries first, then a small batch of renders, then what they made due: a burst of
        // new events never keeps retries and the next events of checkouts waiting behind it.
        started += await this.claimAndSend();
        if (this.renderWanted) {
          this.renderWanted = false;
          const { rendered, due } = await this.render(RENDER_BATCH);
          // Only if the pass made deliveries due: a merchant without endpoints costs no second claim.
          if (due) started += await this.claimAndSend();
          if (rendered === RENDER_BATCH) this.again = this.renderWanted = true;
        }
      } while (this.again);
      return started;
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** A wake-up (NOTIFY after a commit, this process's own payment): new events to render and send. */
  wake(): void {
    this.pass({});
  }

  private pass(o: { render?: boolean }): void {
    this.tick(o).catch((err) => this.deps.logger.error({ err }, 'webhook dispatcher pass failed'));
  }

  /** Waits for the sends in flight (for shutdown and tests). */
  async drain(): Promise<void> {
    while (this.inFlight.size) await Promise.all([...this.inFlight.values()]);
  }

  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    await this.running?.catch(() => 0);
    await this.drain();
    this.sender.close();
  }

  /** Renders up to `limit` new events; returns how many. */
  async renderPending(limit = RENDER_BATCH): Promise<number> {
    return (await this.render(limit)).rendered;
  }

  /** `due`: a rendered event has a pending delivery (a claim may find it). */
  private async render(limit: number): Promise<{ rendered: number; due: boolean }> {
    const { prisma, logger } = this.deps;
    // Raw, like the writes of a payment's follow-ups: the typed read cost the client ~0.5 ms per pass.
    // rendered_at is set with the body, and the partial index of seq holds the events without it
    // (`body IS NULL` scanned every event ever rendered).
    const events = await rawQuery<PendingEvent>(prisma, Prisma.sql`
      SELECT id, type, object_kind AS "objectKind", object_id AS "objectId", created_at AS "createdAt"
        FROM merchant_events WHERE rendered_at IS NULL ORDER BY seq LIMIT ${limit}`);
    if (!events.length) return { rendered: 0, due: false };
    const objects = await this.renderObjects(events);
    const ids: string[] = [];
    const bodies: string[] = [];
    const errors: (string | null)[] = [];
    for (const ev of events) {
      let object = objects.get(ev.id);
      let renderError: string | null = null;
      if (object === undefined || object instanceof Error) {
        // Deliver the reference rather than hold the event forever: the merchant can GET the object.
        const err = object ?? new Error(`${ev.objectKind} ${ev.objectId} not found`);
        renderError = String(err.message).slice(0, 500);
        object = { id: ev.objectId, object: ev.objectKind };
        logger.error({ err, eventId: ev.id, kind: ev.objectKind }, 'webhook event: could not render its object');
      }
      ids.push(ev.id);
      bodies.push(JSON.stringify({ id: ev.id, type: ev.type, created: ev.createdAt.toISOString(), data: { object } }));
      errors.push(renderError);
    }
    // One statement for the pass (one per event was a round trip and a commit each); stored once:
    // compare-and-set on body IS NULL, so a pass of another process that got there first wins.
    // It also tells whether any of these events has a pending delivery (none: no endpoint wants them);
    // PostgreSQL runs a data-modifying WITH once whether or not the query reads it.
    const [r] = await rawQuery<{ due: boolean }>(prisma, Prisma.sql`WITH stored AS (
        UPDATE merchant_events m SET body = v.body, rendered_at = ${sqlUtc(this.deps.now())}, render_error = v.err
          FROM unnest(${ids}::text[], ${bodies}::text[], ${errors}::text[]) AS v(id, body, err)
         WHERE m.id = v.id AND m.body IS NULL
        RETURNING m.id)
      SELECT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = ANY(${ids}::text[]) AND d.status = 'pending') AS due`);
    return { rendered: events.length, due: r?.due ?? true };
  }

  /** `data.object` per event id: a value, or the Error its rendering met. */
  private async renderObjects(events: PendingEvent[]): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    const asError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));
    const byKind = new Map<string, PendingEvent[]>();
    for (const ev of events) byKind.set(ev.objectKind, [...(byKind.get(ev.objectKind) ?? []), ev]);
    for (const [kind, evs] of byKind) {
      const render = this.renderers[kind as EventObjectRef['kind']];
      if (!render) {
        for (const ev of evs) out.set(ev.id, new Error(`no renderer for ${kind}`));
      } else if (render.many) {
        const objects = await render.many([...new Set(evs.map((ev) => ev.objectId))]).catch(asError);
        for (const ev of evs) out.set(ev.id, objects instanceof Error ? objects : objects.get(ev.objectId));
      } else {
        // Two at a time: each render is a handful of reads, and the connection pool is shared with
        // payments and splits, which must not queue behind a burst of renders.
        for (let i = 0; i < evs.length; i += 2)
          await Promise.all(evs.slice(i, i + 2).map(async (ev) => out.set(ev.id, await render(ev.objectId).catch(asError))));
      }
    }
    return out;
  }

  private async claimAndSend(): Promise<number> {
    if (this.closed) return 0; // shutting down: claim nothing more, the sends in flight finish
    const { prisma, config } = this.deps;
    const free = config.WEBHOOK_CONCURRENCY - this.inFlight.size;
    if (free <= 0) return 0;
    const now = this.deps.now();
    // Columns are UTC timestamps without zone (Prisma's DateTime): compare real UTC instants.
    const nowIso = now.toISOString();
    const busy = [...this.inFlight.keys()];
    const full = [...this.perEndpointInFlight].filter(([, n]) => n >= this.perEndpoint).map(([id]) => id);
    // Each endpoint's first due deliveries, walked in order through an index and stopped after
    // `perEndpoint` heads: one window over every pending row took 18 ms per claim at 2,000 pending
    // (a claim follows every delivery). `eps` lists the endpoints with pending deliveries by a skip
    // scan of the same index, so an endpoint without any costs nothing.
    const candidates = await rawQuery<{ id: string; endpoint_id: string }>(prisma, Prisma.sql`
      WITH RECURSIVE eps(endpoint_id) AS (
        (SELECT endpoint_id FROM webhook_deliveries WHERE status = 'pending' ORDER BY endpoint_id LIMIT 1)
        UNION ALL
        SELECT (SELECT d.endpoint_id FROM webhook_deliveries d
                 WHERE d.status = 'pending' AND d.endpoint_id > eps.endpoint_id ORDER BY d.endpoint_id LIMIT 1)
          FROM eps WHERE eps.endpoint_id IS NOT NULL)
      SELECT c.id, c.endpoint_id
        FROM eps
        JOIN webhook_endpoints e ON e.id = eps.endpoint_id
       CROSS JOIN LATERAL (
         SELECT d.id, d.endpoint_id, d.next_attempt_at, d.event_seq
           FROM webhook_deliveries d
          WHERE d.status = 'pending' AND d.endpoint_id = e.id
            AND d.next_attempt_at <= ${nowIso}::timestamptz AT TIME ZONE 'UTC'
            AND (d.lease_until IS NULL OR d.lease_until <= ${nowIso}::timestamptz AT TIME ZONE 'UTC')
            AND (SELECT ev.body IS NOT NULL FROM merchant_events ev WHERE ev.id = d.event_id)
            AND d.id <> ALL(${busy}::text[])
            AND (SELECT p.id FROM webhook_deliveries p
                  WHERE p.endpoint_id = d.endpoint_id AND p.checkout_id = d.checkout_id
                    AND p.status = 'pending' AND p.event_seq < d.event_seq LIMIT 1) IS NULL
          ORDER BY d.next_attempt_at, d.event_seq
          LIMIT ${this.perEndpoint}) c
       WHERE e.deleted_at IS NULL AND NOT e.disabled AND e.id <> ALL(${full}::text[])
       ORDER BY c.next_attempt_at, c.event_seq LIMIT ${free * 2}`);
    const picked: string[] = [];
    const room = new Map<string, number>();
    for (const c of candidates) {
      const left = room.get(c.endpoint_id) ?? this.perEndpoint - (this.perEndpointInFlight.get(c.endpoint_id) ?? 0);
      if (left <= 0 || picked.length >= free) continue;
      room.set(c.endpoint_id, left - 1);
      picked.push(c.id);
    }
    if (!picked.length) return 0;
    const leaseIso = new Date(now.getTime() + config.WEBHOOK_TIMEOUT_MS + 60_000).toISOString();
    // The lease returns what the send needs (body, URL, secrets): no reads per delivery.
    const claimed = await rawQuery<ClaimedDelivery>(prisma, Prisma.sql`
      UPDATE webhook_deliveries w SET lease_until = ${leaseIso}::timestamptz AT TIME ZONE 'UTC'
        FROM (SELECT id FROM webhook_deliveries
               WHERE id = ANY(${picked}::text[]) AND status = 'pending'
                 AND (lease_until IS NULL OR lease_until <= ${nowIso}::timestamptz AT TIME ZONE 'UTC')
               FOR UPDATE SKIP LOCKED) l,
             merchant_events ev, webhook_endpoints ep
       WHERE w.id = l.id AND ev.id = w.event_id AND ep.id = w.endpoint_id
      RETURNING w.id, w.endpoint_id, w.attempts, ev.id AS event_id, ev.body, ep.url, ep.failing_since IS NOT NULL AS failing,
        ep.secret, ep.previous_secret AS "previousSecret", ep.previous_secret_expires_at AS "previousSecretExpiresAt"`);
    for (const c of claimed) {
      this.perEndpointInFlight.set(c.endpoint_id, (this.perEndpointInFlight.get(c.endpoint_id) ?? 0) + 1);
      const p = this.deliver(c)
        .catch((err) => this.deps.logger.error({ err, deliveryId: c.id }, 'webhook delivery crashed; the lease will expire'))
        .finally(() => {
          this.inFlight.delete(c.id);
          const n = (this.perEndpointInFlight.get(c.endpoint_id) ?? 1) - 1;
          if (n > 0) this.perEndpointInFlight.set(c.endpoint_id, n);
          else this.perEndpointInFlight.delete(c.endpoint_id);
          // The checkout's next event (and a freed slot) need not wait for the next poll.
          if (!this.closed) this.pass({ render: false });
        });
      this.inFlight.set(c.id, p);
    }
    return claimed.length;
  }

  private async deliver(c: ClaimedDelivery): Promise<void> {
    const { prisma, config, logger } = this.deps;
    const at = this.deps.now();
    const result: SendResult = await this.sender.send(c.url, {
      'webhook-id': c.event_id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': signatureHeader(signingSecrets(c, at), c.event_id, at, c.body),
    }, c.body);
    const ok = result.httpStatus !== null && result.httpStatus >= 200 && result.httpStatus < 300;
    const attempts = c.attempts + 1;
    const schedule = config.WEBHOOK_RETRY_SCHEDULE;
    const exhausted = !ok && attempts > schedule.length;
    const done = this.deps.now();
    // The attempt and the delivery's outcome in one statement (atomic without BEGIN/COMMIT).
    let outcome: Prisma.Sql;
    if (ok) {
      outcome = Prisma.sql`d AS (UPDATE webhook_deliveries SET status = 'delivered', attempts = ${attempts}, delivered_at = ${sqlUtc(done)}, lease_until = NULL, updated_at = ${sqlUtc(done)}
          WHERE id = ${c.id})${c.failing ? Prisma.sql`,
        e AS (UPDATE webhook_endpoints SET failing_since = NULL, updated_at = ${sqlUtc(done)} WHERE id = ${c.endpoint_id} AND failing_since IS NOT NULL)` : Prisma.empty}`;
    } else if (exhausted) {
      outcome = Prisma.sql`d AS (UPDATE webhook_deliveries SET status = 'failed', attempts = ${attempts}, lease_until = NULL, updated_at = ${sqlUtc(done)}
          WHERE id = ${c.id} AND status = 'pending'),
        e AS (UPDATE webhook_endpoints SET failing_since = ${sqlUtc(done)}, updated_at = ${sqlUtc(done)} WHERE id = ${c.endpoint_id} AND failing_since IS NULL)`;
    } else {
      // Exponential by schedule, jittered upward only (up to +20%): the schedule's total stays a floor.
      const delayMs = schedule[attempts - 1]! * 1000 * (1 + 0.2 * this.random());
      // Only while still pending: deleting the endpoint meanwhile ended the delivery.
      outcome = Prisma.sql`d AS (UPDATE webhook_deliveries SET attempts = ${attempts}, next_attempt_at = ${sqlUtc(new Date(done.getTime() + delayMs))}, lease_until = NULL, updated_at = ${sqlUtc(done)}
          WHERE id = ${c.id} AND status = 'pending')`;
    }
    await rawExecute(prisma, Prisma.sql`WITH attempt AS (
        INSERT INTO webhook_attempts (id, delivery_id, event_id, endpoint_id, attempted_at, duration_ms, http_status, response, error)
        VALUES (${newId('wha')}, ${c.id}, ${c.event_id}, ${c.endpoint_id}, ${sqlUtc(at)}, ${result.durationMs}, ${result.httpStatus}::int, ${result.response}::text, ${result.error}::text)),
      ${outcome}
      SELECT 1`);
    this.deps.metrics?.webhookDeliveries.inc({ outcome: ok ? 'delivered' : exhausted ? 'failed' : 'retry' });
    if (!ok) logger.warn({ eventId: c.event_id, endpointId: c.endpoint_id, status: result.httpStatus, error: result.error, attempts, failed: exhausted }, 'webhook delivery not accepted');
  }
}

/**
 * Outgoing notifies: signed like answers, resource AEAD_AES_256_GCM-encrypted with the APIv3 key, POSTed with
 * a 5 s timeout and retried on WeChat's schedule until the merchant answers 200/204.
 * Faults: duplicate copies sent concurrently, a delay, a WECHATPAY/SIGNTEST/ probe first, and holding
 * notifies to release them out of order.
 */
import { randomUUID } from 'node:crypto';
import { encryptResource, randomAlnum, rfc3339Beijing } from '../sim-crypto';
import type { SimRuntime } from '../runtime';

/** 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h (FACTS §4). */
export const WECHAT_NOTIFY_RETRY_SCHEDULE_MS = [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600].map(
  (s) => s * 1000,
);

export interface NotifyAttempt {
  notifyId: string;
  eventType: string;
  ref?: string;
  url: string;
  attempt: number;
  /** 0 = the main copy; 1..n = duplicates sent concurrently. */
  copy: number;
  kind: 'real' | 'probe';
  status?: number;
  error?: string;
  ok: boolean;
  at: number;
}

export interface NotifyFaults {
  /** Extra copies sent concurrently with each first attempt. */
  duplicate: number;
  /** Delay before the first attempt. */
  delayMs: number;
  /** Send a probe with a deliberately wrong `WECHATPAY/SIGNTEST/...` signature first. */
  signTestFirst: boolean;
  /** Queue first attempts until release() (lets tests deliver them out of order). */
  hold: boolean;
}

export interface SendArgs {
  url: string;
  eventType: string;
  summary: string;
  originalType: string;
  resource: object;
  ref?: string;
}

export interface NotifyRecord {
  id: string;
  eventType: string;
  ref?: string;
  url: string;
  body: string;
  plaintext: object;
  delivered: boolean;
  attempts: number;
}

export class Notifier {
  readonly log: NotifyAttempt[] = [];
  readonly records: NotifyRecord[] = [];
  faults: NotifyFaults = { duplicate: 0, delayMs: 0, signTestFirst: false, hold: false };
  private held: Array<() => void> = [];
  private timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private generation = 0;

  constructor(private readonly rt: SimRuntime, private readonly schedule: () => number[]) {}

  send(args: SendArgs): string {
    const id = randomUUID();
    const enc = encryptResource(this.rt.keys.apiv3Key, JSON.stringify(args.resource), args.originalType);
    const body = JSON.stringify({
      id,
      create_time: rfc3339Beijing(this.rt.now()),
      resource_type: 'encrypt-resource',
      event_type: args.eventType,
      summary: args.summary,
      resource: { original_type: args.originalType, ...enc },
    });
    const rec: NotifyRecord = { id, eventType: args.eventType, ref: args.ref, url: args.url, body, plaintext: args.resource, delivered: false, attempts: 0 };
    this.records.push(rec);
    const gen = this.generation;
    const first = () => {
      if (this.faults.delayMs > 0) this.later(() => void this.attempt(rec, 1, gen), this.faults.delayMs);
      else void this.attempt(rec, 1, gen);
    };
    if (this.faults.hold) this.held.push(first);
    else first();
    return id;
  }

  /** Sends held first attempts, in reverse order if asked. */
  release(opts: { reverse?: boolean } = {}): number {
    const batch = this.held.splice(0);
    if (opts.reverse) batch.reverse();
    for (const f of batch) f();
    return batch.length;
  }

  /** Forget everything and cancel pending retries. */
  reset(): void {
    this.generation++;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.held = [];
    this.log.length = 0;
    this.records.length = 0;
    this.faults = { duplicate: 0, delayMs: 0, signTestFirst: false, hold: false };
  }

  stop(): void {
    this.stopped = true;
    this.reset();
  }

  private later(fn: () => void, ms: number) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref?.();
    this.timers.add(t);
  }

  private async attempt(rec: NotifyRecord, attempt: number, gen: number): Promise<void> {
    if (this.stopped || gen !== this.generation) return;
    rec.attempts = attempt;
    if (attempt === 1 && this.faults.signTestFirst) await this.post(rec, attempt, 0, 'probe');
    const copies = attempt === 1 ? 1 + this.faults.duplicate : 1;
    const results = await Promise.all(Array.from({ length: copies }, (_, i) => this.post(rec, attempt, i, 'real')));
    if (gen !== this.generation) return;
    if (results.some(Boolean)) {
      rec.delivered = true;
      return;
    }
    const delays = this.schedule();
    if (attempt <= delays.length) this.later(() => void this.attempt(rec, attempt + 1, gen), delays[attempt - 1]!);
  }

  private async post(rec: NotifyRecord, attempt: number, copy: number, kind: 'real' | 'probe'): Promise<boolean> {
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      Accept: '*/*',
      'User-Agent': 'Mozilla/4.0',
      ...this.rt.signHeaders(rec.body),
    };
    if (kind === 'probe') headers['Wechatpay-Signature'] = `WECHATPAY/SIGNTEST/${randomAlnum(43)}=`;
    const entry: NotifyAttempt = { notifyId: rec.id, eventType: rec.eventType, ref: rec.ref, url: rec.url, attempt, copy, kind, ok: false, at: this.rt.now() };
    try {
      const res = await fetch(rec.url, {
        method: 'POST',
        headers,
        body: rec.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.rt.notifyTimeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      entry.status = res.status;
      // FACTS §4: success is HTTP 200 or 204; anything else (even 201, PITFALLS §3.2) counts as a failure.
      entry.ok = res.status === 200 || res.status === 204;
    } catch (e) {
      entry.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
    this.log.push(entry);
    return kind === 'real' && entry.ok;
  }
}

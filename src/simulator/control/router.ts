/** /_sim: test and demo controls over HTTP (the same things `control` offers in-process). */
import express, { Router } from 'express';
import type { SimRuntime } from '../runtime';
import type { SimControl } from '../app';
import { transactionView } from '../payments/transactions';

export function createControlRouter(rt: SimRuntime, control: SimControl): Router {
  const r = Router();
  r.use(express.json());

  r.get('/calls', (_req, res) => res.json(rt.calls));
  r.post('/reset', (_req, res) => {
    control.reset();
    res.status(204).end();
  });

  r.post('/transactions/:no/pay', (req, res) => {
    const body = (req.body ?? {}) as { payer_total?: unknown };
    if (body.payer_total !== undefined && typeof body.payer_total !== 'number')
      return res.status(400).json({ error: 'payer_total must be an integer (fen)' });
    const out = control.pay(String(req.params.no), { payerTotal: body.payer_total as number | undefined });
    if (!out.ok) return res.status(out.status).json({ error: out.reason });
    res.json(transactionView(out.tx));
  });
  r.get('/transactions/:no', (req, res) => {
    const tx = rt.transactions.byOutTradeNo.get(String(req.params.no));
    if (!tx) return res.status(404).json({ error: 'not found' });
    res.json({ ...tx, extra: rt.extraFor(tx) });
  });

  // {failNext?: {n, status?, code?, message?, pathPrefix?, method?, afterProcessing?}, timeoutNext?: {n, pathPrefix?, method?, afterProcessing?}, latencyMs?, clear?}
  r.post('/faults', (req, res) => {
    const b = (req.body ?? {}) as Record<string, any>;
    if (b.clear) control.faults.clear();
    if (b.failNext) control.faults.failNext(Number(b.failNext.n ?? 1), b.failNext);
    if (b.timeoutNext) control.faults.timeoutNext(Number(b.timeoutNext.n ?? 1), b.timeoutNext);
    if (b.latencyMs !== undefined) control.faults.latency(Number(b.latencyMs));
    res.json({ rules: rt.faults.rules, latencyMs: rt.faults.latencyMs });
  });

  // {duplicate?, delayMs?, signTestFirst?, hold?}
  r.post('/notify-faults', (req, res) => {
    control.notifyFaults((req.body ?? {}) as Record<string, any>);
    res.json(rt.notifier.faults);
  });
  r.get('/notifies', (_req, res) => res.json({ attempts: rt.notifier.log, notifies: rt.notifier.records.map(({ body: _b, ...n }) => n) }));
  r.post('/notifies/release', (req, res) => res.json({ released: control.releaseNotifies({ reverse: Boolean((req.body ?? {}).reverse) }) }));

  // {mode: 'public-key' | 'certificate'}
  r.post('/signing', (req, res) => {
    const mode = (req.body ?? {}).mode;
    if (mode !== 'public-key' && mode !== 'certificate') return res.status(400).json({ error: "mode must be 'public-key' or 'certificate'" });
    control.setSigningMode(mode);
    res.json({ mode, serial: rt.signingIdentity().serial });
  });

  // {advanceMs}: moves the simulator clock (expiry of h5_url, prepay_id, OAuth codes, skew checks).
  r.post('/clock', (req, res) => {
    control.advanceTime(Number((req.body ?? {}).advanceMs ?? 0));
    res.json({ now: rt.now() });
  });

  return r;
}

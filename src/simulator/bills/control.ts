/** /_sim/bills: the bill fault controls over HTTP (the same as `control.bills` in-process). Not WeChat's API. */
import express from 'express';
import { z } from 'zod';
import type { BillControl } from './store';

const faultSchema = z.strictObject({
  bill: z.enum(['trade', 'profitsharing']),
  action: z.enum(['drop', 'amount', 'state', 'extra', 'bad_hash', 'not_ready']),
  ref: z.string().min(1).max(64).optional(),
  deltaFen: z.number().int().optional(),
  state: z.string().min(1).max(32).optional(),
  times: z.number().int().min(1).optional(),
});

export function createBillControlRouter(control: BillControl): express.Router {
  const r = express.Router();
  // {bill, action, ref?, deltaFen?, state?, times?}
  r.post('/faults', (req, res) => {
    const p = faultSchema.safeParse(req.body ?? {});
    if (!p.success) return res.status(400).json({ error: p.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
    control.fault(p.data);
    res.json({ faults: control.faults });
  });
  r.post('/faults/clear', (_req, res) => {
    control.clear();
    res.status(204).end();
  });
  return r;
}

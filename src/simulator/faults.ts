/**
 * Injected failures for /v3 calls: fail the next N with a signed 5xx, hang the next N, hold the next N
 * until released (a slow channel whose moment the test chooses), add latency.
 */
import type { NextFunction, Request, Response } from 'express';
import type { SimRuntime } from './runtime';

export interface FaultRule {
  kind: 'fail' | 'timeout' | 'hold';
  remaining: number;
  status: number;
  code: string;
  message: string;
  pathPrefix?: string;
  method?: string;
  /** Apply the call first (order created, paid state changed...) and then lose or replace the answer. */
  afterProcessing: boolean;
}

export interface FaultState {
  rules: FaultRule[];
  latencyMs: number;
  /** Requests held by a 'hold' rule: each goes on (is processed normally) when released. */
  held: Array<() => void>;
}

export interface FailOptions {
  status?: number;
  code?: string;
  message?: string;
  pathPrefix?: string;
  method?: string;
  afterProcessing?: boolean;
}

export function newFaultState(): FaultState {
  return { rules: [], latencyMs: 0, held: [] };
}

export function addFail(state: FaultState, n: number, o: FailOptions = {}): void {
  state.rules.push({
    kind: 'fail',
    remaining: n,
    status: o.status ?? 500,
    code: o.code ?? 'SYSTEM_ERROR',
    message: o.message ?? '系统异常，请稍后重试',
    pathPrefix: o.pathPrefix,
    method: o.method?.toUpperCase(),
    afterProcessing: o.afterProcessing ?? false,
  });
}

export function addTimeout(state: FaultState, n: number, o: Omit<FailOptions, 'status' | 'code' | 'message'> = {}): void {
  state.rules.push({
    kind: 'timeout',
    remaining: n,
    status: 0,
    code: '',
    message: '',
    pathPrefix: o.pathPrefix,
    method: o.method?.toUpperCase(),
    afterProcessing: o.afterProcessing ?? false,
  });
}

/** The next `n` matching calls wait until releaseHeld(), then are processed as usual. */
export function addHold(state: FaultState, n: number, o: Pick<FailOptions, 'pathPrefix' | 'method'> = {}): void {
  state.rules.push({ kind: 'hold', remaining: n, status: 0, code: '', message: '', pathPrefix: o.pathPrefix, method: o.method?.toUpperCase(), afterProcessing: false });
}

/** Lets every held call go on; returns how many there were. */
export function releaseHeld(state: FaultState): number {
  const held = state.held.splice(0);
  for (const go of held) go();
  return held.length;
}

export function faultMiddleware(rt: SimRuntime) {
  return async (req: Request, res: Response, next: NextFunction) => {
    if (rt.faults.latencyMs > 0) await new Promise((r) => setTimeout(r, rt.faults.latencyMs));
    const path = req.originalUrl.split('?')[0]!;
    const rule = rt.faults.rules.find(
      (r) => r.remaining > 0 && (!r.pathPrefix || path.startsWith(r.pathPrefix)) && (!r.method || r.method === req.method),
    );
    if (!rule) return next();
    rule.remaining--;
    rt.faults.rules = rt.faults.rules.filter((r) => r.remaining > 0);
    if (rule.kind === 'hold') {
      await new Promise<void>((go) => rt.faults.held.push(go));
      return next();
    }
    if (rule.afterProcessing) {
      res.locals.simFault = { kind: rule.kind, status: rule.status, code: rule.code, message: rule.message };
      return next();
    }
    if (rule.kind === 'timeout') {
      rt.hung.add(res);
      return;
    }
    rt.fail(res, rule.status, rule.code, rule.message);
  };
}

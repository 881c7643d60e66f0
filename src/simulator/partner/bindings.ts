/**
 * Which sub-merchants (特约商户) belong to this simulator's service provider, with their bound sub_appids
 * and the profit-sharing ratio each authorised (万分比). One place for the refusals every partner call
 * shares (FACTS-partner-bills §1.12): payments, profit sharing and refunds all ask here.
 * Statuses marked "inferred" are UNCONFIRMED in the facts sheet and chosen by meaning.
 */
import express from 'express';
import { z } from 'zod';
import type { SimContext, SimOptions } from '../context';

export type Refusal = { ok: false; status: number; code: string; message: string };
export interface SubMerchant {
  ok: true;
  subMchid: string;
  subAppids: string[];
  /** undefined: the sub-merchant has not authorised profit sharing to this service provider. */
  maxRatioBp?: number;
}

const refuse = (status: number, code: string, message: string): Refusal => ({ ok: false, status, code, message });

/**
 * A direct merchant (no partner configuration) sending sub_mchid on a path both modes share: the field is
 * not in its API, so the verified unknown-field answer (profitsharing/schemas.ts describeIssue) rather
 * than 270924358 "参数中含有非法的额外参数" (inferred for partner-only fields, §Part 3 rule 3).
 */
export const PARTNER_FIELD_ON_DIRECT = () => refuse(400, 'PARAM_ERROR', '请求中含有未在API文档中定义的参数');
/** 268443704; PARAM_ERROR seen in the community, 400 inferred. */
export const SUB_MCHID_MISSING = () => refuse(400, 'PARAM_ERROR', '受理机构必须传入sub_mch_id');
/** 268447845 "子商户号和订单信息不匹配"; status and code inferred. */
export const SUB_MCHID_NOT_ORDER = () => refuse(400, 'INVALID_REQUEST', '子商户号和订单信息不匹配');

/** 268443701 "受理关系不存在": not this SP's sub-merchant; 403 NO_AUTH inferred. */
export const NO_RELATIONSHIP = () => refuse(403, 'NO_AUTH', '受理关系不存在');

export const isServiceProvider = (ctx: SimContext): boolean => ctx.opts.partner !== undefined;

/** The binding of `subMchid` to this service provider, or WeChat's refusal. */
export function subMerchantOf(ctx: SimContext, subMchid: unknown): SubMerchant | Refusal {
  if (!isServiceProvider(ctx)) return PARTNER_FIELD_ON_DIRECT();
  if (typeof subMchid !== 'string' || !subMchid) return SUB_MCHID_MISSING();
  if (subMchid === ctx.opts.mchid) return refuse(400, 'PARAM_ERROR', '子商户mchid不能与自身mchid相同'); // 268443705, status inferred
  const sub = ctx.opts.partner!.subMerchants[subMchid];
  if (!sub) return NO_RELATIONSHIP();
  return { ok: true, subMchid, subAppids: sub.subAppids ?? [], ...(sub.maxRatioBp !== undefined ? { maxRatioBp: sub.maxRatioBp } : {}) };
}

/**
 * A call about an order: the sub_mchid sent must be the order's. Partner order without sub_mchid →
 * 268443704; a sub_mchid on a direct order, or another sub-merchant's → 268447845.
 */
export function checkOrderSub(ctx: SimContext, order: { partner?: { subMchid: string } }, subMchid: string | undefined): Refusal | null {
  if (subMchid === undefined) return order.partner ? SUB_MCHID_MISSING() : null;
  const sub = subMerchantOf(ctx, subMchid);
  if (!sub.ok) return sub;
  return order.partner?.subMchid === subMchid ? null : SUB_MCHID_NOT_ORDER();
}

// ---- controls (/_sim/partner) --------------------------------------------------------------------

type SubMerchants = NonNullable<SimOptions['partner']>['subMerchants'];

export interface PartnerControl {
  /** Binds (or re-binds) a sub-merchant; maxRatioBp null = profit sharing not authorised. Makes the simulator a service provider. */
  bind(subMchid: string, o?: { subAppids?: string[]; maxRatioBp?: number | null }): void;
  unbind(subMchid: string): boolean;
  subMerchants(): SubMerchants;
  /** Back to the bindings the simulator started with. */
  reset(): void;
}

export function partnerControl(ctx: SimContext): PartnerControl {
  const initial = ctx.opts.partner ? structuredClone(ctx.opts.partner) : undefined;
  return {
    bind(subMchid, o = {}) {
      ctx.opts.partner ??= { subMerchants: {} };
      const prev = ctx.opts.partner.subMerchants[subMchid] ?? {};
      const next = { ...prev, ...(o.subAppids ? { subAppids: [...o.subAppids] } : {}) };
      if (o.maxRatioBp === null) delete next.maxRatioBp;
      else if (o.maxRatioBp !== undefined) next.maxRatioBp = o.maxRatioBp;
      ctx.opts.partner.subMerchants[subMchid] = next;
    },
    unbind(subMchid) {
      const subs = ctx.opts.partner?.subMerchants;
      if (!subs?.[subMchid]) return false;
      delete subs[subMchid];
      return true;
    },
    subMerchants: () => structuredClone(ctx.opts.partner?.subMerchants ?? {}),
    reset() {
      ctx.opts.partner = initial ? structuredClone(initial) : undefined;
    },
  };
}

// The sub-merchant sets the ratio, > 0%, at most 30% by default (FACTS-partner-bills §1.9); 10000 allowed for tests of the cap.
const bindSchema = z.strictObject({
  sub_mchid: z.string().regex(/^\d{8,12}$/),
  sub_appids: z.array(z.string().min(1).max(32)).optional(),
  max_ratio_bp: z.number().int().min(1).max(10_000).nullable().optional(),
});

/**
 * HTTP controls at /_sim/partner (JSON): GET /sub-merchants, POST /sub-merchants {sub_mchid, sub_appids?,
 * max_ratio_bp?|null}, DELETE /sub-merchants/:sub_mchid.
 */
export function createPartnerControlRouter(control: PartnerControl): express.Router {
  const r = express.Router();
  r.use(express.json());
  r.get('/sub-merchants', (_req, res) => void res.json({ sub_merchants: control.subMerchants() }));
  r.post('/sub-merchants', (req, res) => {
    const p = bindSchema.safeParse(req.body);
    if (!p.success) return void res.status(400).json({ error: p.error.issues[0]?.message, path: p.error.issues[0]?.path });
    control.bind(p.data.sub_mchid, { subAppids: p.data.sub_appids, maxRatioBp: p.data.max_ratio_bp });
    res.json({ sub_merchants: control.subMerchants() });
  });
  r.delete('/sub-merchants/:sub_mchid', (req, res) => {
    if (!control.unbind(String(req.params.sub_mchid))) return void res.status(404).json({ error: 'not bound' });
    res.status(204).end();
  });
  return r;
}

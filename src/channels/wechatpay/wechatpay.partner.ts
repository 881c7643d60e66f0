import { z } from 'zod';
import type { ChannelTransaction, CreateOrderInput } from '../channel';
import { toChannelTransaction, toWireOrderRequest } from './wechatpay.transform';
import { tradeStateSchema, type WireOrderRequest } from './wechatpay.wire';

/**
 * Service-provider (服务商) mode as a field mapper over the direct mode (FACTS-partner-bills §1):
 * the same order, with mchid → sp_mchid + sub_mchid, appid → sp_appid (+ sub_appid), openid →
 * sp_openid or sub_openid, on /v3/pay/partner/transactions/*. Keys, signing and verification are the
 * service provider's and unchanged, so the channel keeps one client.
 */
export interface PartnerIds {
  spMchid: string;
  spAppid: string;
  subMchid: string;
  /** The sub-merchant's own official account, when shoppers' openids come from it (sub_openid). */
  subAppid?: string;
}

/** Which app OAuth and paySign run under: sub_appid when the sub-merchant has its own (with its secret), else sp_appid. */
export const payingAppid = (ids: PartnerIds): string => ids.subAppid ?? ids.spAppid;

export function toWirePartnerOrderRequest(input: CreateOrderInput, ids: PartnerIds): Record<string, unknown> {
  const { appid, mchid, payer, ...rest } = toWireOrderRequest(input, { appid: ids.spAppid, mchid: ids.spMchid }) as WireOrderRequest & { payer?: { openid: string } };
  const body: Record<string, unknown> = { sp_appid: appid, sp_mchid: mchid, sub_mchid: ids.subMchid, ...rest };
  // sub_appid is sent only with a sub_openid: "若sub_openid有传的情况下，sub_appid必填" (§1.2); paySign then uses it (§1.3).
  if (ids.subAppid) body.sub_appid = ids.subAppid;
  if (payer) body.payer = ids.subAppid ? { sub_openid: payer.openid } : { sp_openid: payer.openid };
  return body;
}

export const partnerTransactionSchema = z.object({
  sp_appid: z.string().min(1),
  sp_mchid: z.string().min(1),
  sub_appid: z.string().optional(),
  sub_mchid: z.string().min(1),
  out_trade_no: z.string().min(1),
  transaction_id: z.string().min(1).optional(),
  trade_type: z.string().optional(),
  trade_state: tradeStateSchema,
  trade_state_desc: z.string().optional(),
  bank_type: z.string().optional(),
  attach: z.string().optional(),
  success_time: z.string().optional(),
  payer: z.object({ sp_openid: z.string().optional(), sub_openid: z.string().optional() }).optional(),
  amount: z.object({ total: z.number().int().optional(), payer_total: z.number().int().optional(), currency: z.string().optional(), payer_currency: z.string().optional() }).optional(),
});

export function partnerToChannelTransaction(w: z.infer<typeof partnerTransactionSchema>): ChannelTransaction {
  const { sp_appid, sp_mchid, sub_appid, sub_mchid, payer, ...rest } = w;
  const openid = payer?.sub_openid ?? payer?.sp_openid;
  const t = toChannelTransaction({ ...rest, appid: sp_appid, mchid: sp_mchid, ...(openid ? { payer: { openid } } : {}) });
  t.subMchid = sub_mchid;
  if (sub_appid !== undefined) t.subAppid = sub_appid;
  return t;
}

import { z } from 'zod';

/**
 * WeChat Pay APIv3 wire types (snake_case, exactly as on the wire). Request bodies are plain
 * types; answers we depend on have zod schemas (unknown fields are ignored, missing/ill-typed
 * fields we rely on are refused). Field lists: FACTS §1, §4, §5; WXIM openapi/v3 pages.
 */

// ---- requests -----------------------------------------------------------------------------

export interface WireAmount {
  total: number; // fen, ≥ 1
  currency: 'CNY';
}

export interface WireSceneInfo {
  payer_client_ip: string;
  h5_info?: { type: 'Wap' | 'iOS' | 'Android' };
}

/** Common body of POST /v3/pay/transactions/{jsapi,h5,native}. */
export interface WireOrderRequest {
  appid: string;
  mchid: string;
  description: string;
  out_trade_no: string;
  time_expire?: string; // RFC 3339, +08:00
  attach?: string;
  notify_url: string;
  amount: WireAmount;
  settle_info: { profit_sharing: boolean };
  payer?: { openid: string }; // JSAPI
  scene_info?: WireSceneInfo; // required for H5
}

export interface WireSplitReceiverRequest {
  type: 'MERCHANT_ID' | 'PERSONAL_OPENID';
  account: string;
  name?: string; // RSA-OAEP ciphertext, base64
  amount: number; // fen
  description: string;
}

export interface WireSplitOrderRequest {
  /** Partner mode: the sub-merchant whose payment is split (FACTS-partner-bills §1.8). */
  sub_mchid?: string;
  appid: string;
  transaction_id: string;
  out_order_no: string;
  receivers: WireSplitReceiverRequest[];
  unfreeze_unsplit: boolean;
}

export interface WireReceiverAddRequest {
  /** Partner mode: receivers are added per sub-merchant. */
  sub_mchid?: string;
  appid: string;
  type: 'MERCHANT_ID' | 'PERSONAL_OPENID';
  account: string;
  name?: string; // RSA-OAEP ciphertext, base64
  relation_type: string;
  custom_relation?: string; // required when relation_type is CUSTOM
}

export interface WireUnfreezeRequest {
  transaction_id: string;
  out_order_no: string;
  description: string;
}

// ---- answers --------------------------------------------------------------------------------

export const jsapiPrepaySchema = z.object({ prepay_id: z.string().min(1) });
export const h5PrepaySchema = z.object({ h5_url: z.string().min(1) });
export const nativePrepaySchema = z.object({ code_url: z.string().min(1) });

const fen = z.number().int().min(0);

export const tradeStateSchema = z.enum(['SUCCESS', 'REFUND', 'NOTPAY', 'CLOSED', 'REVOKED', 'USERPAYING', 'PAYERROR']);

/** Query answer and decrypted TRANSACTION.* notify resource share this shape. */
export const transactionSchema = z.object({
  appid: z.string().min(1),
  mchid: z.string().min(1),
  out_trade_no: z.string().min(1),
  transaction_id: z.string().min(1).optional(),
  trade_type: z.string().optional(),
  trade_state: tradeStateSchema,
  trade_state_desc: z.string().optional(),
  bank_type: z.string().optional(),
  attach: z.string().optional(),
  success_time: z.string().optional(),
  payer: z.object({ openid: z.string().optional() }).optional(),
  amount: z
    .object({
      total: fen.optional(),
      payer_total: fen.optional(),
      currency: z.string().optional(),
      payer_currency: z.string().optional(),
    })
    .optional(),
  /** Coupons used (WXIM query answer): merchant_contribute is what the merchant funded. */
  promotion_detail: z
    .array(
      z.object({
        amount: fen.optional(),
        type: z.string().optional(), // CASH (充值型) | NOCASH (免充值型)
        merchant_contribute: fen.optional(),
        wechatpay_contribute: fen.optional(),
        other_contribute: fen.optional(),
      }),
    )
    .optional(),
});
export type WireTransaction = z.infer<typeof transactionSchema>;

/** The notify envelope (SKILLS 支付成功回调通知说明.md). */
export const notifyEnvelopeSchema = z.object({
  id: z.string().min(1),
  create_time: z.string().optional(),
  event_type: z.string().min(1),
  resource_type: z.string().optional(),
  summary: z.string().optional(),
  resource: z.object({
    algorithm: z.literal('AEAD_AES_256_GCM'),
    ciphertext: z.string().min(1),
    nonce: z.string().min(1),
    associated_data: z.string().optional(),
    original_type: z.string().optional(),
  }),
});
export type WireNotifyEnvelope = z.infer<typeof notifyEnvelopeSchema>;

export const splitReceiverResultSchema = z.object({
  type: z.enum(['MERCHANT_ID', 'PERSONAL_OPENID']),
  account: z.string(),
  amount: fen,
  description: z.string(),
  result: z.enum(['PENDING', 'SUCCESS', 'CLOSED']),
  fail_reason: z.string().optional(),
  detail_id: z.string().optional(),
  create_time: z.string().optional(),
  finish_time: z.string().optional(),
});

/** Answer of POST /orders, GET /orders/{out_order_no}, POST /orders/unfreeze. */
export const splitOrderSchema = z.object({
  transaction_id: z.string().min(1),
  out_order_no: z.string().min(1),
  order_id: z.string().min(1),
  state: z.enum(['PROCESSING', 'FINISHED']),
  receivers: z.array(splitReceiverResultSchema).optional(),
});
export type WireSplitOrder = z.infer<typeof splitOrderSchema>;

/** GET /v3/profitsharing/merchant-configs/{sub_mchid}: the ratio the sub-merchant authorised, 万分比. */
export const merchantRatioSchema = z.object({
  sub_mchid: z.string().min(1),
  max_ratio: z.number().int().min(0).max(10_000),
});

export const unsplitAmountSchema = z.object({
  transaction_id: z.string().optional(),
  unsplit_amount: fen,
});

/** Answer of POST /v3/refund/domestic/refunds and GET .../refunds/{out_refund_no}; also the REFUND.* notify resource. */
export const refundSchema = z.object({
  out_refund_no: z.string().min(1),
  refund_id: z.string().min(1),
  transaction_id: z.string().optional(),
  out_trade_no: z.string().optional(),
  mchid: z.string().optional(),
  /** Partner refund notifies carry these instead (FACTS-partner-bills §1.7). */
  sp_mchid: z.string().optional(),
  sub_mchid: z.string().optional(),
  // The answer says `status`, the notify resource says `refund_status`.
  status: z.enum(['PROCESSING', 'SUCCESS', 'CLOSED', 'ABNORMAL']).optional(),
  refund_status: z.enum(['PROCESSING', 'SUCCESS', 'CLOSED', 'ABNORMAL']).optional(),
  success_time: z.string().optional(),
  user_received_account: z.string().optional(),
  amount: z.object({ total: fen.optional(), refund: fen.optional(), currency: z.string().optional() }).optional(),
});
export type WireRefund = z.infer<typeof refundSchema>;

export interface WireRefundRequest {
  /** Partner mode: "服务商模式下必须传递此参数" (FACTS-partner-bills §1.7). */
  sub_mchid?: string;
  transaction_id: string;
  out_refund_no: string;
  reason?: string;
  notify_url: string;
  amount: { refund: number; total: number; currency: 'CNY' };
}

/** Answer of POST /v3/profitsharing/return-orders and its query. */
export const returnOrderSchema = z.object({
  out_order_no: z.string().min(1),
  out_return_no: z.string().min(1),
  return_id: z.string().optional(),
  return_mchid: z.string().min(1),
  amount: fen,
  result: z.enum(['PROCESSING', 'SUCCESS', 'FAILED']),
  fail_reason: z.string().optional(),
});

/** GET /sns/oauth2/access_token (api.weixin.qq.com, not signed). */
export const oauthTokenSchema = z.object({
  openid: z.string().min(1),
  access_token: z.string().optional(),
  scope: z.string().optional(),
});
export const oauthErrorSchema = z.object({ errcode: z.number().int(), errmsg: z.string().optional() });

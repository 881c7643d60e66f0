/**
 * The contract every payment channel implements. Checkout, payment and split logic talk only
 * to this interface and its normalised types; WeChat's snake_case wire types stay inside
 * `channels/wechatpay/`. A second channel (Alipay) is a new folder + a registry entry.
 *
 * All amounts are integer fen. Every method throws `ChannelError` (src/lib/errors.ts) on failure,
 * with `retryable` set from the channel's error code / HTTP status / network condition.
 */

export type TradeType = 'JSAPI' | 'H5' | 'NATIVE';

export interface CreateOrderInput {
  tradeType: TradeType;
  outTradeNo: string; // 6–32 chars [0-9A-Za-z_\-|*]
  description: string; // ≤127 chars
  amountFen: number;
  expiresAt: Date; // sent as RFC 3339 (+08:00) time_expire
  attach?: string;
  notifyUrl: string;
  profitSharing: boolean; // settle_info.profit_sharing
  payerOpenid?: string; // required for JSAPI
  payerClientIp?: string; // required for H5 (real client IP)
}

export type CreateOrderResult =
  | { tradeType: 'JSAPI'; prepayId: string }
  | { tradeType: 'H5'; h5Url: string }
  | { tradeType: 'NATIVE'; codeUrl: string };

/** Channel-side state of a payment order, normalised. */
export type ChannelTradeState = 'NOTPAY' | 'SUCCESS' | 'CLOSED' | 'REFUND' | 'USERPAYING' | 'PAYERROR' | 'REVOKED';

export interface ChannelTransaction {
  appid: string;
  mchid: string;
  outTradeNo: string;
  transactionId?: string;
  tradeType?: string;
  tradeState: ChannelTradeState;
  successTime?: Date;
  amountTotalFen?: number;
  payerTotalFen?: number;
  currency?: string;
  payerOpenid?: string;
  attach?: string;
  /** Partner orders: the sub-merchant (appid/mchid are then sp_appid/sp_mchid). */
  subMchid?: string;
  subAppid?: string;
}

/** A verified, decrypted payment notify. */
export interface PaymentNotifyEvent {
  eventId: string;
  eventType: string; // TRANSACTION.SUCCESS, ...
  createTime?: string;
  transaction: ChannelTransaction;
}

export interface JsapiParams {
  appId: string;
  timeStamp: string;
  nonceStr: string;
  package: string; // "prepay_id=..."
  signType: 'RSA';
  paySign: string;
}

// ---- profit sharing -------------------------------------------------------------------------

export type ReceiverType = 'MERCHANT_ID' | 'PERSONAL_OPENID';

export interface SplitReceiverInput {
  type: ReceiverType;
  account: string;
  name?: string; // plain text here; the channel adapter encrypts it on the wire
  amountFen: number;
  description: string;
}

export type SplitOrderState = 'PROCESSING' | 'FINISHED';
export type SplitReceiverResult = 'PENDING' | 'SUCCESS' | 'CLOSED';

export interface SplitOrderResult {
  transactionId: string;
  outOrderNo: string;
  orderId: string;
  state: SplitOrderState;
  receivers: Array<{
    type: ReceiverType;
    account: string;
    amountFen: number;
    description: string;
    result: SplitReceiverResult;
    failReason?: string;
    detailId?: string;
    createTime?: string;
    finishTime?: string;
  }>;
}

export interface PaymentChannel {
  readonly name: string; // 'wechatpay'
  readonly appid: string;
  readonly mchid: string;
  /**
   * Service-provider mode (issue 10): appid/mchid above are sp_appid/sp_mchid and the payments belong to
   * this sub-merchant. Absent for a direct merchant.
   */
  readonly partner?: { subMchid: string; subAppid?: string };
  /** The appid OAuth runs under (whose openids JSAPI orders carry), when it is not `appid` (partner with sub_appid). */
  readonly oauthAppid?: string;

  createOrder(input: CreateOrderInput): Promise<CreateOrderResult>;
  /** null when the channel does not know the order (ORDER_NOT_EXIST / RESOURCE_NOT_EXISTS). */
  queryOrder(outTradeNo: string): Promise<ChannelTransaction | null>;
  /** Idempotent. Throws ChannelError code ORDERPAID when the order was paid meanwhile. */
  closeOrder(outTradeNo: string): Promise<void>;
  /** Parameters for WeixinJSBridge getBrandWCPayRequest, signed with the merchant key. */
  jsapiParams(prepayId: string): JsapiParams;

  /** Official-account OAuth2 snsapi_base. */
  oauthAuthorizeUrl(redirectUri: string, state: string): string;
  oauthExchangeCode(code: string): Promise<{ openid: string }>;

  /**
   * Verifies (signature over the raw bytes, serial, ±5 min timestamp) and decrypts a payment notify.
   * Throws ChannelError with code BAD_SIGNATURE / STALE_TIMESTAMP / UNKNOWN_SERIAL / DECRYPT_FAILED /
   * BAD_NOTIFY (all retryable:false) when it must be refused.
   */
  parsePaymentNotify(headers: Record<string, string | string[] | undefined>, rawBody: Buffer): PaymentNotifyEvent;

  // profit sharing
  /** relationType: WeChat's relation_type (PARTNER, STAFF, SUPPLIER, …); customRelation when CUSTOM. */
  addReceiver(input: { type: ReceiverType; account: string; name?: string; relationType: string; customRelation?: string }): Promise<void>;
  createSplitOrder(input: {
    transactionId: string;
    outOrderNo: string;
    receivers: SplitReceiverInput[];
    unfreezeUnsplit: boolean;
  }): Promise<SplitOrderResult>;
  /** null when the channel does not know this out_order_no. */
  querySplitOrder(transactionId: string, outOrderNo: string): Promise<SplitOrderResult | null>;
  unfreeze(input: { transactionId: string; outOrderNo: string; description: string }): Promise<SplitOrderResult>;
  unsplitAmount(transactionId: string): Promise<{ unsplitAmountFen: number }>;
}

/**
 * The contract every payment channel implements. Checkout, payment and split logic talk only
 * to this interface and its normalised types; WeChat's snake_case wire types stay inside
 * `channels/wechatpay/`. A second channel (Alipay) is a new folder + a registry entry.
 *
 * All amounts are integer fen. Every method throws `ChannelError` (src/lib/errors.ts) on failure,
 * with `retryable` set from the channel's error code / HTTP status / network condition.
 */

/**
 * Told of every call a channel makes to its provider (metrics): `endpoint` is a path template
 * (never an id), `result` is 'ok' or the ChannelError code, `seconds` the wall time of the call.
 */
export type ChannelCallObserver = (endpoint: string, result: string, seconds: number) => void;

export type TradeType = 'JSAPI' | 'H5' | 'NATIVE';

export interface CreateOrderInput {
  tradeType: TradeType;
  outTradeNo: string; // 6–32 chars [0-9A-Za-z_\-|*]
  description: string; // ≤127 bytes of UTF-8
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
  /**
   * Discounts the merchant funded (promotion_detail[].merchant_contribute; or total − payer_total when
   * the channel gave no breakdown): they do not reach the merchant, so they cannot be split.
   */
  merchantFundedFen?: number;
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
  name?: string; // plain text: the channel adapter encrypts it on the wire (a fresh ciphertext each call)
  /** Or the ciphertext sealed once by `sealSensitive` (with `sensitiveKeyId`), re-sent unchanged. */
  nameCiphertext?: string;
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

// ---- refunds and profit-sharing returns --------------------------------------------------------

export type ChannelRefundStatus = 'PROCESSING' | 'SUCCESS' | 'CLOSED' | 'ABNORMAL';

export interface ChannelRefund {
  outRefundNo: string;
  refundId: string;
  transactionId?: string;
  outTradeNo?: string;
  status: ChannelRefundStatus;
  refundFen?: number;
  totalFen?: number;
  successTime?: Date;
  userReceivedAccount?: string;
}

/** A verified, decrypted refund notify (REFUND.SUCCESS | REFUND.ABNORMAL | REFUND.CLOSED). */
export interface RefundNotifyEvent {
  eventId: string;
  eventType: string;
  /** mchid, or sp_mchid of a partner refund. */
  mchid?: string;
  /** Partner refunds: the sub-merchant (checked against the account's). */
  subMchid?: string;
  refund: ChannelRefund;
}

export type ReturnOrderResult = 'PROCESSING' | 'SUCCESS' | 'FAILED';

export interface ChannelReturnOrder {
  outOrderNo: string;
  outReturnNo: string;
  returnId?: string;
  returnMchid: string;
  amountFen: number;
  result: ReturnOrderResult;
  failReason?: string;
}

export interface PaymentChannel extends BillChannel {
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
  /**
   * Idempotent. Throws ChannelError code ORDER_PAID when the order was paid meanwhile (WeChat's v3
   * ORDER_PAID and the v2 name ORDERPAID both map to it), and a retryable USER_PAYING when the
   * channel answered 202 (the shopper is paying: not closed yet).
   */
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
    /** The key id (Wechatpay-Serial) the receivers' nameCiphertext were sealed with. */
    sensitiveKeyId?: string;
  }): Promise<SplitOrderResult>;
  /**
   * Encrypts sensitive values (receiver names) with one channel key: store the result and send it
   * unchanged with every re-send of the same request (RSA-OAEP output differs on every call).
   */
  sealSensitive(values: string[]): { keyId: string; ciphertexts: string[] };
  /** null when the channel does not know this out_order_no. */
  querySplitOrder(transactionId: string, outOrderNo: string): Promise<SplitOrderResult | null>;
  unfreeze(input: { transactionId: string; outOrderNo: string; description: string }): Promise<SplitOrderResult>;
  unsplitAmount(transactionId: string): Promise<{ unsplitAmountFen: number }>;
  /**
   * Partner accounts only: the profit-sharing ratio the sub-merchant authorised to its service provider,
   * in basis points of 10000 (GET /v3/profitsharing/merchant-configs/{sub_mchid}). Absent on direct accounts.
   */
  queryMaxRatio?(): Promise<{ maxRatioBp: number }>;

  // refunds
  /** Idempotent on outRefundNo: the same number re-sent is the same refund. */
  createRefund(input: { transactionId: string; outRefundNo: string; reason?: string; refundFen: number; totalFen: number; notifyUrl: string }): Promise<ChannelRefund>;
  /** null when the channel does not know this out_refund_no. */
  queryRefund(outRefundNo: string): Promise<ChannelRefund | null>;
  /** Verifies and decrypts a refund notify; same refusals as parsePaymentNotify. */
  parseRefundNotify(headers: Record<string, string | string[] | undefined>, rawBody: Buffer): RefundNotifyEvent;
  /** Profit-sharing return (回退), synchronous at WeChat; idempotent on outReturnNo. */
  createReturnOrder(input: { outOrderNo: string; outReturnNo: string; returnMchid: string; amountFen: number; description: string }): Promise<ChannelReturnOrder>;
  queryReturnOrder(outOrderNo: string, outReturnNo: string): Promise<ChannelReturnOrder | null>;
}

// ---- bills (对账单) -------------------------------------------------------------------------------

/** trade = 交易账单 (payments and refunds), profitsharing = 分账账单 (splits and returns). */
export type BillKind = 'trade' | 'profitsharing';

/**
 * Bill access, part of every channel (kept in its own interface so the reconciliation module depends
 * on this much only). Days are Beijing days, `YYYY-MM-DD`.
 */
export interface BillChannel {
  /**
   * The day's bill of this account (a partner account: its sub-merchant's), downloaded, decompressed and
   * checked against the channel's hash. null when the channel says there is no bill that day (no trade).
   * Throws ChannelError BILL_NOT_READY (retryable: not published yet), BILL_HASH_MISMATCH (retryable:
   * never parse such a file; fetch it again later), or the mapped channel error.
   */
  fetchBill(kind: BillKind, billDate: string): Promise<Buffer | null>;
}

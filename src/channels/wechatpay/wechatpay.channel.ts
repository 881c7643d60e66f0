import type { KeyObject } from 'node:crypto';
import type pino from 'pino';
import { ConfigError, type Config } from '../../config/config';
import { ChannelError } from '../../lib/errors';
import type {
  ChannelCallObserver,
  ChannelRefund,
  ChannelReturnOrder,
  ChannelTransaction,
  CreateOrderInput,
  CreateOrderResult,
  JsapiParams,
  PaymentChannel,
  PaymentNotifyEvent,
  ReceiverType,
  SplitOrderResult,
  SplitReceiverInput,
} from '../channel';
import { WechatPayClient, type GatewayPay } from './wechatpay.client';
import { fetchBill } from './wechatpay.bills';
import {
  PlatformKeyRing,
  jsapiPaySignMessage,
  loadApiV3Key,
  loadMerchantPrivateKey,
  newNonce,
  signSha256Rsa,
} from './wechatpay.crypto';
import { utf8Bytes } from '../../lib/utf8';
import { badResponse, invalidInput, isNotFound } from './wechatpay.errors';
import type { z } from 'zod';
import { parsePaymentNotify, parseRefundNotify, type NotifyDeps } from './wechatpay.notify';
import { partnerToChannelTransaction, partnerTransactionSchema, payingAppid, toWirePartnerOrderRequest, type PartnerIds } from './wechatpay.partner';
import { buildOauthAuthorizeUrl, exchangeOauthCode } from './wechatpay.oauth';
import { toChannelRefund, toChannelReturnOrder, toChannelTransaction, toSplitOrderResult, toWireOrderRequest } from './wechatpay.transform';
import {
  h5PrepaySchema,
  jsapiPrepaySchema,
  merchantRatioSchema,
  nativePrepaySchema,
  refundSchema,
  returnOrderSchema,
  splitOrderSchema,
  transactionSchema,
  unsplitAmountSchema,
  type WireReceiverAddRequest,
  type WireRefundRequest,
  type WireSplitOrderRequest,
} from './wechatpay.wire';

export interface WechatPayConfig {
  /** WeChat Pay API, e.g. https://api.mch.weixin.qq.com (or the simulator). */
  baseUrl: string;
  /** https://open.weixin.qq.com — browser-facing OAuth authorize page. */
  oauthBaseUrl: string;
  /** https://api.weixin.qq.com — server-side OAuth code exchange. */
  apiBaseUrl: string;
  mchid: string;
  appid: string;
  appSecret: string;
  merchantPrivateKeyPem: string;
  merchantCertSerial: string;
  apiv3Key: string;
  /** Wechatpay-Serial (certificate serial or PUB_KEY_ID_...) → PEM public key or PEM certificate. */
  platformKeys: Record<string, string>;
  timeoutMs: number;
  /**
   * Service-provider (partner) mode: mchid/appid/keys above are the service provider's (sp_mchid,
   * sp_appid: every key is the SP's); this names the sub-merchant the payments belong to.
   */
  partner?: { subMchid: string; subAppid?: string; subAppSecret?: string };
  /** ms since epoch; injectable for tests. */
  clock?: () => number;
  /** Metrics of every call to the API (wechatpay.client.ts). */
  onCall?: ChannelCallObserver;
}

export type ReadFile = (path: string) => string | Buffer;

/** Maps the app config (WECHATPAY_* variables; key settings are file paths) to a channel config. */
export function wechatPayConfigFromAppConfig(config: Config, readFile: ReadFile): WechatPayConfig {
  const text = (p: string, variable: string) => {
    let v: string | Buffer;
    try {
      v = readFile(p);
    } catch (err) {
      throw new ConfigError([`${variable}: cannot read ${p} (${(err as Error).message})`]);
    }
    return typeof v === 'string' ? v : v.toString('utf8');
  };
  return {
    baseUrl: config.WECHATPAY_BASE_URL,
    oauthBaseUrl: config.WECHAT_OAUTH_BASE_URL,
    apiBaseUrl: config.WECHAT_API_BASE_URL,
    mchid: config.WECHATPAY_MCHID,
    appid: config.WECHATPAY_APPID,
    appSecret: config.WECHAT_APP_SECRET,
    merchantPrivateKeyPem: text(config.WECHATPAY_MERCHANT_PRIVATE_KEY_PATH, 'WECHATPAY_MERCHANT_PRIVATE_KEY_PATH'),
    merchantCertSerial: config.WECHATPAY_MERCHANT_CERT_SERIAL,
    apiv3Key: config.WECHATPAY_APIV3_KEY,
    platformKeys: Object.fromEntries(Object.entries(config.WECHATPAY_PLATFORM_KEYS).map(([id, path]) => [id, text(path, `WECHATPAY_PLATFORM_KEYS (${id})`)])),
    timeoutMs: config.WECHATPAY_HTTP_TIMEOUT_MS,
  };
}

const TRANSACTION_ID = /^[0-9A-Za-z_-]{1,64}$/;
const OUT_ORDER_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;
const OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;
const OUT_REFUND_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;
const MAX_RECEIVERS = 50; // per split request (PITFALLS §0)

function checkId(value: string, pattern: RegExp, name: string): void {
  // These go into URL paths built by the SDK without encoding: refuse anything that could change the path.
  if (!pattern.test(value)) throw invalidInput(`${name} has an invalid format`);
}

/** The parsed key material of one WeChat Pay merchant (shared by the channels that sign as it). */
export interface WechatPayKeys {
  merchantKey: KeyObject;
  platformKeys: PlatformKeyRing;
  apiV3Key: KeyObject;
}

/** Parses the PEMs and the APIv3 key once; throws a plain Error naming what is wrong. */
export function loadWechatPayKeys(cfg: Pick<WechatPayConfig, 'merchantPrivateKeyPem' | 'platformKeys' | 'apiv3Key'>): WechatPayKeys {
  return {
    merchantKey: loadMerchantPrivateKey(cfg.merchantPrivateKeyPem),
    platformKeys: new PlatformKeyRing(cfg.platformKeys),
    apiV3Key: loadApiV3Key(cfg.apiv3Key),
  };
}

/**
 * The WeChat Pay channel (direct merchant). Keys are parsed once here (or handed in already parsed,
 * `keys`, by the per-account cache); a bad key fails at boot.
 */
export function createWechatPayChannel(cfg: WechatPayConfig, logger?: pino.Logger, keys?: WechatPayKeys): PaymentChannel {
  const clock = cfg.clock ?? Date.now;
  const { merchantKey, platformKeys, apiV3Key } = keys ?? loadWechatPayKeys(cfg);
  const log = logger?.child({ channel: 'wechatpay' });

  const client = new WechatPayClient({
    baseUrl: cfg.baseUrl,
    appid: cfg.appid,
    mchid: cfg.mchid,
    merchantCertSerial: cfg.merchantCertSerial,
    merchantKey,
    platformKeys,
    timeoutMs: cfg.timeoutMs,
    clock,
    logger: log,
    onCall: cfg.onCall,
  });
  const ids = { appid: cfg.appid, mchid: cfg.mchid };
  // Partner mode: the same client (the SP signs everything), a different field mapper.
  const partner: PartnerIds | undefined = cfg.partner
    ? { spMchid: cfg.mchid, spAppid: cfg.appid, subMchid: cfg.partner.subMchid, ...(cfg.partner.subAppid && cfg.partner.subAppSecret ? { subAppid: cfg.partner.subAppid } : {}) }
    : undefined;
  const parsePartnerTx = (json: unknown) => {
    const p = partnerTransactionSchema.safeParse(json);
    return p.success ? partnerToChannelTransaction(p.data) : null;
  };
  const notifyDeps: NotifyDeps = { platformKeys, apiV3Key, clock, ...(partner ? { parseTransaction: parsePartnerTx } : {}) };
  const oauth = partner?.subAppid ? { appid: partner.subAppid, secret: cfg.partner!.subAppSecret! } : { appid: cfg.appid, secret: cfg.appSecret };
  const partnerQuery = partner ? `sp_mchid=${partner.spMchid}&sub_mchid=${partner.subMchid}` : '';
  // Profit sharing and refunds keep their direct-mode paths in partner mode, plus sub_mchid in the body
  // (or the query) of every call (FACTS-partner-bills §1.7–1.8); the SDK passes extra body fields through.
  const sub: { sub_mchid?: string } = partner ? { sub_mchid: partner.subMchid } : {};
  const subQuery = partner ? `sub_mchid=${partner.subMchid}&` : '';

  type SdkArg<K extends keyof GatewayPay> = GatewayPay[K] extends (arg: infer A, ...rest: never[]) => unknown ? A : never;

  async function createOrder(input: CreateOrderInput): Promise<CreateOrderResult> {
    if (partner) {
      const body = toWirePartnerOrderRequest(input, partner);
      const path = `/v3/pay/partner/transactions/${input.tradeType.toLowerCase()}`;
      const what = `POST ${path}`;
      if (input.tradeType === 'JSAPI') return { tradeType: 'JSAPI', prepayId: (await client.callPath(what, 'POST', path, body, jsapiPrepaySchema))!.prepay_id };
      if (input.tradeType === 'H5') return { tradeType: 'H5', h5Url: (await client.callPath(what, 'POST', path, body, h5PrepaySchema))!.h5_url };
      return { tradeType: 'NATIVE', codeUrl: (await client.callPath(what, 'POST', path, body, nativePrepaySchema))!.code_url };
    }
    const body = toWireOrderRequest(input, ids);
    // The SDK's Ijsapi/Ih5 types lack settle_info and over-require h5_info.app_name; our wire type is the truth.
    switch (input.tradeType) {
      case 'JSAPI': {
        const a = await client.call('POST /v3/pay/transactions/jsapi', (s) => s.transactions_jsapi(body as unknown as SdkArg<'transactions_jsapi'>), jsapiPrepaySchema);
        return { tradeType: 'JSAPI', prepayId: a.prepay_id };
      }
      case 'H5': {
        const a = await client.call('POST /v3/pay/transactions/h5', (s) => s.transactions_h5(body as unknown as SdkArg<'transactions_h5'>), h5PrepaySchema);
        return { tradeType: 'H5', h5Url: a.h5_url };
      }
      case 'NATIVE': {
        const a = await client.call('POST /v3/pay/transactions/native', (s) => s.transactions_native(body as unknown as SdkArg<'transactions_native'>), nativePrepaySchema);
        return { tradeType: 'NATIVE', codeUrl: a.code_url };
      }
      default:
        throw invalidInput(`unknown trade type ${String((input as { tradeType: unknown }).tradeType)}`);
    }
  }

  async function queryOrder(outTradeNo: string): Promise<ChannelTransaction | null> {
    checkId(outTradeNo, OUT_TRADE_NO, 'out_trade_no');
    try {
      if (partner) {
        const path = `/v3/pay/partner/transactions/out-trade-no/${outTradeNo}?${partnerQuery}`;
        return partnerToChannelTransaction((await client.callPath('GET /v3/pay/partner/transactions/out-trade-no', 'GET', path, undefined, partnerTransactionSchema))!);
      }
      const tx = await client.call('GET /v3/pay/transactions/out-trade-no', (s) => s.query({ out_trade_no: outTradeNo }), transactionSchema);
      return toChannelTransaction(tx);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async function closeOrder(outTradeNo: string): Promise<void> {
    checkId(outTradeNo, OUT_TRADE_NO, 'out_trade_no');
    let answer;
    try {
      if (partner)
        answer = await client.callPathNoBody('POST /v3/pay/partner/transactions/out-trade-no/close', 'POST', `/v3/pay/partner/transactions/out-trade-no/${outTradeNo}/close`, { sp_mchid: partner.spMchid, sub_mchid: partner.subMchid });
      else answer = await client.callNoBody('POST /v3/pay/transactions/out-trade-no/close', (s) => s.close(outTradeNo));
    } catch (err) {
      // Closing a closed order is a success (idempotent); a paid order (ORDER_PAID) is left to the caller.
      if (err instanceof ChannelError && (err.code === 'ORDER_CLOSED' || err.code === 'ORDERCLOSED')) return;
      // An order WeChat never created (our create call failed) cannot be paid: closed is the truth.
      if (isNotFound(err)) return;
      throw err;
    }
    // Only 204 is "closed". 202 USER_PAYING (wechatpay-go services/payments error tables: "用户支付中")
    // means the shopper is paying right now: not closed yet, ask again shortly.
    if (answer.status !== 204 && answer.status !== 200) {
      throw new ChannelError('USER_PAYING', `close answered HTTP ${answer.status}: the order is not closed yet`, {
        retryable: true,
        httpStatus: answer.status,
        detail: { httpStatus: answer.status, channelCode: (answer.json as { code?: unknown } | undefined)?.code, retryAfterMs: 5_000 },
      });
    }
  }

  function jsapiParams(prepayId: string): JsapiParams {
    if (!prepayId) throw invalidInput('empty prepay_id');
    const timeStamp = String(Math.floor(clock() / 1000));
    const nonceStr = newNonce();
    const pkg = `prepay_id=${prepayId}`;
    // Partner: invoked under the app whose openid ordered (sub_appid iff sub_openid), signed with the SP's key.
    const appId = partner ? payingAppid(partner) : cfg.appid;
    const paySign = signSha256Rsa(merchantKey, jsapiPaySignMessage(appId, timeStamp, nonceStr, pkg));
    return { appId, timeStamp, nonceStr, package: pkg, signType: 'RSA', paySign };
  }

  // Receiver names are encrypted with ONE platform key per request, and that key's id is sent as
  // Wechatpay-Serial even when no name is present (the SDK would default it to the merchant serial —
  // the most common split failure in peers' trackers, PITFALLS §3.5).
  async function addReceiver(input: { type: ReceiverType; account: string; name?: string; relationType: string; customRelation?: string }): Promise<void> {
    const key = client.encryptionKey();
    const body: WireReceiverAddRequest = { ...sub, appid: cfg.appid, type: input.type, account: input.account, relation_type: input.relationType };
    if (input.customRelation !== undefined) body.custom_relation = input.customRelation;
    if (input.name !== undefined) body.name = client.encryptSensitive(input.name, key);
    await client.callNoBody('POST /v3/profitsharing/receivers/add', (s) =>
      s.profitsharing_receivers_add({ ...body, wx_serial_no: key.id }),
    );
  }

  async function createSplitOrder(input: {
    transactionId: string;
    outOrderNo: string;
    receivers: SplitReceiverInput[];
    unfreezeUnsplit: boolean;
    sensitiveKeyId?: string;
  }): Promise<SplitOrderResult> {
    checkId(input.transactionId, TRANSACTION_ID, 'transaction_id');
    checkId(input.outOrderNo, OUT_ORDER_NO, 'out_order_no');
    if (input.receivers.length === 0 || input.receivers.length > MAX_RECEIVERS) {
      throw invalidInput(`a split request needs 1–${MAX_RECEIVERS} receivers`);
    }
    const sealed = input.sensitiveKeyId !== undefined;
    if (!sealed && input.receivers.some((r) => r.nameCiphertext !== undefined)) throw invalidInput('nameCiphertext needs the sensitiveKeyId it was sealed with');
    if (sealed && input.receivers.some((r) => r.name !== undefined)) throw invalidInput('a sealed request carries ciphertexts only');
    // A re-send of the same out_order_no must be the same request: sealed names (stored once, with
    // their key id) go out unchanged; only a caller that stores nothing gets fresh ciphertexts.
    const key = sealed ? undefined : client.encryptionKey();
    const receivers = input.receivers.map((r) => {
      if (!Number.isSafeInteger(r.amountFen) || r.amountFen < 1) throw invalidInput('receiver amountFen must be an integer ≥ 1');
      if (r.description.length === 0 || utf8Bytes(r.description) > 80) throw invalidInput('receiver description must be 1–80 bytes of UTF-8');
      const w: WireSplitOrderRequest['receivers'][number] = { type: r.type, account: r.account, amount: r.amountFen, description: r.description };
      if (r.nameCiphertext !== undefined) w.name = r.nameCiphertext;
      else if (r.name !== undefined) w.name = client.encryptSensitive(r.name, key!);
      return w;
    });
    const body: WireSplitOrderRequest = {
      ...sub,
      appid: cfg.appid,
      transaction_id: input.transactionId,
      out_order_no: input.outOrderNo,
      receivers,
      unfreeze_unsplit: input.unfreezeUnsplit,
    };
    const serial = input.sensitiveKeyId ?? key!.id;
    const a = await client.call('POST /v3/profitsharing/orders', (s) => s.create_profitsharing_orders({ ...body, wx_serial_no: serial }), splitOrderSchema);
    return toSplitOrderResult(a);
  }

  function sealSensitive(values: string[]): { keyId: string; ciphertexts: string[] } {
    const key = client.encryptionKey();
    return { keyId: key.id, ciphertexts: values.map((v) => client.encryptSensitive(v, key)) };
  }

  async function querySplitOrder(transactionId: string, outOrderNo: string): Promise<SplitOrderResult | null> {
    checkId(transactionId, TRANSACTION_ID, 'transaction_id');
    checkId(outOrderNo, OUT_ORDER_NO, 'out_order_no');
    try {
      const what = 'GET /v3/profitsharing/orders/{out_order_no}';
      const a = partner
        ? (await client.callPath(what, 'GET', `/v3/profitsharing/orders/${outOrderNo}?${subQuery}transaction_id=${transactionId}`, undefined, splitOrderSchema))!
        : await client.call(what, (s) => s.query_profitsharing_orders(transactionId, outOrderNo), splitOrderSchema);
      return toSplitOrderResult(a);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async function unfreeze(input: { transactionId: string; outOrderNo: string; description: string }): Promise<SplitOrderResult> {
    checkId(input.transactionId, TRANSACTION_ID, 'transaction_id');
    checkId(input.outOrderNo, OUT_ORDER_NO, 'out_order_no');
    const a = await client.call(
      'POST /v3/profitsharing/orders/unfreeze',
      (s) => s.profitsharing_orders_unfreeze({ ...sub, transaction_id: input.transactionId, out_order_no: input.outOrderNo, description: input.description }),
      splitOrderSchema,
    );
    return toSplitOrderResult(a);
  }

  async function unsplitAmount(transactionId: string): Promise<{ unsplitAmountFen: number }> {
    checkId(transactionId, TRANSACTION_ID, 'transaction_id');
    const a = await client.call('GET /v3/profitsharing/transactions/{id}/amounts', (s) => s.query_profitsharing_amounts(transactionId), unsplitAmountSchema);
    return { unsplitAmountFen: a.unsplit_amount };
  }

  // ---- refunds (https://pay.weixin.qq.com/doc/v3/merchant/4012791862) and returns (回退) ----------------

  function refundAnswer(what: string, a: z.infer<typeof refundSchema>): ChannelRefund {
    if (!a.status && !a.refund_status) throw badResponse(`${what}: answer has no status`, { httpStatus: 200 });
    return toChannelRefund(a);
  }

  async function createRefund(input: { transactionId: string; outRefundNo: string; reason?: string; refundFen: number; totalFen: number; notifyUrl: string }): Promise<ChannelRefund> {
    checkId(input.transactionId, TRANSACTION_ID, 'transaction_id');
    checkId(input.outRefundNo, OUT_REFUND_NO, 'out_refund_no');
    if (!Number.isSafeInteger(input.refundFen) || input.refundFen < 1 || input.refundFen > input.totalFen) throw invalidInput('refundFen must be an integer in 1..totalFen');
    const body: WireRefundRequest = {
      ...sub,
      transaction_id: input.transactionId,
      out_refund_no: input.outRefundNo,
      notify_url: input.notifyUrl,
      amount: { refund: input.refundFen, total: input.totalFen, currency: 'CNY' },
    };
    if (input.reason !== undefined) body.reason = input.reason;
    const a = await client.call('POST /v3/refund/domestic/refunds', (s) => s.refunds(body), refundSchema);
    return refundAnswer('POST /v3/refund/domestic/refunds', a);
  }

  async function queryRefund(outRefundNo: string): Promise<ChannelRefund | null> {
    checkId(outRefundNo, OUT_REFUND_NO, 'out_refund_no');
    try {
      const what = 'GET /v3/refund/domestic/refunds/{out_refund_no}';
      const a = partner
        ? (await client.callPath(what, 'GET', `/v3/refund/domestic/refunds/${outRefundNo}?sub_mchid=${partner.subMchid}`, undefined, refundSchema))!
        : await client.call(what, (s) => s.find_refunds(outRefundNo), refundSchema);
      return refundAnswer(what, a);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async function createReturnOrder(input: { outOrderNo: string; outReturnNo: string; returnMchid: string; amountFen: number; description: string }): Promise<ChannelReturnOrder> {
    checkId(input.outOrderNo, OUT_ORDER_NO, 'out_order_no');
    checkId(input.outReturnNo, OUT_ORDER_NO, 'out_return_no');
    if (!Number.isSafeInteger(input.amountFen) || input.amountFen < 1) throw invalidInput('amountFen must be an integer ≥ 1');
    const a = await client.call(
      'POST /v3/profitsharing/return-orders',
      (s) => s.profitsharing_return_orders({ ...sub, out_order_no: input.outOrderNo, out_return_no: input.outReturnNo, return_mchid: input.returnMchid, amount: input.amountFen, description: input.description }),
      returnOrderSchema,
    );
    return toChannelReturnOrder(a);
  }

  async function queryReturnOrder(outOrderNo: string, outReturnNo: string): Promise<ChannelReturnOrder | null> {
    checkId(outOrderNo, OUT_ORDER_NO, 'out_order_no');
    checkId(outReturnNo, OUT_ORDER_NO, 'out_return_no');
    try {
      const what = 'GET /v3/profitsharing/return-orders/{out_return_no}';
      const a = partner
        ? (await client.callPath(what, 'GET', `/v3/profitsharing/return-orders/${outReturnNo}?${subQuery}out_order_no=${outOrderNo}`, undefined, returnOrderSchema))!
        : await client.call(what, (s) => s.query_profitsharing_return_orders(outReturnNo, outOrderNo), returnOrderSchema);
      return toChannelReturnOrder(a);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** Partner only (FACTS-partner-bills §1.8): what the sub-merchant authorised to its service provider. */
  async function queryMaxRatio(): Promise<{ maxRatioBp: number }> {
    const a = (await client.callPath('GET /v3/profitsharing/merchant-configs/{sub_mchid}', 'GET', `/v3/profitsharing/merchant-configs/${partner!.subMchid}`, undefined, merchantRatioSchema))!;
    if (a.sub_mchid !== partner!.subMchid) throw badResponse(`merchant-configs answered for sub_mchid ${a.sub_mchid}, not ${partner!.subMchid}`, { httpStatus: 200 });
    return { maxRatioBp: a.max_ratio };
  }

  return {
    name: 'wechatpay',
    appid: cfg.appid,
    mchid: cfg.mchid,
    ...(partner ? { partner: { subMchid: partner.subMchid, ...(partner.subAppid ? { subAppid: partner.subAppid } : {}) }, oauthAppid: oauth.appid, queryMaxRatio } : {}),
    createOrder,
    queryOrder,
    closeOrder,
    jsapiParams,
    oauthAuthorizeUrl: (redirectUri, state) => buildOauthAuthorizeUrl(cfg.oauthBaseUrl, oauth.appid, redirectUri, state),
    oauthExchangeCode: (code) =>
      exchangeOauthCode({ apiBaseUrl: cfg.apiBaseUrl, appid: oauth.appid, appSecret: oauth.secret, code, timeoutMs: cfg.timeoutMs }),
    parsePaymentNotify: (headers, rawBody): PaymentNotifyEvent => parsePaymentNotify(notifyDeps, headers, rawBody),
    addReceiver,
    createSplitOrder,
    sealSensitive,
    querySplitOrder,
    unfreeze,
    unsplitAmount,
    createRefund,
    queryRefund,
    parseRefundNotify: (headers, rawBody) => parseRefundNotify(notifyDeps, headers, rawBody),
    createReturnOrder,
    queryReturnOrder,
    // A partner account's bills are its sub-merchant's (sub_mchid), not the whole service provider's.
    fetchBill: (kind, billDate) => fetchBill(client, kind, billDate, partner?.subMchid),
  };
}

/**
 * Shared state and helpers of the WeChat Pay simulator (a stand-in for api.mch.weixin.qq.com and
 * open.weixin.qq.com). The simulator is a separate application: it must NOT import anything from
 * src/channels/ (two independent implementations of the protocol catch each other's mistakes).
 *
 * Split of work inside src/simulator/:
 *   app.ts, main.ts, keys.ts, auth.ts, faults.ts, payments/*, oauth/*, notify/*, control/*  (core)
 *   profitsharing/*                                                                           (分账)
 * The core app mounts `createProfitSharingRouter(ctx)` from ./profitsharing/router.ts under /v3/profitsharing
 * after its signature-verification and fault middleware, so profit-sharing handlers see an
 * authenticated request whose JSON body is already parsed (req.body) and raw text is req.rawBody.
 */
import type { KeyObject } from 'node:crypto';
import type { Request, Response } from 'express';

/** A /v3 request after the core's auth middleware: raw text kept for handlers that need it. */
export type SimAuthedRequest = Request & { rawBody: string };

export interface SimKeys {
  /** Verifies the gateway's Authorization signatures. */
  merchantPublicKey: KeyObject;
  /** Signs every answer and every notify (WeChat Pay public-key mode). */
  platformPrivateKey: KeyObject;
  platformPublicKey: KeyObject;
  /** `PUB_KEY_ID_...`, sent as Wechatpay-Serial and expected on encrypted requests. */
  platformPublicKeyId: string;
  /** 32-character APIv3 key: AEAD_AES_256_GCM key for notifies. */
  apiv3Key: string;
  /**
   * Optional second signing identity: a platform certificate (hex serial + own key pair). Merchants migrate
   * between certificate mode and public-key mode, so the simulator can sign with either (control.setSigningMode).
   */
  platformCertificate?: { serial: string; privateKey: KeyObject; publicKey: KeyObject; certificatePem: string };
}

export interface SimOptions {
  mchid: string;
  appid: string;
  /** Official-account AppSecret for /sns/oauth2/access_token. */
  appSecret: string;
  /** Serial of the merchant API certificate expected in Authorization serial_no. */
  merchantCertSerial: string;
  /** Delays between notify attempts; WeChat: 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h. */
  notifyRetryScheduleMs: number[];
  /** Allowed |now - timestamp| in Authorization, seconds (WeChat: 5 min). */
  maxClockSkewSeconds: number;
  /** Domains the merchant registered for H5 payment; the Referer of an h5_url visit must match one. */
  h5Domains: string[];
  /** PROCESSING -> the planned result (and its REFUND.* notify) after this. */
  refundResultDelayMs?: number;
  /**
   * Service-provider mode: this simulator's merchant (mchid/appid/keys) is then also a service provider
   * (服务商) and these are its sub-merchants (特约商户), bound to it, with their bound sub_appids and the
   * profit-sharing ratio each authorised (basis points of 10000). Undefined = no partner endpoints.
   */
  partner?: { subMerchants: Record<string, { subAppids?: string[]; maxRatioBp?: number }> };
  profitSharing: {
    receiverLimit: number; // 50 receivers per request
    maxRatio: number; // 0.3 cumulative
    maxRequestsPerOrder: number; // 50
    minDelayAfterPayMs: number; // 60_000 ("订单处理中，请稍后重试" before)
    resultDelayMs: number; // PENDING -> SUCCESS/CLOSED after this
    /** Split requests per second per merchant before FREQUENCY_LIMITED; 0 = unlimited. */
    ratePerSecond: number;
    /** Partner mode: split requests per second per service provider (WeChat: 300) and per sub_mchid (30); 0 = unlimited. */
    spRatePerSecond: number;
    subRatePerSecond: number;
    /**
     * Split requests per second for the same transaction before 429 RATELIMIT_EXCEED "对同笔订单分账频率过高"
     * (WeChat: "1秒1次", FACTS-partner-bills §1.10); 0 = unlimited.
     */
    perOrderRatePerSecond: number;
    /** The payment fee WeChat keeps (手续费), as a rate of the settled amount: not splittable. */
    feeRate: number;
    windowDays: number; // 30
  };
}

export type SimTradeType = 'JSAPI' | 'H5' | 'NATIVE';
export type SimTradeState = 'NOTPAY' | 'SUCCESS' | 'CLOSED' | 'REFUND';

export interface SimTransaction {
  outTradeNo: string;
  transactionId?: string; // assigned on payment
  tradeType: SimTradeType;
  appid: string;
  mchid: string;
  description: string;
  attach?: string;
  notifyUrl: string;
  timeExpire?: string;
  amountTotal: number; // fen
  payerTotal?: number;
  currency: 'CNY';
  payerOpenid?: string;
  payerClientIp?: string;
  profitSharing: boolean;
  state: SimTradeState;
  /** When the order stops being payable: time_expire, raised to the channel's minimum when too early. */
  expireAtMs?: number;
  successTime?: string; // RFC 3339 +08:00
  paidAtMs?: number;
  /** Ordered through /v3/pay/partner/*: appid/mchid above are sp_appid/sp_mchid. */
  partner?: { subMchid: string; subAppid?: string; subOpenid?: string };
  /** The original request body (canonical JSON) for "same out_trade_no, same params" checks. */
  requestFingerprint: string;
  createdAtMs: number;
}

export interface SimContext {
  opts: SimOptions;
  keys: SimKeys;
  now(): number;
  transactions: {
    byOutTradeNo: Map<string, SimTransaction>;
    byTransactionId: Map<string, SimTransaction>;
  };
  /** Sends a signed answer (Wechatpay-Timestamp/Nonce/Signature/Serial/Signature-Type, Request-ID). */
  reply(res: Response, status: number, body?: unknown): void;
  /** Sends a signed WeChat error body {code, message, detail?}. */
  fail(res: Response, status: number, code: string, message: string, detail?: unknown): void;
  /** Every API call the simulator received, newest last (tests assert on it). */
  calls: Array<{ method: string; path: string; body: unknown; status: number; at: number; headers: Record<string, string> }>;
  /**
   * Private key for a `Wechatpay-Serial` the merchant used to RSA-OAEP-encrypt a sensitive field: the
   * PUB_KEY_ID_... of the public key, or the platform certificate serial. Undefined for unknown serials.
   */
  platformKeyFor?(serial: string): KeyObject | undefined;
  /**
   * Sends a signed, AEAD_AES_256_GCM-encrypted notify (same retries and log as payment notifies), e.g.
   * PROFITSHARING.SUCCESS to a receiver's URL. Returns the notify id.
   */
  sendNotify?(args: { url: string; eventType: string; summary: string; originalType: string; resource: object; ref?: string }): string;
}

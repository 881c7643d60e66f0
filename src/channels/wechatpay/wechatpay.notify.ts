import type { KeyObject } from 'node:crypto';
import { ChannelError } from '../../lib/errors';
import type { ChannelTransaction, PaymentNotifyEvent, RefundNotifyEvent } from '../channel';
import {
  DecryptError,
  PlatformKeyRing,
  SignatureVerificationError,
  decryptAeadAes256Gcm,
  readSignatureHeaders,
  verifyWechatpaySignature,
} from './wechatpay.crypto';
import { toChannelRefund, toChannelTransaction } from './wechatpay.transform';
import { notifyEnvelopeSchema, refundSchema, transactionSchema, type WireNotifyEnvelope } from './wechatpay.wire';

/**
 * Payment notify ingestion in named steps (FACTS §3–§4): verify the signature over the raw bytes
 * → parse the envelope → decrypt (GCM tag checked) → validate the transaction. Every refusal is a
 * ChannelError with retryable:false; the route answers 4xx/5xx so WeChat re-sends (SIGNTEST probes
 * must be refused this way).
 */

export interface NotifyDeps {
  platformKeys: PlatformKeyRing;
  apiV3Key: KeyObject;
  clock: () => number;
  /** Partner accounts decode the sp_/sub_ transaction shape (wechatpay.partner.ts); default: direct. */
  parseTransaction?: (json: unknown) => ChannelTransaction | null;
}

type HeaderBag = Record<string, string | string[] | undefined>;

function refuse(code: string, message: string, cause?: unknown): ChannelError {
  return new ChannelError(code, message, { retryable: false, cause });
}

function lowerCaseHeaders(headers: HeaderBag): HeaderBag {
  const out: HeaderBag = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

/** Step 1: nothing else is read before this passes. */
export function verifyNotifySource(deps: NotifyDeps, headers: HeaderBag, rawBody: Buffer): void {
  const bag = lowerCaseHeaders(headers);
  const sig = readSignatureHeaders((n) => bag[n]);
  try {
    verifyWechatpaySignature(deps.platformKeys, sig, rawBody, deps.clock());
  } catch (err) {
    if (!(err instanceof SignatureVerificationError)) throw err;
    const code = err.reason === 'MISSING_HEADERS' ? 'BAD_SIGNATURE' : err.reason;
    throw refuse(code, err.message, err);
  }
}

/** Steps 1–3 shared by every notify kind: verify, parse the envelope, decrypt to JSON. */
function openNotify(deps: NotifyDeps, headers: HeaderBag, rawBody: Buffer, originalType: string): { envelope: WireNotifyEnvelope; json: unknown } {
  if (!Buffer.isBuffer(rawBody)) throw refuse('BAD_NOTIFY', 'the notify body must be the raw bytes (Buffer)');
  verifyNotifySource(deps, headers, rawBody);

  let envelopeJson: unknown;
  try {
    envelopeJson = JSON.parse(rawBody.toString('utf8'));
  } catch (err) {
    throw refuse('BAD_NOTIFY', 'notify body is not JSON', err);
  }
  const envelope = notifyEnvelopeSchema.safeParse(envelopeJson);
  if (!envelope.success) throw refuse('BAD_NOTIFY', 'notify envelope has an unexpected shape', envelope.error);
  const { resource } = envelope.data;
  if (resource.original_type !== undefined && resource.original_type !== originalType) {
    throw refuse('BAD_NOTIFY', `not a ${originalType} notify (original_type ${resource.original_type})`);
  }

  let plain: Buffer;
  try {
    plain = decryptAeadAes256Gcm(deps.apiV3Key, resource.ciphertext, resource.nonce, resource.associated_data ?? '');
  } catch (err) {
    if (err instanceof DecryptError) throw refuse('DECRYPT_FAILED', err.message, err);
    throw err;
  }

  try {
    return { envelope: envelope.data, json: JSON.parse(plain.toString('utf8')) };
  } catch (err) {
    throw refuse('BAD_NOTIFY', 'decrypted resource is not JSON', err);
  }
}

export function parsePaymentNotify(deps: NotifyDeps, headers: HeaderBag, rawBody: Buffer): PaymentNotifyEvent {
  const { envelope, json } = openNotify(deps, headers, rawBody, 'transaction');
  let transaction: ChannelTransaction | null;
  if (deps.parseTransaction) transaction = deps.parseTransaction(json);
  else {
    const tx = transactionSchema.safeParse(json);
    transaction = tx.success ? toChannelTransaction(tx.data) : null;
  }
  if (!transaction) throw refuse('BAD_NOTIFY', 'decrypted transaction has an unexpected shape');

  const event: PaymentNotifyEvent = {
    eventId: envelope.id,
    eventType: envelope.event_type,
    transaction,
  };
  if (envelope.create_time !== undefined) event.createTime = envelope.create_time;
  return event;
}

/** Refund notify (退款结果通知, original_type "refund"): https://pay.weixin.qq.com/doc/v3/merchant/4012791865 */
export function parseRefundNotify(deps: NotifyDeps, headers: HeaderBag, rawBody: Buffer): RefundNotifyEvent {
  const { envelope, json } = openNotify(deps, headers, rawBody, 'refund');
  const r = refundSchema.safeParse(json);
  if (!r.success || !(r.data.refund_status ?? r.data.status)) throw refuse('BAD_NOTIFY', 'decrypted refund has an unexpected shape', r.error);
  const mchid = r.data.mchid ?? r.data.sp_mchid;
  return { eventId: envelope.id, eventType: envelope.event_type, mchid, ...(r.data.sub_mchid !== undefined ? { subMchid: r.data.sub_mchid } : {}), refund: toChannelRefund(r.data) };
}

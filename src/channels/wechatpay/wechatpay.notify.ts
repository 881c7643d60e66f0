import type { KeyObject } from 'node:crypto';
import { ChannelError } from '../../lib/errors';
import type { ChannelTransaction, PaymentNotifyEvent } from '../channel';
import {
  DecryptError,
  PlatformKeyRing,
  SignatureVerificationError,
  decryptAeadAes256Gcm,
  readSignatureHeaders,
  verifyWechatpaySignature,
} from './wechatpay.crypto';
import { toChannelTransaction } from './wechatpay.transform';
import { notifyEnvelopeSchema, transactionSchema } from './wechatpay.wire';

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

export function parsePaymentNotify(deps: NotifyDeps, headers: HeaderBag, rawBody: Buffer): PaymentNotifyEvent {
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
  if (resource.original_type !== undefined && resource.original_type !== 'transaction') {
    throw refuse('BAD_NOTIFY', `not a payment notify (original_type ${resource.original_type})`);
  }

  let plain: Buffer;
  try {
    plain = decryptAeadAes256Gcm(deps.apiV3Key, resource.ciphertext, resource.nonce, resource.associated_data ?? '');
  } catch (err) {
    if (err instanceof DecryptError) throw refuse('DECRYPT_FAILED', err.message, err);
    throw err;
  }

  let txJson: unknown;
  try {
    txJson = JSON.parse(plain.toString('utf8'));
  } catch (err) {
    throw refuse('BAD_NOTIFY', 'decrypted resource is not JSON', err);
  }
  let transaction: ChannelTransaction | null;
  if (deps.parseTransaction) transaction = deps.parseTransaction(txJson);
  else {
    const tx = transactionSchema.safeParse(txJson);
    transaction = tx.success ? toChannelTransaction(tx.data) : null;
  }
  if (!transaction) throw refuse('BAD_NOTIFY', 'decrypted transaction has an unexpected shape');

  const event: PaymentNotifyEvent = {
    eventId: envelope.data.id,
    eventType: envelope.data.event_type,
    transaction,
  };
  if (envelope.data.create_time !== undefined) event.createTime = envelope.data.create_time;
  return event;
}

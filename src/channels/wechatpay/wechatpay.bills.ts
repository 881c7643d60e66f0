/**
 * Bills (对账单) over APIv3 (FACTS-partner-bills §2.1–2.5):
 *   1. GET /v3/bill/tradebill or /v3/profitsharing/bills (signed answer) → {hash_type, hash_value, download_url}
 *   2. GET download_url, signed by the same merchant; the answer is the raw file, unsigned
 *   3. gunzip when asked for GZIP; SHA1 of the uncompressed bytes must equal hash_value (case-insensitive)
 * https://pay.weixin.qq.com/doc/v3/merchant/4012556654, …/docs/partner/apis/bill-download/download-bill.html
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { z } from 'zod';
import { ChannelError } from '../../lib/errors';
import type { BillKind } from '../channel';
import type { WechatPayClient } from './wechatpay.client';

export const billAnswerSchema = z.object({
  hash_type: z.literal('SHA1'),
  hash_value: z.string().regex(/^[0-9A-Fa-f]{40}$/),
  download_url: z.string().url(),
});

const DOWNLOAD_PATH = '/v3/billdownload/file';
/** A day's bill of a very large merchant stays far below this; more is refused rather than exhausting memory. */
const MAX_BILL_BYTES = 512 * 1024 * 1024;

/** Retry later: the bill is still being made (STATEMENT_CREATING, or the profit-sharing "正在生成中"). */
function notReady(err: ChannelError): boolean {
  const d = err.opts.detail as { channelCode?: string; channelMessage?: string } | undefined;
  return d?.channelCode === 'STATEMENT_CREATING' || /正在生成中|生成中/.test(d?.channelMessage ?? '');
}

function billPath(kind: BillKind, billDate: string, subMchid: string | undefined): string {
  const q = new URLSearchParams({ bill_date: billDate });
  if (kind === 'trade') q.set('bill_type', 'ALL');
  if (subMchid) q.set('sub_mchid', subMchid);
  // GZIP: bills can be large; the hash is over the uncompressed bytes either way.
  q.set('tar_type', 'GZIP');
  return `${kind === 'trade' ? '/v3/bill/tradebill' : '/v3/profitsharing/bills'}?${q}`;
}

export async function fetchBill(client: WechatPayClient, kind: BillKind, billDate: string, subMchid?: string): Promise<Buffer | null> {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(billDate)) throw new ChannelError('INVALID_INPUT', `bill date ${billDate} is not YYYY-MM-DD`, { retryable: false });
  const what = kind === 'trade' ? 'GET /v3/bill/tradebill' : 'GET /v3/profitsharing/bills';
  let answer: z.output<typeof billAnswerSchema>;
  try {
    answer = (await client.callPath(what, 'GET', billPath(kind, billDate, subMchid), undefined, billAnswerSchema))!;
  } catch (err) {
    if (!(err instanceof ChannelError)) throw err;
    // No trade (or no split) that day: an empty day, not an error (FAQ 4013071254: stop retrying).
    if (err.code === 'NO_STATEMENT_EXIST') return null;
    if (notReady(err)) throw new ChannelError('BILL_NOT_READY', `${what}: ${err.message}`, { retryable: true, httpStatus: err.opts.httpStatus, detail: err.opts.detail, cause: err });
    throw err;
  }
  const url = new URL(answer.download_url);
  // The signed request goes only to the configured WeChat host, whatever host the URL names.
  if (url.pathname !== DOWNLOAD_PATH) throw new ChannelError('BAD_RESPONSE', `${what}: unexpected download_url path ${url.pathname}`, { retryable: true });
  const raw = await client.download(url.pathname + url.search);
  let bytes: Buffer;
  try {
    // gzip magic (1f 8b): what we asked for; a plain stream is accepted too (a proxy may have decoded it).
    bytes = raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw, { maxOutputLength: MAX_BILL_BYTES }) : raw;
  } catch (err) {
    throw new ChannelError('BILL_HASH_MISMATCH', `${what}: the downloaded file is not valid gzip`, { retryable: true, cause: err });
  }
  const actual = createHash('sha1').update(bytes).digest('hex');
  if (actual !== answer.hash_value.toLowerCase())
    throw new ChannelError('BILL_HASH_MISMATCH', `${what}: SHA1 ${actual} of the file is not the channel's ${answer.hash_value}`, { retryable: true, detail: { expected: answer.hash_value, actual } });
  return bytes;
}

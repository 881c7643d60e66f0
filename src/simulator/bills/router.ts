/**
 * Bills (对账单) of the WeChat Pay stand-in (FACTS-partner-bills §2.1–2.5, Part 3 rules 11–14):
 *   GET /v3/bill/tradebill?bill_date=&bill_type=&tar_type=[&sub_mchid=]
 *   GET /v3/profitsharing/bills?bill_date=[&sub_mchid=][&tar_type=]
 *     → {hash_type: "SHA1", hash_value, download_url}
 *   GET /v3/billdownload/file?token=…[&tartype=gzip] → the raw (optionally gzip) bytes, unsigned.
 * Mounted behind the core's Authorization check and fault middleware. Bills are built from the
 * simulator's records when requested; the token keeps exactly the bytes that were hashed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import express from 'express';
import type { SimRuntime } from '../runtime';
import { beijingDay, buildProfitSharingBill, buildTradeBill } from './build';
import type { TradeBillType } from './format';
import { getBillStore, takeFaults, type BillKind } from './store';

export interface BillOptions {
  /**
   * The sandbox publishes a day's bills at once (today's included, as they stand). Off (default) =
   * WeChat's rule: day D's bills from D+1 10:00 Beijing time (FACTS-partner-bills §2.1, §2.3).
   */
  publishImmediately?: boolean;
  /** download_url lifetime: "30s内有效" on the profit-sharing page; 5 min elsewhere (UNCONFIRMED). CHOSEN 30 s. */
  urlTtlMs?: number;
}

const DAY_MS = 86_400_000;
const PUBLISH_HOUR_BEIJING = 10;

type Refusal = { status: number; code: string; message: string };

/** The rules every bill request shares: date format, not too old, not in the future, published yet. */
function checkBillDate(rt: SimRuntime, o: BillOptions, raw: unknown, bill: BillKind): Refusal | { day: string } {
  const day = typeof raw === 'string' ? raw : '';
  const parsed = /^\d{4}-\d{2}-\d{2}$/.test(day) ? Date.parse(`${day}T00:00:00Z`) : NaN;
  if (Number.isNaN(parsed) || new Date(parsed).toISOString().slice(0, 10) !== day)
    return { status: 400, code: 'PARAM_ERROR', message: '日期格式不正确' };
  const today = beijingDay(rt.now());
  // INFERRED: a future date is refused like an invalid request (no stored source gives its wording).
  if (day > today) return { status: 400, code: 'INVALID_REQUEST', message: '请求的账单日期无效' };
  // The API serves 3 months only (FACTS-partner-bills §2.1); the trade bill's wording is inferred from the profit-sharing one.
  const oldest = new Date(`${today}T00:00:00Z`);
  oldest.setUTCMonth(oldest.getUTCMonth() - 3);
  if (day < oldest.toISOString().slice(0, 10)) return { status: 400, code: 'INVALID_REQUEST', message: '请求的账单日期已过期' };
  const publishedAt = parsed + DAY_MS + (PUBLISH_HOUR_BEIJING - 8) * 3600_000;
  const ready = o.publishImmediately || rt.now() >= publishedAt;
  if (!ready || takeFaults(getBillStore(rt), bill, 'not_ready').length > 0)
    // Trade bill: STATEMENT_CREATING "账单生成中" (FAQ 4013071254, status UNCONFIRMED: 400 CHOSEN as for the
    // other bill refusals); profit-sharing bill: 400 INVALID_REQUEST "请求的账单正在生成中" (GO error table).
    return bill === 'trade'
      ? { status: 400, code: 'STATEMENT_CREATING', message: '账单生成中' }
      : { status: 400, code: 'INVALID_REQUEST', message: '请求的账单正在生成中' };
  return { day };
}

/** sub_mchid: only a service provider may send it, and only for its own sub-merchants. */
function checkSubMchid(rt: SimRuntime, raw: unknown): Refusal | { subMchid?: string } {
  if (raw === undefined) return {};
  const sub = typeof raw === 'string' ? raw : '';
  if (!/^\d{1,12}$/.test(sub)) return { status: 400, code: 'PARAM_ERROR', message: 'sub_mchid 格式不正确' };
  // INFERRED: a direct merchant naming a sub-merchant is an invalid parameter.
  if (!rt.opts.partner) return { status: 400, code: 'PARAM_ERROR', message: '非服务商商户不能传入sub_mchid' };
  // GO profit-sharing bill table: 400 INVALID_REQUEST "服务商和分账方无受理关系" (used for the trade bill too: inferred).
  if (!rt.opts.partner.subMerchants[sub]) return { status: 400, code: 'INVALID_REQUEST', message: '服务商和分账方无受理关系' };
  return { subMchid: sub };
}

const refused = (r: object): r is Refusal => 'code' in r;

export function createBillsRouter(rt: SimRuntime, o: BillOptions = {}): express.Router {
  const router = express.Router();
  const ttl = o.urlTtlMs ?? 30_000;

  function issue(req: express.Request, res: express.Response, bill: BillKind, text: string | null, gzip: boolean) {
    // No billed line that day: 400 NO_STATEMENT_EXIST (FAQ 4013071254).
    if (text === null) return rt.fail(res, 400, 'NO_STATEMENT_EXIST', '请求的账单文件不存在');
    const store = getBillStore(rt);
    const content = Buffer.from(text, 'utf8');
    const token = randomBytes(24).toString('base64url');
    const mchid = /mchid="([^"]+)"/.exec(req.get('authorization') ?? '')?.[1] ?? rt.opts.mchid;
    store.tokens.set(token, { mchid, content, gzip, expiresAtMs: rt.now() + ttl });
    // hash_value is the SHA1 of the uncompressed bill (§2.4); the bad_hash fault breaks it.
    let hash = createHash('sha1').update(content).digest('hex');
    if (takeFaults(store, bill, 'bad_hash').length > 0) hash = createHash('sha1').update(Buffer.concat([content, Buffer.from('x')])).digest('hex');
    rt.reply(res, 200, { hash_type: 'SHA1', hash_value: hash, download_url: `${rt.baseUrlFor(req)}/v3/billdownload/file?token=${token}${gzip ? '&tartype=gzip' : ''}` });
  }

  function tarType(raw: unknown): Refusal | { gzip: boolean } {
    if (raw === undefined) return { gzip: false };
    if (raw === 'GZIP') return { gzip: true };
    return { status: 400, code: 'PARAM_ERROR', message: 'tar_type 参数错误，仅支持GZIP' };
  }

  const refuse = (res: express.Response, r: Refusal) => (rt.fail(res, r.status, r.code, r.message), null);

  /** The checks both bill requests share; null when refused (the answer is sent). */
  function common(req: express.Request, res: express.Response, bill: BillKind): { day: string; sub: { subMchid?: string }; gzip: boolean } | null {
    const tar = tarType(req.query.tar_type);
    if (refused(tar)) return refuse(res, tar);
    const sub = checkSubMchid(rt, req.query.sub_mchid);
    if (refused(sub)) return refuse(res, sub);
    const date = checkBillDate(rt, o, req.query.bill_date, bill);
    if (refused(date)) return refuse(res, date);
    return { day: date.day, sub, gzip: tar.gzip };
  }

  router.get('/bill/tradebill', (req, res) => {
    const billType = (req.query.bill_type ?? 'ALL') as string;
    if (!['ALL', 'SUCCESS', 'REFUND'].includes(billType)) return rt.fail(res, 400, 'PARAM_ERROR', 'bill_type 参数错误');
    const c = common(req, res, 'trade');
    if (c) issue(req, res, 'trade', buildTradeBill(rt, getBillStore(rt), c.day, billType as TradeBillType, c.sub), c.gzip);
  });

  router.get('/profitsharing/bills', (req, res) => {
    const c = common(req, res, 'profitsharing');
    if (c) issue(req, res, 'profitsharing', buildProfitSharingBill(rt, getBillStore(rt), c.day, c.sub), c.gzip);
  });

  router.get('/billdownload/file', (req, res) => {
    const issued = getBillStore(rt).tokens.get(String(req.query.token ?? ''));
    // An unknown or expired URL: 400 INVALID_REQUEST, fetch a new one (§2.4; the 30 s lifetime is CHOSEN).
    if (!issued || rt.now() > issued.expiresAtMs) return rt.fail(res, 400, 'INVALID_REQUEST', '下载链接已过期或无效，请重新申请账单');
    const mchid = /mchid="([^"]+)"/.exec(req.get('authorization') ?? '')?.[1];
    if (mchid !== issued.mchid) return rt.fail(res, 403, 'NO_AUTH', '请检查本次请求的商户是否与第一步申请账单API的请求商户一致');
    // The answer carries no Wechatpay-* signature headers (§2.4: "需要跳过验签的流程").
    const body = issued.gzip ? gzipSync(issued.content) : issued.content;
    res.status(200).set('Content-Type', issued.gzip ? 'application/x-gzip' : 'text/plain; charset=utf-8').end(body);
  });

  return router;
}

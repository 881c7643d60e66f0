/**
 * /v3/pay/transactions: order (jsapi/h5/native), query (out-trade-no / id), close.
 * Error codes and statuses (pay.weixin.qq.com 下单 error table, seen in a stored copy): 400 PARAM_ERROR,
 * 400 APPID_MCHID_NOT_MATCH, 400 MCH_NOT_EXISTS, 403 OUT_TRADE_NO_USED, 401 SIGN_ERROR, 429 FREQUENCY_LIMITED,
 * 500 SYSTEM_ERROR. Older v3 common table: 404 ORDERNOTEXIST (now ORDER_NOT_EXIST), 400 ORDER_CLOSED.
 * Paid order: 400 {"code":"ORDER_PAID","message":"订单已支付"} on close and on re-order (v3 troubleshooting
 * text "订单已支付" / ORDER_PAID; peers' tests expect exactly 400 ORDER_PAID; ORDERPAID is the v2 name).
 */
import { Router, type Request, type Response } from 'express';
import type { SimTradeType, SimTransaction } from '../context';
import { nowBeijingCompact, randomAlnum, randomDigits, randomHex } from '../sim-crypto';
import type { SimRuntime } from '../runtime';
import { canonicalJson, OUT_TRADE_NO_RE, ParamError, parseOrder } from './validate';
import { transactionView } from './transactions';

export const PREPAY_TTL_MS = 2 * 3600_000;
export const H5_URL_TTL_MS = 5 * 60_000;
export const MIN_EXPIRE_MS = 60_000;

const TYPES: Record<string, SimTradeType> = { jsapi: 'JSAPI', h5: 'H5', native: 'NATIVE' };

function newPrepayId(now: number): string {
  return `wx${nowBeijingCompact(now)}${randomHex(10)}`;
}

export function createPaymentsRouter(rt: SimRuntime): Router {
  const r = Router();

  for (const [path, type] of Object.entries(TYPES)) {
    r.post(`/${path}`, (req: Request, res: Response) => placeOrder(rt, req, res, type));
  }

  r.get('/out-trade-no/:no', (req, res) => {
    const no = String(req.params.no);
    const mchid = req.query.mchid;
    if (typeof mchid !== 'string' || !mchid) return rt.fail(res, 400, 'PARAM_ERROR', '输入源“/query/mchid”缺少必填参数');
    if (!OUT_TRADE_NO_RE.test(no)) return rt.fail(res, 400, 'PARAM_ERROR', '输入源“/path/out_trade_no”格式不正确');
    const tx = rt.transactions.byOutTradeNo.get(no);
    if (!tx || tx.mchid !== mchid) return rt.fail(res, 404, 'ORDER_NOT_EXIST', '订单不存在');
    rt.reply(res, 200, transactionView(tx));
  });

  r.get('/id/:id', (req, res) => {
    const id = String(req.params.id);
    const mchid = req.query.mchid;
    if (typeof mchid !== 'string' || !mchid) return rt.fail(res, 400, 'PARAM_ERROR', '输入源“/query/mchid”缺少必填参数');
    if (!/^\d{1,32}$/.test(id)) return rt.fail(res, 400, 'PARAM_ERROR', '输入源“/path/transaction_id”格式不正确');
    // Unpaid orders have no transaction_id, so they are simply not found here.
    const tx = rt.transactions.byTransactionId.get(id);
    if (!tx || tx.mchid !== mchid) return rt.fail(res, 404, 'ORDER_NOT_EXIST', '订单不存在');
    rt.reply(res, 200, transactionView(tx));
  });

  r.post('/out-trade-no/:no/close', (req, res) => {
    const no = String(req.params.no);
    const body = req.body as Record<string, unknown>;
    if (typeof body.mchid !== 'string' || !body.mchid)
      return rt.fail(res, 400, 'PARAM_ERROR', '输入源“/body/mchid”缺少必填参数', { location: 'body', field: 'mchid' });
    if (body.mchid !== rt.opts.mchid) return rt.fail(res, 400, 'MCH_NOT_EXISTS', '商户号不存在');
    if (!OUT_TRADE_NO_RE.test(no)) return rt.fail(res, 400, 'PARAM_ERROR', '输入源“/path/out_trade_no”格式不正确');
    const tx = rt.transactions.byOutTradeNo.get(no);
    if (!tx) return rt.fail(res, 404, 'ORDER_NOT_EXIST', '订单不存在');
    if (tx.state === 'SUCCESS' || tx.state === 'REFUND') return rt.fail(res, 400, 'ORDER_PAID', '订单已支付');
    if (tx.state !== 'CLOSED') {
      tx.state = 'CLOSED';
      rt.extraFor(tx).closedAtMs = rt.now();
    }
    // Closing again is harmless (FACTS §1): 204 both times.
    rt.reply(res, 204);
  });

  return r;
}

const PARTNER_FIELDS = ['sp_mchid', 'sp_appid', 'sub_mchid', 'sub_appid'];

/** `body` is the direct-mode body (the partner router maps its own onto it; req.body stays as received for the call log). */
export function placeOrder(rt: SimRuntime, req: Request, res: Response, type: SimTradeType, partner?: SimTransaction['partner'], body = req.body as Record<string, unknown>): void {
  // Partner fields on a direct endpoint (inferred; SK-COM 270924358 "参数中含有非法的额外参数").
  if (!partner && PARTNER_FIELDS.some((f) => f in body)) return rt.fail(res, 400, 'PARAM_ERROR', '参数中含有非法的额外参数');
  let o;
  try {
    o = parseOrder(body, type, rt.notifyUrlPolicy);
  } catch (e) {
    if (e instanceof ParamError)
      return rt.fail(res, 400, 'PARAM_ERROR', e.message, { location: 'body', field: e.field, value: e.value ?? null, issue: e.reason });
    throw e;
  }
  // The header mchid was already checked against ours; a different body mchid is an unknown merchant.
  if (o.mchid !== rt.opts.mchid) return rt.fail(res, 400, 'MCH_NOT_EXISTS', '商户号不存在');
  if (o.appid !== rt.opts.appid) return rt.fail(res, 400, 'APPID_MCHID_NOT_MATCH', 'AppID和mch_id不匹配');
  if (o.payerOpenid) {
    const issuedFor = rt.openidApps.get(o.payerOpenid);
    // Only openids this simulator issued can be checked; unknown ones are accepted. A partner
    // sub_openid belongs to sub_appid, an sp_openid (or a direct openid) to the ordering appid.
    const payApp = partner?.subOpenid ? partner.subAppid : o.appid;
    if (issuedFor && issuedFor !== payApp)
      return rt.fail(res, 400, 'PARAM_ERROR', partner?.subOpenid ? 'sub_appid和sub_openid不匹配' : 'appid和openid不匹配');
  }
  const now = rt.now();
  // A time_expire in the past or too close is not refused: the order is created and stays payable for
  // the channel's minimum. CHOSEN: 1 minute from the order (APIv2 unifiedorder's rule "time_expire …
  // 最短失效时间间隔大于1分钟"; a community answer says v3 accepts such orders too). A merchant
  // must therefore never rely on time_expire alone to stop a payment: close the order.
  const expireAtMs = o.timeExpireMs === undefined ? undefined : Math.max(o.timeExpireMs, now + MIN_EXPIRE_MS);

  const fingerprint = `${type}|${canonicalJson(partner ? { ...body, partner } : body)}`;
  // out_trade_no is unique per (sp_)mchid across all its sub-merchants (FACTS-partner-bills §1.2).
  let tx = rt.transactions.byOutTradeNo.get(o.outTradeNo);
  if (tx) {
    if (tx.state === 'SUCCESS' || tx.state === 'REFUND') return rt.fail(res, 400, 'ORDER_PAID', '订单已支付');
    if (tx.state === 'CLOSED') return rt.fail(res, 400, 'ORDER_CLOSED', '该订单已关闭');
    if (tx.requestFingerprint !== fingerprint)
      return rt.fail(res, 403, 'OUT_TRADE_NO_USED', '商户订单号重复，同一商户订单号的下单参数（含交易类型）必须一致');
  } else {
    tx = {
      outTradeNo: o.outTradeNo,
      tradeType: type,
      appid: o.appid,
      mchid: o.mchid,
      description: o.description,
      attach: o.attach,
      notifyUrl: o.notifyUrl,
      timeExpire: o.timeExpire,
      amountTotal: o.amountTotal,
      currency: o.currency,
      payerOpenid: o.payerOpenid,
      payerClientIp: o.payerClientIp,
      profitSharing: o.profitSharing,
      ...(partner ? { partner } : {}),
      state: 'NOTPAY',
      requestFingerprint: fingerprint,
      createdAtMs: now,
      expireAtMs,
    } satisfies SimTransaction;
    rt.transactions.byOutTradeNo.set(o.outTradeNo, tx);
  }

  const extra = rt.extraFor(tx);
  // Same parameters give the same prepay_id until it expires (2 h), then a fresh one.
  if (!extra.prepayId || now - (extra.prepayCreatedAtMs ?? 0) >= PREPAY_TTL_MS) {
    extra.prepayId = newPrepayId(now);
    extra.prepayCreatedAtMs = now;
    rt.prepayIndex.set(extra.prepayId, tx.outTradeNo);
  }

  if (type === 'JSAPI') return rt.reply(res, 200, { prepay_id: extra.prepayId });
  if (type === 'NATIVE') {
    if (!extra.codeToken || now - (extra.codeCreatedAtMs ?? 0) >= PREPAY_TTL_MS) {
      extra.codeToken = randomAlnum(7);
      extra.codeCreatedAtMs = now;
      rt.codeIndex.set(extra.codeToken, tx.outTradeNo);
    }
    return rt.reply(res, 200, { code_url: `weixin://wxpay/bizpayurl?pr=${extra.codeToken}` });
  }
  // H5: every call yields a fresh h5_url (valid 5 min) for the same prepay_id.
  const packageToken = randomDigits(10);
  rt.h5Tickets.set(packageToken, { outTradeNo: tx.outTradeNo, prepayId: extra.prepayId, packageToken, createdAtMs: now });
  const base = rt.baseUrlFor(req);
  rt.reply(res, 200, { h5_url: `${base}/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=${extra.prepayId}&package=${packageToken}` });
}

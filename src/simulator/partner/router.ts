/**
 * /v3/pay/partner/transactions: service-provider (服务商) ordering, query and close
 * (FACTS-partner-bills §1.2–§1.6, Part 3 rules 1–6). The simulator's merchant is the service provider:
 * its keys sign and verify everything (every key is the SP's); opts.partner lists its sub-merchants.
 * A partner body is checked here, then mapped onto the direct-mode order (same validation, same
 * transaction store, so out_trade_no is unique per sp_mchid across all its sub-merchants).
 * Statuses marked "inferred" are UNCONFIRMED in the facts sheet and chosen by meaning.
 */
import { Router, type Request, type Response } from 'express';
import type { SimTradeType, SimTransaction } from '../context';
import type { SimRuntime } from '../runtime';
import { OUT_TRADE_NO_RE } from '../payments/validate';
import { placeOrder } from '../payments/router';
import { transactionView } from '../payments/transactions';
import { isServiceProvider, NO_RELATIONSHIP, subMerchantOf, SUB_MCHID_NOT_ORDER, type SubMerchant } from './bindings';

const TYPES: Record<string, SimTradeType> = { jsapi: 'JSAPI', h5: 'H5', native: 'NATIVE' };

/** Checks sp_mchid / sub_mchid of a request; answers the refusal and returns null when WeChat would refuse. */
function checkSubMerchant(rt: SimRuntime, res: Response, spMchid: unknown, subMchid: unknown): SubMerchant | null {
  if (typeof spMchid !== 'string' || !spMchid) {
    rt.fail(res, 400, 'PARAM_ERROR', '输入源“/body/sp_mchid”缺少必填参数');
    return null;
  }
  if (spMchid !== rt.opts.mchid) {
    rt.fail(res, 400, 'PARAM_ERROR', 'http header中的mchid与post payload中的mchid不匹配');
    return null;
  }
  // A direct merchant on a partner-only path has no 受理关系 at all (the shared paths refuse the field instead).
  const sub = isServiceProvider(rt) ? subMerchantOf(rt, subMchid) : NO_RELATIONSHIP();
  if (!sub.ok) {
    rt.fail(res, sub.status, sub.code, sub.message);
    return null;
  }
  return sub;
}

export function createPartnerPaymentsRouter(rt: SimRuntime): Router {
  const r = Router();

  for (const [path, type] of Object.entries(TYPES)) {
    r.post(`/${path}`, (req: Request, res: Response) => {
      const b = req.body as Record<string, unknown>;
      const sub = checkSubMerchant(rt, res, b.sp_mchid, b.sub_mchid);
      if (!sub) return;
      if (b.sp_appid !== rt.opts.appid) return rt.fail(res, 400, 'APPID_MCHID_NOT_MATCH', 'appid和mch_id不匹配,请检查后再试');
      const subAppid = typeof b.sub_appid === 'string' ? b.sub_appid : undefined;
      if (subAppid !== undefined && !sub.subAppids.includes(subAppid)) return rt.fail(res, 400, 'PARAM_ERROR', 'sub_mch_id与sub_appid不匹配'); // status inferred
      const payer = (b.payer ?? undefined) as Record<string, unknown> | undefined;
      if (payer && 'openid' in payer) return rt.fail(res, 400, 'PARAM_ERROR', '参数中含有非法的额外参数');
      const subOpenid = typeof payer?.sub_openid === 'string' ? payer.sub_openid : undefined;
      const spOpenid = typeof payer?.sp_openid === 'string' ? payer.sp_openid : undefined;
      if (subOpenid !== undefined && subAppid === undefined) return rt.fail(res, 400, 'PARAM_ERROR', '若sub_openid有传的情况下，sub_appid必填');
      // Map onto the direct-mode body: the SP's appid/mchid and the openid of whichever app pays.
      const { sp_mchid, sp_appid, sub_mchid: _sub, sub_appid: _subApp, payer: _payer, ...rest } = b;
      const direct: Record<string, unknown> = { ...rest, appid: sp_appid, mchid: sp_mchid };
      if (spOpenid ?? subOpenid) direct.payer = { openid: subOpenid ?? spOpenid };
      const partner: NonNullable<SimTransaction['partner']> = { subMchid: sub.subMchid, ...(subAppid ? { subAppid } : {}), ...(subOpenid ? { subOpenid } : {}) };
      placeOrder(rt, req, res, type, partner, direct);
    });
  }

  const findOrder = (res: Response, no: string, subMchid: string): SimTransaction | null => {
    if (!OUT_TRADE_NO_RE.test(no)) {
      rt.fail(res, 400, 'PARAM_ERROR', '输入源“/path/out_trade_no”格式不正确');
      return null;
    }
    const tx = rt.transactions.byOutTradeNo.get(no);
    if (!tx || !tx.partner) {
      rt.fail(res, 404, 'ORDER_NOT_EXIST', '订单不存在');
      return null;
    }
    if (tx.partner.subMchid !== subMchid) {
      const no = SUB_MCHID_NOT_ORDER();
      rt.fail(res, no.status, no.code, no.message);
      return null;
    }
    return tx;
  };

  r.get('/out-trade-no/:no', (req, res) => {
    if (!checkSubMerchant(rt, res, req.query.sp_mchid, req.query.sub_mchid)) return;
    const tx = findOrder(res, String(req.params.no), String(req.query.sub_mchid));
    if (tx) rt.reply(res, 200, transactionView(tx));
  });

  r.post('/out-trade-no/:no/close', (req, res) => {
    const b = req.body as Record<string, unknown>;
    if (!checkSubMerchant(rt, res, b.sp_mchid, b.sub_mchid)) return;
    const tx = findOrder(res, String(req.params.no), String(b.sub_mchid));
    if (!tx) return;
    if (tx.state === 'SUCCESS' || tx.state === 'REFUND') return rt.fail(res, 403, 'ORDERPAID', '订单已支付，不能关单');
    if (tx.state !== 'CLOSED') {
      tx.state = 'CLOSED';
      rt.extraFor(tx).closedAtMs = rt.now();
    }
    rt.reply(res, 204);
  });

  return r;
}

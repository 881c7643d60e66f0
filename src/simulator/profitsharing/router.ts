/**
 * /v3/profitsharing/* of the WeChat Pay stand-in (ordinary merchant). Mounted by the core app after its
 * Authorization check and fault injection, so requests here are authenticated and req.body is parsed JSON.
 */
import express from 'express';
import type { SimContext } from '../context';
import {
  addReceiver,
  createOrder,
  createReturn,
  deleteReceiver,
  queryAmounts,
  queryMerchantRatio,
  queryOrder,
  queryReturn,
  unfreezeOrder,
  type Outcome,
} from './operations';
import { getStore, type SplitRequestRecord } from './store';

export { createProfitSharingControl, profitSharingControl } from './control';
export type { ProfitSharingControl, ProfitSharingOptionsPatch } from './control';

function send(ctx: SimContext, res: express.Response, outcome: Outcome): void {
  if (outcome.ok) ctx.reply(res, outcome.status, outcome.body);
  else ctx.fail(res, outcome.status, outcome.code, outcome.message, outcome.detail);
}

/** mchid of the signed request (Authorization mchid="..."), else the simulator's merchant. */
function requestMchid(ctx: SimContext, req: express.Request): string {
  const m = /mchid="([^"]+)"/.exec(req.get('authorization') ?? '');
  return m?.[1] ?? ctx.opts.mchid;
}

/** Accepted-by-the-limiter requests in the 1-second window ending now: (now − 1000, now]. */
function countInWindow(records: SplitRequestRecord[], now: number, match: (r: SplitRequestRecord) => boolean): number {
  return records.filter((r) => !r.limited && r.at > now - 1000 && r.at <= now && match(r)).length;
}

/**
 * Split requests (POST /orders and /orders/unfreeze): rate-limited in any 1-second sliding window (429
 * FREQUENCY_LIMITED, verified code/status in WeChat's profit-sharing error tables) and every one of them
 * recorded with its time. Direct mode: per mchid. Partner mode (a sub_mchid sent): per service provider
 * AND per sub-merchant, both at once (300/s and 30/s, FACTS-partner-bills §1.10); the SP's count includes
 * every split request it signs.
 */
function splitEndpoint(ctx: SimContext, kind: 'split' | 'unfreeze', run: (ctx: SimContext, req: express.Request) => Outcome) {
  return (req: express.Request, res: express.Response) => {
    const store = getStore(ctx);
    const now = ctx.now();
    const mchid = requestMchid(ctx, req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const record: SplitRequestRecord = {
      at: now,
      kind,
      mchid,
      ...(typeof body.sub_mchid === 'string' ? { subMchid: body.sub_mchid } : {}),
      outOrderNo: typeof body.out_order_no === 'string' ? body.out_order_no : undefined,
      transactionId: typeof body.transaction_id === 'string' ? body.transaction_id : undefined,
      status: 0,
      limited: false,
    };
    const { ratePerSecond, spRatePerSecond, subRatePerSecond, perOrderRatePerSecond: perOrder } = ctx.opts.profitSharing;
    const earlier = store.requests;
    const sub = record.subMchid;
    const over = (limit: number, match: (r: SplitRequestRecord) => boolean) => limit > 0 && countInWindow(earlier, now, match) >= limit;
    const limited =
      sub === undefined
        ? over(ratePerSecond, (r) => r.mchid === mchid)
        : over(spRatePerSecond, (r) => r.mchid === mchid) || over(subRatePerSecond, (r) => r.mchid === mchid && r.subMchid === sub);
    let outcome: Outcome;
    if (limited) {
      // Wording: developers.weixin.qq.com 00004ac353c768b608db8fcab51400 ("请求频率过高,请降低频率后再试").
      outcome = { ok: false, status: 429, code: 'FREQUENCY_LIMITED', message: '请求频率过高，请降低频率后再试' };
    } else if (
      perOrder > 0 &&
      record.transactionId &&
      countInWindow(earlier, now, (r) => r.transactionId === record.transactionId) >= perOrder
    ) {
      // wechatpay-go services/profitsharing error table: 429 RATELIMIT_EXCEED "对同笔订单分账频率过高"
      // (about one request per second per order, FACTS-partner-bills §1.10).
      outcome = { ok: false, status: 429, code: 'RATELIMIT_EXCEED', message: '对同笔订单分账频率过高' };
    } else {
      outcome = run(ctx, req);
    }
    record.limited = !outcome.ok && outcome.status === 429;
    record.status = outcome.status;
    if (!outcome.ok) record.code = outcome.code;
    store.requests.push(record);
    send(ctx, res, outcome);
  };
}

export function createProfitSharingRouter(ctx: SimContext): express.Router {
  const router = express.Router();
  getStore(ctx); // snapshot the starting options for reset
  router.post('/orders', splitEndpoint(ctx, 'split', createOrder));
  router.post('/orders/unfreeze', splitEndpoint(ctx, 'unfreeze', unfreezeOrder));
  router.get('/orders/:out_order_no', (req, res) => send(ctx, res, queryOrder(ctx, req.params.out_order_no, req.query.transaction_id, req.query.sub_mchid)));
  router.get('/merchant-configs/:sub_mchid', (req, res) => send(ctx, res, queryMerchantRatio(ctx, req.params.sub_mchid)));
  router.get('/transactions/:transaction_id/amounts', (req, res) => send(ctx, res, queryAmounts(ctx, req.params.transaction_id)));
  router.post('/receivers/add', (req, res) => send(ctx, res, addReceiver(ctx, req)));
  router.post('/receivers/delete', (req, res) => send(ctx, res, deleteReceiver(ctx, req)));
  router.post('/return-orders', (req, res) => send(ctx, res, createReturn(ctx, req)));
  router.get('/return-orders/:out_return_no', (req, res) =>
    send(ctx, res, queryReturn(ctx, req.params.out_return_no, req.query.out_order_no, req.query.sub_mchid)),
  );
  return router;
}

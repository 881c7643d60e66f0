/**
 * What the payer sees: the H5 cashier behind h5_url, the Native "scan" page, and the JSAPI WeixinJSBridge
 * shim. Each applies the checks WeChat applies (FACTS §1/§2, SKILLS H5Invoke.md, 基础支付常见问题.md).
 */
import express, { Router, type Request, type Response } from 'express';
import type { SimTransaction } from '../context';
import { verifySha256Rsa } from '../sim-crypto';
import type { SimRuntime } from '../runtime';
import { payTransaction } from './transactions';
import { H5_URL_TTL_MS, PREPAY_TTL_MS } from './router';

const yuan = (fen: number) => `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
// One machine's loopback is one visitor whichever family the browser picked for "localhost"
// (::1 at the merchant, 127.0.0.1 here): WeChat never sees loopback, so this bends no real rule.
const normIp = (ip: string | undefined) => {
  const v4 = (ip ?? '').replace(/^::ffff:/, '');
  return v4 === '::1' || /^127\./.test(v4) ? 'loopback' : v4;
};
const isWeChatUa = (req: Request) => /MicroMessenger/i.test(req.get('user-agent') ?? '');

function page(res: Response, status: number, heading: string, message = '', tone: 'ok' | 'err' = 'err', errcode?: string | number) {
  res.status(status).render('simulator/message', { title: '微信支付', heading, message, tone, errcode });
}

function confirm(res: Response, tx: SimTransaction, action: string, fields: Record<string, string>) {
  res.render('simulator/confirm', {
    title: '确认支付',
    description: tx.description,
    amountYuan: yuan(tx.amountTotal),
    outTradeNo: tx.outTradeNo,
    action,
    fields,
    button: '确认支付',
  });
}

function hostAllowed(url: string, domains: string[]): boolean {
  try {
    const u = new URL(url);
    // Registered H5 domains are host names; an entry with a port matches host:port exactly.
    return domains.some((d) => d === u.hostname || d === u.host);
  } catch {
    return false;
  }
}

function stateRefusal(rt: SimRuntime, tx: SimTransaction): string | undefined {
  if (tx.state === 'SUCCESS' || tx.state === 'REFUND') return '该订单已支付，请勿重复支付';
  if (tx.state === 'CLOSED') return '该订单已关闭';
  const expireAtMs = tx.expireAtMs ?? (tx.timeExpire ? Date.parse(tx.timeExpire) : undefined);
  if (expireAtMs !== undefined && rt.now() > expireAtMs) return '订单已过期，请重新下单';
  return undefined;
}

export function createPagesRouter(rt: SimRuntime): Router {
  const r = Router();
  const form = express.urlencoded({ extended: false });

  // ---- H5 cashier ------------------------------------------------------------------------------------
  const H5_PATH = '/cgi-bin/mmpayweb-bin/checkmweb';
  const h5Check = (req: Request, res: Response, params: Record<string, unknown>, checkReferer: boolean) => {
    const prepayId = String(params.prepay_id ?? '');
    const pkg = String(params.package ?? '');
    const redirectUrl = typeof params.redirect_url === 'string' && params.redirect_url ? params.redirect_url : undefined;
    const ticket = rt.h5Tickets.get(pkg);
    const FORMAT = '商家参数格式有误，请联系商家解决';
    if (!ticket || ticket.prepayId !== prepayId) return void page(res, 400, FORMAT, '支付链接无效');
    if (checkReferer) {
      const referer = req.get('referer');
      if (!referer) return void page(res, 403, FORMAT, '当前调起H5支付的referer为空，请从商户页面跳转到支付链接');
      if (!hostAllowed(referer, rt.opts.h5Domains))
        return void page(res, 403, FORMAT, '当前调起H5支付的域名与申请H5支付时提交的授权域名不一致');
      if (redirectUrl && !hostAllowed(redirectUrl, rt.opts.h5Domains))
        return void page(res, 403, FORMAT, 'redirect_url的域名与申请H5支付时提交的授权域名不一致');
    }
    // UNVERIFIED wording of WeChat's expired-link page.
    if (rt.now() - ticket.createdAtMs > H5_URL_TTL_MS) return void page(res, 403, '支付链接已失效', 'h5_url有效期为5分钟，请重新发起支付');
    if (isWeChatUa(req)) return void page(res, 403, '请在微信外打开订单，进行支付');
    const tx = rt.transactions.byOutTradeNo.get(ticket.outTradeNo)!;
    if (normIp(req.ip) !== normIp(tx.payerClientIp))
      return void page(res, 403, '由于商家传入的H5交易参数有误，该笔交易暂时无法完成，请联系商家解决', '网络环境未能通过安全验证，请稍后再试');
    const refusal = stateRefusal(rt, tx);
    if (refusal) return void page(res, 409, refusal);
    return { tx, ticket, redirectUrl };
  };

  r.get(H5_PATH, (req, res) => {
    const ok = h5Check(req, res, req.query as Record<string, unknown>, true);
    if (!ok) return;
    const fields: Record<string, string> = { prepay_id: ok.ticket.prepayId, package: ok.ticket.packageToken };
    if (ok.redirectUrl) fields.redirect_url = ok.redirectUrl;
    confirm(res, ok.tx, H5_PATH, fields);
  });

  r.post(H5_PATH, form, (req, res) => {
    const ok = h5Check(req, res, (req.body ?? {}) as Record<string, unknown>, false);
    if (!ok) return;
    const out = payTransaction(rt, ok.tx);
    if (!out.ok) return page(res, out.status, out.reason);
    if (ok.redirectUrl) return res.redirect(303, ok.redirectUrl);
    page(res, 200, '支付成功', `￥${yuan(ok.tx.amountTotal)}`, 'ok');
  });

  // ---- Native: "scanning" the code_url -----------------------------------------------------------------
  const byCodeUrl = (codeUrl: unknown): SimTransaction | string => {
    const m = typeof codeUrl === 'string' ? /^weixin:\/\/wxpay\/bizpayurl\?pr=([A-Za-z0-9]+)$/.exec(codeUrl) : null;
    const no = m ? rt.codeIndex.get(m[1]!) : undefined;
    const tx = no ? rt.transactions.byOutTradeNo.get(no) : undefined;
    if (!tx) return '二维码无效';
    const extra = rt.extraFor(tx);
    if (extra.codeToken !== m![1] || rt.now() - (extra.codeCreatedAtMs ?? 0) >= PREPAY_TTL_MS) return '二维码已过期，请刷新后重新扫码';
    return tx;
  };

  r.post('/_sim/native/scan', express.json(), (req, res) => {
    const body = (req.body ?? {}) as { code_url?: unknown; payer_total?: unknown };
    const tx = byCodeUrl(body.code_url);
    if (typeof tx === 'string') return res.status(404).json({ error: tx });
    const out = payTransaction(rt, tx, { payerTotal: typeof body.payer_total === 'number' ? body.payer_total : undefined });
    if (!out.ok) return res.status(out.status).json({ error: out.reason });
    res.json({ out_trade_no: tx.outTradeNo, transaction_id: tx.transactionId });
  });

  r.get('/_sim/scan', (req, res) => {
    const tx = byCodeUrl(req.query.code_url);
    if (typeof tx === 'string') return page(res, 404, tx);
    const refusal = stateRefusal(rt, tx);
    if (refusal) return page(res, 409, refusal);
    confirm(res, tx, '/_sim/scan', { code_url: String(req.query.code_url) });
  });

  r.post('/_sim/scan', form, (req, res) => {
    const tx = byCodeUrl((req.body ?? {}).code_url);
    if (typeof tx === 'string') return page(res, 404, tx);
    const out = payTransaction(rt, tx);
    if (!out.ok) return page(res, out.status, out.reason);
    page(res, 200, '支付成功', `￥${yuan(tx.amountTotal)}`, 'ok');
  });

  // ---- JSAPI: WeixinJSBridge shim and its pay endpoint ---------------------------------------------------
  const cors = (req: Request, res: Response) => {
    res.set('Access-Control-Allow-Origin', req.get('origin') ?? '*');
    res.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
    res.set('Access-Control-Allow-Headers', 'Content-Type');
    res.set('Vary', 'Origin');
  };
  r.options(['/_sim/jsapi/pay', '/_sim/jsapi/info'], (req, res) => {
    cors(req, res);
    res.status(204).end();
  });

  r.get('/_sim/jsbridge.js', (_req, res) => {
    res.type('application/javascript').send(JSBRIDGE_SHIM);
  });

  r.get('/_sim/jsapi/info', (req, res) => {
    cors(req, res);
    const m = /^prepay_id=(.+)$/.exec(String(req.query.package ?? ''));
    const no = m ? rt.prepayIndex.get(m[1]!) : undefined;
    const tx = no ? rt.transactions.byOutTradeNo.get(no) : undefined;
    if (!tx) return res.status(404).json({ error: 'prepay_id无效' });
    res.json({ description: tx.description, amount: yuan(tx.amountTotal), out_trade_no: tx.outTradeNo });
  });

  r.post('/_sim/jsapi/pay', express.json({ type: () => true }), (req, res) => {
    cors(req, res);
    const failWith = (desc: string) => res.json({ err_msg: 'get_brand_wcpay_request:fail', err_desc: desc });
    const p = (req.body ?? {}) as Record<string, unknown>;
    for (const k of ['appId', 'timeStamp', 'nonceStr', 'package', 'signType', 'paySign']) {
      if (p[k] === undefined || p[k] === null || p[k] === '') return failWith(`调用支付JSAPI缺少参数：${k}`);
      // timeStamp is documented as a string of seconds; a number is a classic integration bug.
      if (typeof p[k] !== 'string') return failWith(`参数${k}必须为字符串`);
    }
    const { appId, timeStamp, nonceStr, signType, paySign } = p as Record<string, string>;
    const pkg = p.package as string;
    if (!/^\d{10}$/.test(timeStamp!)) return failWith('timeStamp必须为秒级时间戳');
    if (nonceStr!.length > 32) return failWith('nonceStr长度不能超过32');
    if (signType !== 'RSA') return failWith('signType必须为RSA');
    const m = /^prepay_id=(wx\w+)$/.exec(pkg);
    if (!m) return failWith('package格式错误，应为prepay_id=***');
    const no = rt.prepayIndex.get(m[1]!);
    const tx = no ? rt.transactions.byOutTradeNo.get(no) : undefined;
    if (!tx) return failWith('prepay_id无效');
    const extra = rt.extraFor(tx);
    if (extra.prepayId !== m[1] || rt.now() - (extra.prepayCreatedAtMs ?? 0) >= PREPAY_TTL_MS) return failWith('prepay_id已过期，请重新下单');
    if (tx.tradeType !== 'JSAPI') return failWith('该订单不是JSAPI订单');
    // Partner orders are invoked with sub_appid iff the payer was a sub_openid, else sp_appid (FACTS-partner-bills §1.3).
    const invokeAppid = tx.partner?.subOpenid ? tx.partner.subAppid : tx.appid;
    if (appId !== invokeAppid) return failWith('appId与下单时的appid不一致');
    if (rt.jsapiPayDirs.length > 0) {
      const pageUrl = typeof p._pageUrl === 'string' ? p._pageUrl : '';
      if (!rt.jsapiPayDirs.some((d) => pageUrl.startsWith(d))) return failWith(`当前页面的URL未注册：${pageUrl}`);
    }
    if (!verifySha256Rsa(`${appId}\n${timeStamp}\n${nonceStr}\n${pkg}\n`, paySign!, rt.keys.merchantPublicKey))
      return failWith('支付验证签名失败');
    const refusal = stateRefusal(rt, tx);
    if (refusal) return failWith(refusal);
    const out = payTransaction(rt, tx);
    if (!out.ok) return failWith(out.reason);
    res.json({ err_msg: 'get_brand_wcpay_request:ok' });
  });

  return r;
}

/**
 * Browser shim standing in for WeChat's WeixinJSBridge. Set `window.__WX_SIM_AUTO_CONFIRM__ = true`
 * (or 'cancel') before invoking to skip the confirm sheet in automated runs.
 */
const JSBRIDGE_SHIM = `(function () {
  if (window.WeixinJSBridge && window.WeixinJSBridge.__sim) return;
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src).origin : '';
  function sheet(info, onOk, onCancel) {
    var auto = window.__WX_SIM_AUTO_CONFIRM__;
    if (auto === true) return onOk();
    if (auto === 'cancel') return onCancel();
    var wrap = document.createElement('div');
    wrap.setAttribute('style', 'position:fixed;inset:0;background:rgba(0,0,0,.5);z-index:99999;display:flex;align-items:flex-end');
    var box = document.createElement('div');
    box.setAttribute('style', 'background:#fff;width:100%;border-radius:12px 12px 0 0;padding:20px 16px;text-align:center;font-family:sans-serif');
    var t = document.createElement('div'); t.textContent = '微信支付（模拟器）'; t.setAttribute('style', 'color:#888;font-size:14px');
    var d = document.createElement('div'); d.textContent = info.description || ''; d.setAttribute('style', 'margin-top:8px');
    var a = document.createElement('div'); a.textContent = info.amount ? '￥' + info.amount : ''; a.setAttribute('style', 'font-size:32px;font-weight:600;margin:12px 0');
    var ok = document.createElement('button'); ok.textContent = '确认支付'; ok.id = 'wx-sim-confirm';
    ok.setAttribute('style', 'width:100%;border:0;border-radius:6px;background:#07c160;color:#fff;font-size:17px;padding:12px');
    var no = document.createElement('button'); no.textContent = '取消'; no.id = 'wx-sim-cancel';
    no.setAttribute('style', 'width:100%;border:0;background:none;color:#576b95;font-size:16px;padding:12px;margin-top:4px');
    ok.onclick = function () { document.body.removeChild(wrap); onOk(); };
    no.onclick = function () { document.body.removeChild(wrap); onCancel(); };
    box.appendChild(t); box.appendChild(d); box.appendChild(a); box.appendChild(ok); box.appendChild(no);
    wrap.appendChild(box); document.body.appendChild(wrap);
  }
  function invoke(name, params, cb) {
    cb = cb || function () {};
    if (name !== 'getBrandWCPayRequest') return cb({ err_msg: name + ':fail_not_supported_by_simulator' });
    var pkg = params && params['package'] || '';
    fetch(base + '/_sim/jsapi/info?package=' + encodeURIComponent(pkg))
      .then(function (r) { return r.json(); })
      .catch(function () { return {}; })
      .then(function (info) {
        sheet(info || {}, function () {
          var body = {};
          for (var k in params) body[k] = params[k];
          body._pageUrl = location.href;
          fetch(base + '/_sim/jsapi/pay', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
            .then(function (r) { return r.json(); })
            .then(cb, function (e) { cb({ err_msg: 'get_brand_wcpay_request:fail', err_desc: String(e) }); });
        }, function () { cb({ err_msg: 'get_brand_wcpay_request:cancel' }); });
      });
  }
  window.WeixinJSBridge = { __sim: true, invoke: invoke, on: function () {}, call: function () {} };
  function ready() {
    var e;
    try { e = new Event('WeixinJSBridgeReady'); } catch (_) { e = document.createEvent('Event'); e.initEvent('WeixinJSBridgeReady', true, true); }
    document.dispatchEvent(e);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', ready); else setTimeout(ready, 0);
})();
`;

/**
 * Field rules of POST /v3/pay/transactions/{jsapi,h5,native} (OFFICIAL-JSAPI / OFFICIAL-H5, FACTS §1).
 * A wrong type is PARAM_ERROR, never coerced: `"total": "100"` or `"profit_sharing": "Y"` fail like on WeChat.
 */
import { isIP } from 'node:net';
import type { SimTradeType } from '../context';
import type { NotifyUrlPolicy } from '../runtime';

export class ParamError extends Error {
  constructor(readonly field: string, readonly reason: string, readonly value?: unknown) {
    super(`输入源“/body/${field}”校验失败：${reason}`);
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const charLen = (s: string) => [...s].length;

/**
 * `max` counts characters; `maxBytes` counts UTF-8 bytes, which is what WeChat means by string(127) on
 * description / attach: its validator answers "字节数 144，大于最大值 127" (JeffreySu/WeiXinMPSDK#3217, a
 * 69-character Chinese description refused by the real v3 JSAPI endpoint).
 */
function str(o: Obj, key: string, path: string, rule: { required?: boolean; min?: number; max?: number; maxBytes?: number; re?: RegExp; reMsg?: string }): string | undefined {
  const v = o[key];
  const p = path ? `${path}/${key}` : key;
  if (v === undefined || v === null) {
    if (rule.required) throw new ParamError(p, '缺少必填参数');
    return undefined;
  }
  if (typeof v !== 'string') throw new ParamError(p, `类型错误，应为字符串，实际为${Array.isArray(v) ? 'array' : typeof v}`, v);
  const n = charLen(v);
  if (rule.min !== undefined && n < rule.min) throw new ParamError(p, `长度 ${n}，小于最小值 ${rule.min}`, v);
  if (rule.max !== undefined && n > rule.max) throw new ParamError(p, `长度 ${n}，大于最大值 ${rule.max}`, v);
  const bytes = Buffer.byteLength(v, 'utf8');
  if (rule.maxBytes !== undefined && bytes > rule.maxBytes) throw new ParamError(p, `字节数 ${bytes}，大于最大值 ${rule.maxBytes}`, v);
  if (rule.re && !rule.re.test(v)) throw new ParamError(p, rule.reMsg ?? '格式不正确', v);
  return v;
}

function obj(o: Obj, key: string, path: string, required: boolean): Obj | undefined {
  const v = o[key];
  const p = path ? `${path}/${key}` : key;
  if (v === undefined || v === null) {
    if (required) throw new ParamError(p, '缺少必填参数');
    return undefined;
  }
  if (!isObj(v)) throw new ParamError(p, '类型错误，应为对象', v);
  return v;
}

function bool(o: Obj, key: string, path: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ParamError(path ? `${path}/${key}` : key, '类型错误，应为布尔值', v);
  return v;
}

function int(o: Obj, key: string, path: string, required: boolean, min?: number): number | undefined {
  const v = o[key];
  const p = path ? `${path}/${key}` : key;
  if (v === undefined || v === null) {
    if (required) throw new ParamError(p, '缺少必填参数');
    return undefined;
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ParamError(p, '类型错误，应为整数', v);
  if (v > 2 ** 31 - 1) throw new ParamError(p, '数值超过最大值', v);
  if (min !== undefined && v < min) throw new ParamError(p, `值 ${v} 小于最小值 ${min}`, v);
  return v;
}

export const OUT_TRADE_NO_RE = /^[0-9A-Za-z_\-|*]{6,32}$/;
/**
 * RFC 3339 with seconds and an explicit offset, as documented (`yyyy-MM-DDTHH:mm:ss+TIMEZONE`).
 * UNVERIFIED whether WeChat takes fractional seconds; rejected here to keep the simulator strict.
 */
const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2})$/;

export function parseRfc3339(s: string): number | undefined {
  const m = RFC3339_RE.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se] = m.map(Number) as number[];
  if (mo! < 1 || mo! > 12 || d! < 1 || d! > 31 || h! > 23 || mi! > 59 || se! > 59) return undefined;
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) return undefined;
  // Date.parse rolls 2024-02-31 over to March; compare the calendar date back.
  const check = new Date(Date.UTC(y!, mo! - 1, d!));
  if (check.getUTCDate() !== d) return undefined;
  return ms;
}

function isPrivateHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h.endsWith('.local') || h.endsWith('.internal')) return true;
  const v = isIP(h);
  if (v === 4) {
    const [a, b] = h.split('.').map(Number) as [number, number];
    return a === 10 || a === 127 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
  }
  if (v === 6) return h === '::1' || h === '::' || h.startsWith('fc') || h.startsWith('fd') || h.startsWith('fe80') || h.startsWith('::ffff:');
  return !h.includes('.');
}

/**
 * notify_url: GO-SDK "1. HTTPS; 2. no query", SKILLS: publicly reachable (no localhost / private IP).
 * 'any-no-query' relaxes scheme and host for the local sandbox and tests only (they run on 127.0.0.1 over http).
 */
export function checkNotifyUrl(v: string, policy: NotifyUrlPolicy): void {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ParamError('notify_url', '不是合法的URL', v);
  }
  if (v.includes('?') || u.search) throw new ParamError('notify_url', '通知地址不能携带参数', v);
  if (v.includes('#')) throw new ParamError('notify_url', '通知地址不能携带锚点', v);
  if (u.username || u.password) throw new ParamError('notify_url', '格式不正确', v);
  if (policy === 'https-public') {
    if (u.protocol !== 'https:') throw new ParamError('notify_url', '必须为https地址', v);
    if (isPrivateHost(u.hostname)) throw new ParamError('notify_url', '必须为外网可访问的地址', v);
  } else if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new ParamError('notify_url', '必须为http(s)地址', v);
  }
}

export interface ParsedOrder {
  appid: string;
  mchid: string;
  description: string;
  outTradeNo: string;
  timeExpire?: string;
  timeExpireMs?: number;
  attach?: string;
  notifyUrl: string;
  amountTotal: number;
  currency: 'CNY';
  payerOpenid?: string;
  payerClientIp?: string;
  profitSharing: boolean;
}

export function parseOrder(body: Obj, type: SimTradeType, policy: NotifyUrlPolicy): ParsedOrder {
  const appid = str(body, 'appid', '', { required: true, min: 1, max: 32 })!;
  const mchid = str(body, 'mchid', '', { required: true, min: 1, max: 32 })!;
  const description = str(body, 'description', '', { required: true, min: 1, maxBytes: 127 })!;
  const outTradeNo = str(body, 'out_trade_no', '', {
    required: true,
    min: 6,
    max: 32,
    re: OUT_TRADE_NO_RE,
    reMsg: '只能是数字、大小写字母_-|*',
  })!;
  const timeExpire = str(body, 'time_expire', '', { max: 64 });
  let timeExpireMs: number | undefined;
  if (timeExpire !== undefined) {
    timeExpireMs = parseRfc3339(timeExpire);
    if (timeExpireMs === undefined) throw new ParamError('time_expire', '时间格式不符合rfc3339标准，如2018-06-08T10:34:56+08:00', timeExpire);
  }
  const attach = str(body, 'attach', '', { maxBytes: 128 });
  const notifyUrl = str(body, 'notify_url', '', { required: true, min: 1, max: 255 })!;
  checkNotifyUrl(notifyUrl, policy);
  str(body, 'goods_tag', '', { max: 32 });
  bool(body, 'support_fapiao', '');

  const amount = obj(body, 'amount', '', true)!;
  const amountTotal = int(amount, 'total', 'amount', true, 1)!;
  const currency = str(amount, 'currency', 'amount', { re: /^CNY$/, reMsg: '币种只支持CNY' });

  const detail = obj(body, 'detail', '', false);
  if (detail) {
    int(detail, 'cost_price', 'detail', false, 0);
    str(detail, 'invoice_id', 'detail', { max: 32 });
    const goods = detail.goods_detail;
    if (goods !== undefined) {
      if (!Array.isArray(goods)) throw new ParamError('detail/goods_detail', '类型错误，应为数组', goods);
      goods.forEach((g, i) => {
        const p = `detail/goods_detail/${i}`;
        if (!isObj(g)) throw new ParamError(p, '类型错误，应为对象', g);
        str(g, 'merchant_goods_id', p, { required: true, min: 1, max: 32 });
        str(g, 'wechatpay_goods_id', p, { max: 32 });
        str(g, 'goods_name', p, { max: 256 });
        int(g, 'quantity', p, true, 1);
        int(g, 'unit_price', p, true, 0);
      });
    }
  }

  let payerOpenid: string | undefined;
  if (type === 'JSAPI') {
    const payer = obj(body, 'payer', '', true)!;
    payerOpenid = str(payer, 'openid', 'payer', { required: true, min: 1, max: 128 });
  }

  let payerClientIp: string | undefined;
  const scene = obj(body, 'scene_info', '', type === 'H5');
  if (scene) {
    payerClientIp = str(scene, 'payer_client_ip', 'scene_info', { required: true, min: 1, max: 45 })!;
    if (isIP(payerClientIp) === 0) throw new ParamError('scene_info/payer_client_ip', '不是合法的IPv4或IPv6地址', payerClientIp);
    str(scene, 'device_id', 'scene_info', { max: 32 });
    const store = obj(scene, 'store_info', 'scene_info', false);
    if (store) {
      str(store, 'id', 'scene_info/store_info', { required: true, min: 1, max: 32 });
      str(store, 'name', 'scene_info/store_info', { max: 256 });
      str(store, 'area_code', 'scene_info/store_info', { max: 32 });
      str(store, 'address', 'scene_info/store_info', { max: 512 });
    }
    const h5 = obj(scene, 'h5_info', 'scene_info', type === 'H5');
    if (h5) {
      str(h5, 'type', 'scene_info/h5_info', { required: true, re: /^(Wap|iOS|Android)$/, reMsg: '场景类型只能是Wap、iOS、Android' });
      for (const k of ['app_name', 'app_url', 'bundle_id', 'package_name']) str(h5, k, 'scene_info/h5_info', { max: 256 });
    }
  }

  let profitSharing = false;
  const settle = obj(body, 'settle_info', '', false);
  if (settle) profitSharing = bool(settle, 'profit_sharing', 'settle_info') ?? false;

  return {
    appid,
    mchid,
    description,
    outTradeNo,
    timeExpire,
    timeExpireMs,
    attach,
    notifyUrl,
    amountTotal,
    currency: (currency ?? 'CNY') as 'CNY',
    payerOpenid,
    payerClientIp,
    profitSharing,
  };
}

/** Canonical JSON (sorted keys) for "same out_trade_no, same parameters". */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

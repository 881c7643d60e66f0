/**
 * APIv3 request authentication and answer signing.
 * Request: `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",timestamp="..",serial_no="..",signature=".."`
 * over `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n` with the RAW body bytes (SKILLS 签名与验签规则.md).
 */
import type { NextFunction, Request, Response } from 'express';
import { randomAlnum, randomHex, signSha256Rsa, verifySha256Rsa } from './sim-crypto';
import type { SimRuntime } from './runtime';

const SCHEMA = 'WECHATPAY2-SHA256-RSA2048';
const AUTH_FORMAT_MSG = 'Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》';

export function parseAuthorization(header: string | undefined): Record<string, string> | null {
  if (!header || !header.startsWith(SCHEMA + ' ')) return null;
  const rest = header.slice(SCHEMA.length + 1).trim();
  const out: Record<string, string> = {};
  // key="value" pairs separated by commas; values never contain quotes.
  const re = /\s*([a-z_]+)="([^"]*)"\s*(,|$)/gy;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(rest)) !== null) {
    if (out[m[1]!] !== undefined) return null;
    out[m[1]!] = m[2]!;
    consumed = re.lastIndex;
    if (m[3] === '') break;
  }
  if (consumed !== rest.length) return null;
  for (const k of ['mchid', 'nonce_str', 'timestamp', 'serial_no', 'signature']) if (!out[k]) return null;
  return out;
}

export function signHeaders(rt: SimRuntime, body: string): Record<string, string> {
  const ts = String(Math.floor(rt.now() / 1000));
  const nonce = randomAlnum(32);
  const { serial, key } = rt.signingIdentity();
  return {
    'Wechatpay-Timestamp': ts,
    'Wechatpay-Nonce': nonce,
    'Wechatpay-Signature': signSha256Rsa(`${ts}\n${nonce}\n${body}\n`, key),
    'Wechatpay-Serial': serial,
    'Wechatpay-Signature-Type': SCHEMA,
  };
}

/** Request-ID like WeChat's; error answers end in `-<numeric code>` (SKILLS 排障手册.md). */
function requestId(status: number): string {
  const base = randomHex(16).toUpperCase();
  return status >= 400 ? `${base}-${268435456 + status}` : base;
}

/** Writes a signed answer; honours a pending "after processing" fault on this response. */
export function reply(rt: SimRuntime, res: Response, status: number, body?: unknown): void {
  const fault = res.locals.simFault as { kind: 'fail' | 'timeout'; status: number; code: string; message: string } | undefined;
  if (fault) {
    res.locals.simFault = undefined;
    if (fault.kind === 'timeout') {
      rt.hung.add(res);
      return;
    }
    return fail(rt, res, fault.status, fault.code, fault.message);
  }
  const text = status === 204 || body === undefined ? '' : JSON.stringify(body);
  res.status(status);
  res.set(signHeaders(rt, text));
  res.set('Request-ID', requestId(status));
  if (text) res.set('Content-Type', 'application/json; charset=utf-8');
  res.end(text);
}

export function fail(rt: SimRuntime, res: Response, status: number, code: string, message: string, detail?: unknown): void {
  res.locals.simFault = undefined;
  reply(rt, res, status, detail === undefined ? { code, message } : { code, message, detail });
}

/**
 * Verifies Authorization over the raw body, then parses JSON. Must run after express.raw().
 * Leaves req.rawBody (string) and req.body (parsed object, {} when empty).
 */
export function authMiddleware(rt: SimRuntime) {
  return (req: Request, res: Response, next: NextFunction) => {
    const raw: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    (req as Request & { rawBody: string }).rawBody = raw.toString('utf8');
    req.body = {};
    const a = parseAuthorization(req.get('authorization'));
    if (!a) return rt.fail(res, 401, 'SIGN_ERROR', AUTH_FORMAT_MSG);
    if (a.mchid !== rt.opts.mchid) return rt.fail(res, 401, 'SIGN_ERROR', 'Http头Authorization中的mchid与商户号不匹配');
    // Exact serial; WeChat compares the upper-case hex serial of the merchant API certificate.
    if (a.serial_no !== rt.opts.merchantCertSerial)
      return rt.fail(res, 401, 'SIGN_ERROR', '商户证书序列号有误。请使用签名私钥匹配的证书序列号');
    if (!/^\d{1,12}$/.test(a.timestamp!)) return rt.fail(res, 401, 'SIGN_ERROR', AUTH_FORMAT_MSG);
    const skew = Math.abs(Math.floor(rt.now() / 1000) - Number(a.timestamp));
    if (skew >= rt.opts.maxClockSkewSeconds)
      return rt.fail(res, 401, 'SIGN_ERROR', 'Http头Authorization中的timestamp与当前时间相差过大（不得超过5分钟）');
    const message = Buffer.concat([
      Buffer.from(`${req.method}\n${req.originalUrl}\n${a.timestamp}\n${a.nonce_str}\n`, 'utf8'),
      raw,
      Buffer.from('\n'),
    ]);
    if (!verifySha256Rsa(message, a.signature!, rt.keys.merchantPublicKey))
      return rt.fail(res, 401, 'SIGN_ERROR', '错误的签名，验签失败');
    if (raw.length > 0) {
      // UNVERIFIED: exact code/message WeChat gives for a non-JSON body; PARAM_ERROR is the documented family.
      if (!/^application\/json\b/i.test(req.get('content-type') ?? ''))
        return rt.fail(res, 400, 'PARAM_ERROR', 'Content-Type必须为application/json');
      try {
        const parsed: unknown = JSON.parse(raw.toString('utf8'));
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
          return rt.fail(res, 400, 'PARAM_ERROR', '请求体必须是JSON对象');
        req.body = parsed;
      } catch {
        return rt.fail(res, 400, 'PARAM_ERROR', '请求体不是合法的JSON');
      }
    }
    next();
  };
}

/** Records every API call (method, path with query, parsed body, status) into ctx.calls. */
export function recordCalls(rt: SimRuntime) {
  return (req: Request, res: Response, next: NextFunction) => {
    let done = false;
    const record = () => {
      if (done) return;
      done = true;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      const body = req.body && !Buffer.isBuffer(req.body) ? req.body : {};
      rt.calls.push({ method: req.method, path: req.originalUrl, body, status: res.writableFinished ? res.statusCode : 0, at: rt.now(), headers });
    };
    res.on('finish', record);
    res.on('close', record);
    next();
  };
}

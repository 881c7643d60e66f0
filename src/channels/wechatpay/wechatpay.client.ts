/**
 * WeChat Pay APIv3 HTTP client: the npm package `wechatpay-node-v3` 2.2.1, WRAPPED.
 *
 * Taken from the SDK (sound as-is):
 *   - endpoint URLs and query strings (transactions_jsapi/h5/native, query, close, the profitsharing_*
 *     methods), the body it hands to the transport (our wire object plus its appid/mchid defaults),
 *     and the headers it assembles (Accept, Content-Type, User-Agent, and Wechatpay-Serial from
 *     `wx_serial_no` on receivers/add and profitsharing/orders — which we ALWAYS pass, see below);
 *   - `publicEncrypt` for the receiver name: crypto.publicEncrypt with RSA_PKCS1_OAEP_PADDING and
 *     oaepHash sha1, stateless; we hand it our KeyObject (FACTS §3/§5).
 *   - `createHttp`: every request goes through `VerifyingTransport` below.
 *
 * Replaced (node:crypto in wechatpay.crypto.ts), because the SDK's version is unsound:
 *   - request signing: `buildAuthorization` uses Math.random nonces, its own wall clock, strips the
 *     hard-coded host by string replace (signing a path that can differ from the percent-encoded one
 *     actually sent) and re-parses the PEM on each signature. We override it to emit a placeholder
 *     and sign in the transport over the exact method, path+query and body bytes that go on the wire,
 *     with a CSPRNG nonce and a KeyObject. The SDK is never given the merchant private key.
 *   - response verification: the SDK verifies nothing. The transport verifies EVERY 2xx answer
 *     (and every error answer that carries signature headers) before the SDK sees it.
 *   - host: hard-coded https://api.mch.weixin.qq.com; the transport rewrites it to the configured base URL.
 *   - timeouts: superagent without a timeout; the transport sends with node:http(s) on a keep-alive
 *     agent and one timer over the whole exchange (request, answer headers and body).
 *   - Wechatpay-Serial of encrypted requests: the SDK defaults it to the MERCHANT serial; we always
 *     pass `wx_serial_no` = id of the platform key that encrypted the name.
 *   - verifySign / decipher_gcm / get_certificates / sign / sha256WithRsa are disabled (throw or
 *     are no-ops): no tag check in GCM, no timestamp check, no public-key mode, global cert cache.
 *     JSAPI paySign is computed by us (the SDK's transactions_jsapi overwrites `data` with its own
 *     weakly-random paySign bundle; we read the verified answer from a symbol the SDK does not touch).
 */
import type { KeyObject } from 'node:crypto';
import { createPublicKey, constants as cryptoConstants } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import Pay from 'wechatpay-node-v3';
import type { Output } from 'wechatpay-node-v3/dist/lib/interface-v2';
import type { IPayRequest } from 'wechatpay-node-v3/dist/lib/pay-request.interface';
import type pino from 'pino';
import type { z } from 'zod';
import type { ChannelCallObserver } from '../channel';
import { ChannelError } from '../../lib/errors';
import {
  AUTH_SCHEMA,
  PlatformKeyRing,
  type PlatformKey,
  SignatureVerificationError,
  hasAnySignatureHeader,
  newNonce,
  readSignatureHeaders,
  requestSignMessage,
  signSha256Rsa,
  verifyWechatpaySignature,
} from './wechatpay.crypto';
import { badResponse, badResponseSignature, mapHttpError, networkError, timeoutError } from './wechatpay.errors';

/** The host the SDK hard-codes in every URL it builds. */
export const SDK_HOST = 'https://api.mch.weixin.qq.com';
const AUTH_PLACEHOLDER = 'SIGNED-BY-TRANSPORT';
const VERIFIED = Symbol('wechatpay.verifiedAnswer');

/**
 * node:http(s) with keep-alive rather than fetch: undici's Request/Headers/web streams cost 7–13% of a
 * first page's CPU (docs/performance.md). What fetch did is kept: the request line is the URL's
 * percent-encoded path+query (what is signed), redirects are never followed (a 3xx is an answer,
 * mapped as an error), one timeout covers the whole exchange, answers are decoded if compressed.
 */
// noDelay (passed on to net.connect; @types/node's AgentOptions lacks it): a request is written
// whole, so Nagle's algorithm can only hold a tail back (fetch disables it too).
const AGENT_OPTIONS = { keepAlive: true, maxSockets: 64, noDelay: true } as http.AgentOptions;
const AGENTS = {
  'http:': new http.Agent(AGENT_OPTIONS),
  'https:': new https.Agent(AGENT_OPTIONS),
};
/** Larger than any API answer or bill file we expect; beyond it the answer is dropped as a network error. */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

/** What the transport reads of an answer. */
interface Answer {
  status: number;
  header(name: string): string | null;
}

class ExchangeTimeout extends Error {
  override readonly name = 'TimeoutError';
}

function decode(raw: Buffer, encoding: string | undefined): Buffer {
  switch ((encoding ?? 'identity').trim().toLowerCase()) {
    case 'identity':
    case '':
      return raw;
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(raw);
    case 'deflate':
      return inflateSync(raw);
    case 'br':
      return brotliDecompressSync(raw);
    default:
      throw new Error(`unsupported content-encoding ${encoding}`);
  }
}

/** One request on the keep-alive agent; rejects with ExchangeTimeout when `timeoutMs` passes first. */
function httpExchange(method: 'GET' | 'POST', target: URL, body: string, headers: Record<string, string>, timeoutMs: number): Promise<{ res: Answer; raw: Buffer }> {
  return new Promise((resolve, reject) => {
    const secure = target.protocol === 'https:';
    if (!secure && target.protocol !== 'http:') {
      reject(new Error(`unsupported protocol ${target.protocol}`));
      return;
    }
    const payload = method === 'GET' ? undefined : Buffer.from(body, 'utf8');
    const reqHeaders: Record<string, string> = { ...headers, 'Accept-Encoding': 'gzip, deflate, br' };
    if (payload) reqHeaders['Content-Length'] = String(payload.length);
    let done = false;
    const settle = (err: unknown, value?: { res: Answer; raw: Buffer }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value!);
    };
    const req = (secure ? https : http).request(target, { method, headers: reqHeaders, agent: AGENTS[secure ? 'https:' : 'http:'] }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_ANSWER_BYTES) {
          req.destroy();
          settle(new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('error', (e) => settle(e));
      res.on('close', () => settle(new Error('answer ended early')));
      res.on('end', () => {
        let raw: Buffer;
        try {
          raw = decode(Buffer.concat(chunks, size), res.headers['content-encoding']);
        } catch (e) {
          settle(e);
          return;
        }
        const h = res.headers;
        settle(null, {
          res: {
            status: res.statusCode ?? 0,
            header: (name) => {
              const v = h[name.toLowerCase()];
              return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
            },
          },
          raw,
        });
      });
    });
    const timer = setTimeout(() => {
      const e = new ExchangeTimeout(`no complete answer within ${timeoutMs} ms`);
      settle(e);
      req.destroy(e);
    }, timeoutMs);
    req.on('error', (e) => settle(e));
    req.end(payload);
  });
}

export interface VerifiedAnswer {
  status: number;
  /** Parsed JSON of the verified raw body; undefined for an empty body (204). */
  json: unknown;
  requestId?: string;
}

type VerifiedOutput = Output & { [VERIFIED]: VerifiedAnswer };

export interface TransportOptions {
  baseUrl: string;
  mchid: string;
  merchantCertSerial: string;
  merchantKey: KeyObject;
  platformKeys: PlatformKeyRing;
  timeoutMs: number;
  clock: () => number;
  logger?: pino.Logger;
  /** Told of every call: endpoint template, 'ok' or the ChannelError code, seconds (metrics). */
  onCall?: ChannelCallObserver;
}

/**
 * The words of WeChat Pay API paths. Any other segment is an id (out_trade_no, transaction_id,
 * out_order_no, ...) and becomes `{id}`: endpoint labels stay a small fixed set whatever the traffic.
 */
const PATH_WORDS = new Set([
  'v3', 'pay', 'partner', 'transactions', 'jsapi', 'h5', 'native', 'app', 'out-trade-no', 'id', 'close',
  'profitsharing', 'orders', 'unfreeze', 'receivers', 'add', 'delete', 'amounts', 'return-orders', 'bills',
  'merchant-configs', 'refund', 'domestic', 'refunds', 'bill', 'tradebill', 'fundflowbill', 'billdownload', 'file',
  'certificates', 'abnormal-refunds', 'apply',
]);

/** `POST /v3/pay/transactions/out-trade-no/T123/close` -> `POST /v3/pay/transactions/out-trade-no/{id}/close` (no query). */
export function endpointLabel(method: string, pathname: string): string {
  return `${method} ${pathname.split('/').map((seg) => (seg === '' || PATH_WORDS.has(seg) ? seg : '{id}')).join('/')}`;
}

/** The SDK's `IPayRequest`: rewrite host → sign → send with timeout → verify → map errors. */
export class VerifyingTransport implements IPayRequest {
  private readonly base: string;

  constructor(private readonly o: TransportOptions) {
    this.base = o.baseUrl.replace(/\/+$/, '');
  }

  post(url: string, params: Record<string, unknown>, headers: Record<string, unknown>): Promise<Output> {
    return this.send('POST', url, JSON.stringify(params), headers);
  }

  get(url: string, headers: Record<string, unknown>): Promise<Output> {
    return this.send('GET', url, '', headers);
  }

  upload(): Promise<Output> {
    return Promise.reject(new ChannelError('CLIENT_ERROR', 'uploads are not supported', { retryable: false }));
  }

  /** Maps an SDK URL onto the configured base URL (which may carry a path prefix, e.g. a simulator mount). */
  rewrite(url: string): URL {
    if (url !== SDK_HOST && !url.startsWith(`${SDK_HOST}/`)) {
      throw new ChannelError('CLIENT_ERROR', `unexpected SDK URL ${url}`, { retryable: false });
    }
    return new URL(this.base + url.slice(SDK_HOST.length));
  }

  private async send(method: 'GET' | 'POST', sdkUrl: string, body: string, sdkHeaders: Record<string, unknown>): Promise<Output> {
    const target = this.rewrite(sdkUrl);
    return this.measured(method, target, () => this.call(method, target, body, sdkHeaders));
  }

  /** Every call (API and bill download) counted by endpoint template and result, with its latency. */
  private async measured<T>(method: 'GET' | 'POST', target: URL, run: () => Promise<T>): Promise<T> {
    if (!this.o.onCall) return run();
    const started = performance.now();
    let result = 'ok';
    try {
      return await run();
    } catch (err) {
      result = err instanceof ChannelError ? err.code : 'ERROR';
      throw err;
    } finally {
      this.o.onCall(endpointLabel(method, target.pathname), result, (performance.now() - started) / 1000);
    }
  }

  private async call(method: 'GET' | 'POST', target: URL, body: string, sdkHeaders: Record<string, unknown>): Promise<Output> {
    const what = `${method} ${target.pathname}`;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(sdkHeaders)) {
      if (k.toLowerCase() === 'accept-encoding') continue; // the transport negotiates and decodes itself
      headers[k] = String(v);
    }
    if (headers.Authorization !== AUTH_PLACEHOLDER) {
      throw new ChannelError('CLIENT_ERROR', 'request not built by GatewayPay', { retryable: false });
    }
    const { res, raw } = await this.exchange(method, target, body, headers, what);
    const requestId = res.header('request-id') ?? undefined;
    const ok = res.status >= 200 && res.status < 300;
    const sig = readSignatureHeaders((n) => res.header(n));
    // 2xx answers must be signed. WeChat's own SDKs do not verify error answers (401 SIGN_ERROR and
    // proxies' 5xx come unsigned), so an unsigned error is mapped as-is (detail.verified=false);
    // an error that does carry a signature must verify.
    let verified = false;
    if (ok || hasAnySignatureHeader(sig)) {
      try {
        verifyWechatpaySignature(this.o.platformKeys, sig, raw, this.o.clock());
        verified = true;
      } catch (err) {
        if (!(err instanceof SignatureVerificationError)) throw err;
        this.o.logger?.warn({ what, status: res.status, requestId, reason: err.reason, serial: sig.serial }, 'wechatpay answer failed verification');
        throw badResponseSignature(err.reason, `${what}: ${err.message}`, { httpStatus: res.status, requestId });
      }
    }

    let json: unknown;
    if (raw.length > 0) {
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        json = undefined;
        if (ok) throw badResponse(`${what}: answer is not JSON`, { httpStatus: res.status, requestId });
      }
    }
    this.o.logger?.debug({ what, status: res.status, requestId, verified }, 'wechatpay call');
    if (!ok) throw mapHttpError(res.status, json, { requestId, verified });

    const out: VerifiedOutput = { status: res.status, data: json, [VERIFIED]: { status: res.status, json, requestId } };
    return out;
  }

  /**
   * A bill file (GET /v3/billdownload/file?token=…): signed like every call, but its answer is the raw
   * file and carries no signature ("响应的信息请求头中不包含微信接口响应的签名值，因此需要跳过验签的流程",
   * FACTS-partner-bills §2.4); integrity comes from the SHA1 the signed bill answer gave. Error answers
   * are JSON and mapped like any other.
   */
  download(pathAndQuery: string): Promise<Buffer> {
    const target = new URL(this.base + pathAndQuery);
    return this.measured('GET', target, () => this.downloadFile(target));
  }

  private async downloadFile(target: URL): Promise<Buffer> {
    const what = `GET ${target.pathname}`;
    const { res, raw } = await this.exchange('GET', target, '', { Accept: '*/*', 'User-Agent': 'wxpay-checkout-gateway' }, what);
    if (res.status >= 200 && res.status < 300) return raw;
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      json = undefined;
    }
    throw mapHttpError(res.status, json, { requestId: res.header('request-id') ?? undefined, verified: false });
  }

  /** Signs (Authorization over the exact method, path+query and body bytes) and sends with the timeout. */
  private async exchange(method: 'GET' | 'POST', target: URL, body: string, headers: Record<string, string>, what: string): Promise<{ res: Answer; raw: Buffer }> {
    // The URL parser percent-encodes (e.g. '|' in out_trade_no) and node:http sends pathname + search
    // as they are: sign exactly the request line that is sent.
    const pathAndQuery = target.pathname + target.search;
    const timestamp = String(Math.floor(this.o.clock() / 1000));
    const nonce = newNonce();
    const signature = signSha256Rsa(this.o.merchantKey, requestSignMessage(method, pathAndQuery, timestamp, nonce, body));
    headers.Authorization =
      `${AUTH_SCHEMA} mchid="${this.o.mchid}",nonce_str="${nonce}",timestamp="${timestamp}",` +
      `serial_no="${this.o.merchantCertSerial}",signature="${signature}"`;

    try {
      return await httpExchange(method, target, body, headers, this.o.timeoutMs);
    } catch (err) {
      const name = (err as { name?: string } | null)?.name;
      if (name === 'TimeoutError' || name === 'AbortError') throw timeoutError(this.o.timeoutMs, what, err);
      throw networkError(err, what);
    }
  }
}

/** The SDK with its unsound parts switched off (see the header comment). */
export class GatewayPay extends Pay {
  protected override buildAuthorization(): string {
    return AUTH_PLACEHOLDER;
  }
  /** Only reached by transactions_jsapi/app building their own paySign bundle, which we discard. */
  protected override sign(): string {
    return '';
  }
  override sha256WithRsa(): string {
    throw new Error('GatewayPay: SDK signing is disabled (see wechatpay.client.ts)');
  }
  override verifySign(): Promise<boolean> {
    return Promise.reject(new Error('GatewayPay: use verifyWechatpaySignature (wechatpay.crypto.ts)'));
  }
  override decipher_gcm<T>(): T {
    throw new Error('GatewayPay: use decryptAeadAes256Gcm (wechatpay.crypto.ts); the SDK skips the GCM tag check');
  }
  override get_certificates(): never {
    throw new Error('GatewayPay: platform keys come from configuration');
  }
}

export interface ClientOptions extends TransportOptions {
  appid: string;
  userAgent?: string;
}

export class WechatPayClient {
  readonly sdk: GatewayPay;
  private readonly transport: VerifyingTransport;

  constructor(private readonly o: ClientOptions) {
    this.sdk = new GatewayPay({
      appid: o.appid,
      mchid: o.mchid,
      serial_no: o.merchantCertSerial,
      // Required truthy by the constructor; with serial_no given it is only stored, never parsed.
      publicKey: Buffer.from(createPublicKey(o.merchantKey).export({ type: 'spki', format: 'pem' })),
      // The SDK never signs (see GatewayPay), so it never gets the private key.
      privateKey: Buffer.alloc(0),
      userAgent: o.userAgent ?? 'wxpay-checkout-gateway',
    });
    this.transport = new VerifyingTransport(o);
    this.sdk.createHttp(this.transport);
  }

  /** Runs one SDK call and returns its verified answer, parsed with `schema`. */
  async call<S extends z.ZodType>(what: string, op: (sdk: GatewayPay) => Promise<unknown>, schema: S): Promise<z.output<S>> {
    const answer = await this.run(what, op);
    const parsed = schema.safeParse(answer.json);
    if (!parsed.success) {
      throw badResponse(`${what}: answer does not match the expected shape`, {
        httpStatus: answer.status,
        requestId: answer.requestId,
        issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
      });
    }
    return parsed.data;
  }

  /**
   * A call the SDK has no method for (the partner endpoints, /v3/pay/partner/...): same transport, so
   * the same signing, timeout and answer verification. `path` includes the query string.
   */
  async callPath<S extends z.ZodType>(what: string, method: 'GET' | 'POST', path: string, body: object | undefined, schema: S | null): Promise<z.output<S> | null> {
    const op = this.pathOp(method, path, body);
    if (!schema) {
      await this.run(what, op);
      return null;
    }
    return this.call(what, op, schema);
  }

  /** callPath for an answer whose status the caller inspects (e.g. 204 closed vs 202 USER_PAYING). */
  async callPathNoBody(what: string, method: 'GET' | 'POST', path: string, body: object | undefined): Promise<VerifiedAnswer> {
    return this.run(what, this.pathOp(method, path, body));
  }

  private pathOp(method: 'GET' | 'POST', path: string, body: object | undefined) {
    const headers = { Authorization: AUTH_PLACEHOLDER, Accept: 'application/json', 'Content-Type': 'application/json', 'User-Agent': this.o.userAgent ?? 'wxpay-checkout-gateway' };
    return () => (method === 'GET' ? this.transport.get(SDK_HOST + path, headers) : this.transport.post(SDK_HOST + path, (body ?? {}) as Record<string, unknown>, headers));
  }

  /** A bill file's raw bytes (unsigned answer: see VerifyingTransport.download). */
  download(pathAndQuery: string): Promise<Buffer> {
    return this.transport.download(pathAndQuery);
  }

  /** For calls whose (verified) answer body we do not depend on, e.g. 204 close. */
  async callNoBody(what: string, op: (sdk: GatewayPay) => Promise<unknown>): Promise<VerifiedAnswer> {
    return this.run(what, op);
  }

  /** The platform key for sensitive fields of one request; its id must go in that request's Wechatpay-Serial. */
  encryptionKey(): PlatformKey {
    return this.o.platformKeys.encryptionKey(new Date(this.o.clock()));
  }

  /** RSA-OAEP (SHA-1, as WeChat) with `key`, base64. */
  encryptSensitive(plain: string, key: PlatformKey): string {
    // The SDK types the key as Buffer; node:crypto accepts the KeyObject.
    return this.sdk.publicEncrypt(plain, key.key as unknown as Buffer, cryptoConstants.RSA_PKCS1_OAEP_PADDING);
  }

  private async run(what: string, op: (sdk: GatewayPay) => Promise<unknown>): Promise<VerifiedAnswer> {
    let out: unknown;
    try {
      out = await op(this.sdk);
    } catch (err) {
      if (err instanceof ChannelError) throw err;
      throw new ChannelError('CLIENT_ERROR', `${what}: ${(err as Error)?.message ?? String(err)}`, { retryable: false, cause: err });
    }
    const answer = (out as Partial<VerifiedOutput> | undefined)?.[VERIFIED];
    if (!answer) throw new ChannelError('CLIENT_ERROR', `${what}: answer bypassed the verifying transport`, { retryable: false });
    return answer;
  }
}

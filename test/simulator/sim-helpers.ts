/**
 * Test-side protocol code for the simulator tests, written with plain node:crypto on purpose
 * (neither src/channels nor the simulator's own helpers), so a shared mistake cannot hide.
 */
import { createDecipheriv, createSign, createVerify, randomBytes, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import type { Express } from 'express';
import { generateSimKeys, type SandboxKeys } from '../../src/simulator/keys';

let cached: SandboxKeys | undefined;
/** RSA generation is slow; tests share one key set. */
export function testKeys(): SandboxKeys {
  return (cached ??= generateSimKeys());
}

export const MCHID = '1900000109';
export const APPID = 'wxd678efh567hg6787';

export function authorization(
  keys: { merchantPrivateKey: KeyObject; merchantCertSerial: string },
  o: { method: string; url: string; body?: string; mchid?: string; serial?: string; timestamp?: number; nonce?: string; key?: KeyObject },
): string {
  const ts = String(o.timestamp ?? Math.floor(Date.now() / 1000));
  const nonce = o.nonce ?? randomBytes(16).toString('hex');
  const msg = `${o.method}\n${o.url}\n${ts}\n${nonce}\n${o.body ?? ''}\n`;
  const sig = createSign('RSA-SHA256').update(msg).sign(o.key ?? keys.merchantPrivateKey, 'base64');
  return `WECHATPAY2-SHA256-RSA2048 mchid="${o.mchid ?? MCHID}",nonce_str="${nonce}",timestamp="${ts}",serial_no="${o.serial ?? keys.merchantCertSerial}",signature="${sig}"`;
}

export interface ApiAnswer {
  status: number;
  text: string;
  json: any;
  headers: Record<string, string>;
}

/** A correctly signed APIv3 call through supertest. */
export async function api(app: Express, method: 'GET' | 'POST', url: string, body?: unknown, o: Partial<Parameters<typeof authorization>[1]> = {}, headers: Record<string, string> = {}): Promise<ApiAnswer> {
  const keys = testKeys();
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const auth = authorization(keys, { method, url, body: text, ...o });
  let req = method === 'GET' ? request(app).get(url) : request(app).post(url);
  req = req.set('Authorization', auth).set('Accept', 'application/json').set('User-Agent', 'sim-test').set(headers);
  if (text) req = req.set('Content-Type', 'application/json').send(text);
  const res = await req.buffer(true).parse((r, cb) => {
    let data = '';
    r.setEncoding('utf8');
    r.on('data', (c: string) => (data += c));
    r.on('end', () => cb(null, data));
  });
  const raw = typeof res.body === 'string' ? res.body : '';
  return { status: res.status, text: raw, json: raw ? JSON.parse(raw) : undefined, headers: res.headers as Record<string, string> };
}

/** Verifies Wechatpay-* headers over `ts\nnonce\nbody\n` with the given public key. */
export function verifyWechatpaySignature(headers: Record<string, string | string[] | undefined>, body: string, publicKey: KeyObject): boolean {
  const h = (k: string) => String(headers[k.toLowerCase()] ?? '');
  const msg = `${h('Wechatpay-Timestamp')}\n${h('Wechatpay-Nonce')}\n${body}\n`;
  return createVerify('RSA-SHA256').update(msg).verify(publicKey, Buffer.from(h('Wechatpay-Signature'), 'base64'));
}

export function decryptResource(apiv3Key: string, r: { ciphertext: string; nonce: string; associated_data: string }): string {
  const buf = Buffer.from(r.ciphertext, 'base64');
  const d = createDecipheriv('aes-256-gcm', Buffer.from(apiv3Key, 'utf8'), Buffer.from(r.nonce, 'utf8'));
  d.setAAD(Buffer.from(r.associated_data, 'utf8'));
  d.setAuthTag(buf.subarray(buf.length - 16));
  return Buffer.concat([d.update(buf.subarray(0, buf.length - 16)), d.final()]).toString('utf8');
}

export function paySign(key: KeyObject, appId: string, timeStamp: string, nonceStr: string, pkg: string): string {
  return createSign('RSA-SHA256').update(`${appId}\n${timeStamp}\n${nonceStr}\n${pkg}\n`).sign(key, 'base64');
}

export interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A merchant notify endpoint on 127.0.0.1:0 whose answer status tests can script. */
export async function notifyReceiver(answer: (n: number, r: Received) => number = () => 200) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const r = { headers: req.headers, body, at: Date.now() };
      received.push(r);
      res.statusCode = answer(received.length, r);
      res.end(res.statusCode < 300 ? '' : '{"code":"FAIL","message":"失败"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/notify/wechatpay`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export function jsapiOrder(outTradeNo: string, extra: Record<string, unknown> = {}) {
  return {
    appid: APPID,
    mchid: MCHID,
    description: '测试商品',
    out_trade_no: outTradeNo,
    notify_url: 'http://127.0.0.1:9/notify/wechatpay',
    amount: { total: 100, currency: 'CNY' },
    payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
    ...extra,
  };
}

export function h5Order(outTradeNo: string, extra: Record<string, unknown> = {}) {
  const { payer: _p, ...base } = jsapiOrder(outTradeNo);
  return { ...base, scene_info: { payer_client_ip: '127.0.0.1', h5_info: { type: 'Wap' } }, ...extra };
}

export function nativeOrder(outTradeNo: string, extra: Record<string, unknown> = {}) {
  const { payer: _p, ...base } = jsapiOrder(outTradeNo);
  return { ...base, ...extra };
}

import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import type * as Rfa from 'request-filtering-agent' with { 'resolution-mode': 'import' };
import { Webhook } from 'standardwebhooks';

/** Answers are read up to this many bytes, then the connection is cut. */
export const MAX_ANSWER_BYTES = 64 * 1024;
/** What an attempt keeps of the answer (GET /v1/events/{id}). */
export const KEPT_ANSWER_BYTES = 1024;

// An ESM-only package: Node ≥ 20.19 require()s it (and jest transforms it, see jest.config.js).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } = require('request-filtering-agent') as typeof Rfa;

const LOOPBACK = ['127.0.0.0/8', '::1/128'];

/** Ranges never reachable by a webhook in production (checked again at connect time by the agent). */
function blockedRanges(allowLoopback: boolean): BlockList {
  const b = new BlockList();
  for (const [net, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const)
    b.addSubnet(net, bits, 'ipv4');
  for (const [net, bits] of [['::', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) b.addSubnet(net, bits, 'ipv6');
  if (!allowLoopback) {
    b.addSubnet('127.0.0.0', 8, 'ipv4');
    b.addSubnet('::1', 128, 'ipv6');
  }
  return b;
}

/**
 * Registration-time check of a URL whose host is an IP literal (a friendly 4xx early). Host names
 * are only resolved at connect time, by the filtering agent, so DNS cannot rebind around it.
 */
export function refusedAddress(url: string, allowLoopback: boolean): string | null {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  const family = isIP(host);
  if (family === 0) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host)?.[1];
  const [addr, type] = mapped ? [mapped, 'ipv4' as const] : [host, family === 4 ? ('ipv4' as const) : ('ipv6' as const)];
  return blockedRanges(allowLoopback).check(addr, type) ? `${host} is a private, loopback or link-local address` : null;
}

/**
 * The Standard Webhooks `webhook-signature` header: one `v1,<base64>` per secret (the current one,
 * plus the previous one during its 24 h rotation overlap), signed with the `standardwebhooks` library.
 */
export function signatureHeader(secrets: string[], msgId: string, at: Date, body: string): string {
  return secrets.map((s) => new Webhook(s).sign(msgId, at, body)).join(' ');
}

export interface SendResult {
  httpStatus: number | null;
  /** First KEPT_ANSWER_BYTES of the answer (utf-8, possibly cut mid-character). */
  response: string | null;
  error: string | null;
  durationMs: number;
}

export interface Sender {
  send(url: string, headers: Record<string, string>, body: string): Promise<SendResult>;
  close(): void;
}

/**
 * POSTs a webhook: private/link-local (and, unless allowed, loopback) addresses refused when the
 * socket connects (request-filtering-agent checks the resolved address), no redirect followed
 * (node:http never follows), the whole exchange bounded by `timeoutMs`, the answer cut at 64 KB.
 */
export function createSender(opts: { timeoutMs: number; allowLoopback: boolean }): Sender {
  const filter = { allowPrivateIPAddress: false, allowMetaIPAddress: false, allowIPAddressList: opts.allowLoopback ? LOOPBACK : [] };
  const agents = {
    http: new RequestFilteringHttpAgent({ keepAlive: true, maxSockets: 16, ...filter }),
    https: new RequestFilteringHttpsAgent({ keepAlive: true, maxSockets: 16, ...filter }),
  };
  return {
    send(url, headers, body) {
      const started = performance.now();
      const u = new URL(url);
      const mod = u.protocol === 'https:' ? https : http;
      return new Promise<SendResult>((resolve) => {
        let settled = false;
        const done = (r: Omit<SendResult, 'durationMs'>) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ ...r, durationMs: Math.round(performance.now() - started) });
        };
        const req = mod.request(
          u,
          {
            method: 'POST',
            agent: u.protocol === 'https:' ? agents.https : agents.http,
            headers: { 'content-type': 'application/json', 'user-agent': 'wxpay-checkout-gateway-webhooks/1', 'content-length': String(Buffer.byteLength(body)), ...headers },
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            const finish = () => {
              const kept = Buffer.concat(chunks).subarray(0, KEPT_ANSWER_BYTES).toString('utf8');
              done({ httpStatus: res.statusCode ?? null, response: kept, error: size > MAX_ANSWER_BYTES ? 'answer cut at 64 KB' : null });
            };
            res.on('data', (c: Buffer) => {
              if (size < KEPT_ANSWER_BYTES) chunks.push(c);
              size += c.length;
              if (size > MAX_ANSWER_BYTES) {
                finish();
                res.destroy();
              }
            });
            res.on('end', finish);
            res.on('error', (e) => done({ httpStatus: res.statusCode ?? null, response: null, error: e.message }));
          },
        );
        const timer = setTimeout(() => {
          done({ httpStatus: null, response: null, error: `no answer within ${opts.timeoutMs} ms` });
          req.destroy();
        }, opts.timeoutMs);
        req.on('error', (e) => done({ httpStatus: null, response: null, error: e.message.slice(0, 500) }));
        req.end(body);
      });
    },
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

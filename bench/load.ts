/**
 * The load generator of `npm run bench`, in its own process (so its CPU is not the gateway's):
 * autocannon with 20 connections and unique requests. Argument: one JSON `LoadSpec`. Prints
 * `READY` once its requests are prepared (notifies are signed beforehand, as WeChat would sign them)
 * and one JSON `LoadResult` line at the end. It stops early when its unique requests run out.
 */
import { createCipheriv, createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';

export type Scenario = 'create' | 'page' | 'full' | 'notify' | 'notify-dup';

export interface LoadSpec {
  url: string;
  scenario: Scenario;
  /** The gateway's routes, or the limit process's (bench/limit.ts: one request per operation). */
  target: 'gateway' | 'limit';
  durationS: number;
  connections: number;
  /** Fixed overall rate (req/s); unset = as fast as the server answers. */
  rate?: number;
  apiKey?: string;
  userAgent?: string;
  /** page: checkout ids `co_<letter><19 digits>` from..from+count-1. */
  pageKind?: 'h5' | 'jsapi';
  idLetter?: string;
  from?: number;
  count?: number;
  /** notify: out_trade_no `<prefix><n>`, amount, mchid/appid and the keys WeChat signs with. */
  outTradePrefix?: string;
  amountFen?: number;
  mchid?: string;
  appid?: string;
  keysDir?: string;
  runTag: string;
}

export interface LoadResult {
  /** Completed operations per second (a full checkout counts once for its two requests). */
  rate: number;
  /** CPU ms of this load generator (autocannon) during the run, per operation. */
  cpuMsPerOp: number;
  /** Its CPU time over the run's wall time: near 1 = it saturated a core and may be the bottleneck. */
  cpuShare: number;
  p50: number;
  p99: number;
  requests: number;
  ops: number;
  non2xx: number;
  errors: number;
  durationS: number;
}

export const checkoutIdOf = (letter: string, n: number) => `co_${letter}${String(n).padStart(19, '0')}`;

const WECHAT_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 11_2_6 like Mac OS X) AppleWebKit/604.5.6 (KHTML, like Gecko) Mobile/15D100 MicroMessenger/6.6.5 NetType/WIFI Language/zh_CN';

/** A payment notify exactly as WeChat builds it (README "Sandbox keys"), independent of src/channels. */
export function buildNotify(k: { platformKey: KeyObject; apiv3Key: string; serial: string }, tx: Record<string, unknown>) {
  const nonce = randomBytes(6).toString('hex');
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(k.apiv3Key, 'utf8'), Buffer.from(nonce, 'utf8'));
  cipher.setAAD(Buffer.from('transaction', 'utf8'));
  const ct = Buffer.concat([cipher.update(JSON.stringify(tx), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  const body = JSON.stringify({
    id: `EV-${randomBytes(8).toString('hex')}`,
    create_time: new Date().toISOString().slice(0, 19) + '+00:00',
    resource_type: 'encrypt-resource',
    event_type: 'TRANSACTION.SUCCESS',
    summary: '支付成功',
    resource: { original_type: 'transaction', algorithm: 'AEAD_AES_256_GCM', ciphertext: ct.toString('base64'), associated_data: 'transaction', nonce },
  });
  const ts = String(Math.floor(Date.now() / 1000));
  const hnonce = randomBytes(16).toString('hex');
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'wechatpay-timestamp': ts,
      'wechatpay-nonce': hnonce,
      'wechatpay-signature': sign('sha256', Buffer.from(`${ts}\n${hnonce}\n${body}\n`), k.platformKey).toString('base64'),
      'wechatpay-serial': k.serial,
      'wechatpay-signature-type': 'WECHATPAY2-SHA256-RSA2048',
    },
  };
}

function notifies(spec: LoadSpec): { body: string; headers: Record<string, string> }[] {
  const dir = spec.keysDir!;
  const k = {
    platformKey: createPrivateKey(readFileSync(join(dir, 'platform_private_key.pem'))),
    apiv3Key: readFileSync(join(dir, 'apiv3_key'), 'utf8').trim(),
    serial: readFileSync(join(dir, 'platform_public_key_id'), 'utf8').trim(),
  };
  const out = [];
  for (let i = 0; i < spec.count!; i++) {
    const n = spec.from! + i;
    out.push(buildNotify(k, {
      mchid: spec.mchid, appid: spec.appid, out_trade_no: `${spec.outTradePrefix}${n}`,
      transaction_id: `42000${spec.runTag}${String(n).padStart(12, '0')}`, trade_type: 'NATIVE', trade_state: 'SUCCESS',
      trade_state_desc: '支付成功', bank_type: 'OTHERS', attach: '', success_time: new Date().toISOString().slice(0, 19) + '+00:00',
      payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
      amount: { total: spec.amountFen, payer_total: spec.amountFen, currency: 'CNY', payer_currency: 'CNY' },
    }));
  }
  return out;
}

async function main() {
  const spec = JSON.parse(process.argv[2]!) as LoadSpec;
  const auth = { authorization: `Bearer ${spec.apiKey}`, 'content-type': 'application/json' };
  let seq = 0;
  let exhausted = false;
  const createBody = (openid?: string) =>
    JSON.stringify({ out_trade_no: `b${spec.runTag}_${seq++}`, amount: 100, description: 'bench', ...(openid ? { payer: { openid } } : {}) });
  let requests: autocannon.Request[];
  let perOp = 1;
  const limit = spec.target === 'limit';
  const json = { 'content-type': 'application/json' };
  switch (spec.scenario) {
    case 'create':
      requests = [{ method: 'POST', path: limit ? '/create' : '/v1/checkouts', headers: limit ? json : auth, setupRequest: (r) => ({ ...r, body: createBody() }) }];
      break;
    case 'page': {
      let i = 0;
      const prefix = limit ? `/page-${spec.pageKind}/` : '/checkout/';
      requests = [{
        method: 'GET', headers: { 'user-agent': spec.userAgent!, accept: 'text/html' },
        setupRequest: (r) => {
          if (i >= spec.count!) exhausted = true;
          return { ...r, path: `${prefix}${checkoutIdOf(spec.idLetter!, spec.from! + Math.min(i++, spec.count! - 1))}` };
        },
      }];
      break;
    }
    case 'full':
      if (limit) {
        requests = [{ method: 'POST', path: '/checkout', headers: json, setupRequest: (r) => ({ ...r, body: createBody('oUpF8uMuAJO_M2pxb1Q9zNjWeS6o') }) }];
        break;
      }
      // Create with payer.openid (the merchant knows its shopper), then the shopper's first JSAPI page load.
      perOp = 2;
      requests = [
        { method: 'POST', path: '/v1/checkouts', headers: auth, setupRequest: (r) => ({ ...r, body: createBody('oUpF8uMuAJO_M2pxb1Q9zNjWeS6o') }),
          onResponse: (_s, body, ctx) => { ctx.id = (JSON.parse(body) as { id: string }).id; } },
        { method: 'GET', headers: { 'user-agent': WECHAT_UA, accept: 'text/html' }, setupRequest: (r, ctx) => ({ ...r, path: `/checkout/${String(ctx!.id)}` }) },
      ];
      break;
    case 'notify': {
      const list = notifies(spec);
      let i = 0;
      requests = [{
        method: 'POST', path: limit ? '/notify' : '/notify/wechatpay/transactions',
        setupRequest: (r) => {
          if (i >= list.length) exhausted = true;
          const n = list[Math.min(i++, list.length - 1)]!;
          return { ...r, headers: n.headers, body: n.body };
        },
      }];
      break;
    }
    case 'notify-dup': {
      const n = notifies({ ...spec, count: 1 })[0]!;
      requests = [{ method: 'POST', path: limit ? '/notify' : '/notify/wechatpay/transactions', headers: n.headers, body: n.body }];
      break;
    }
  }
  process.stdout.write('READY\n');
  const started = Date.now();
  const cpu0 = process.cpuUsage();
  const inst = autocannon({
    url: spec.url, connections: spec.connections, duration: spec.durationS, requests,
    ...(spec.rate ? { overallRate: Math.max(1, Math.round(spec.rate * perOp)) } : {}),
  });
  const timer = setInterval(() => {
    if (exhausted) inst.stop();
  }, 50);
  const r = await inst;
  clearInterval(timer);
  const durationS = Math.min(r.duration ?? (Date.now() - started) / 1000, (Date.now() - started) / 1000);
  const ok = r['2xx'];
  const used = process.cpuUsage(cpu0);
  const cpuMs = (used.user + used.system) / 1000;
  const out: LoadResult = {
    rate: ok / perOp / durationS, cpuMsPerOp: cpuMs / Math.max(1, Math.floor(ok / perOp)), cpuShare: cpuMs / (durationS * 1000), p50: r.latency.p50, p99: r.latency.p99, requests: r.requests.total, ops: Math.floor(ok / perOp),
    non2xx: r.non2xx, errors: r.errors + r.timeouts, durationS,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (require.main === module)
  main().catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });

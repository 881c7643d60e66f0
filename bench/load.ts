/**
 * The load generator of `npm run bench`, in its own process (so its CPU is not the gateway's):
 * autocannon with 20 connections and unique requests. Argument: one JSON `LoadSpec`. Prints
 * `READY` once its requests are prepared (notifies are signed beforehand, as WeChat would sign them)
 * and one JSON `LoadResult` line at the end. It stops early when its unique requests run out.
 */
import { createCipheriv, createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
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
  /**
   * Fixed rate (operations/s), evenly paced by `paced()` below, not by autocannon: autocannon's
   * `overallRate` gives each connection a quota that refills every second, so a "half rate" run
   * sends each second's requests in a burst at its start and measures a queue. Unset = as fast as
   * the server answers (autocannon, 20 connections).
   */
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
  let r: { ok: number; non2xx: number; errors: number; total: number; p50: number; p99: number; durationS: number };
  if (spec.rate) {
    r = await paced(spec, requests, () => exhausted);
  } else {
    const inst = autocannon({ url: spec.url, connections: spec.connections, duration: spec.durationS, requests });
    const timer = setInterval(() => {
      if (exhausted) inst.stop();
    }, 50);
    const a = await inst;
    clearInterval(timer);
    r = { ok: a['2xx'], non2xx: a.non2xx, errors: a.errors + a.timeouts, total: a.requests.total, p50: a.latency.p50, p99: a.latency.p99, durationS: a.duration ?? (Date.now() - started) / 1000 };
  }
  const durationS = Math.min(r.durationS, (Date.now() - started) / 1000);
  const ok = r.ok;
  const used = process.cpuUsage(cpu0);
  const cpuMs = (used.user + used.system) / 1000;
  const out: LoadResult = {
    rate: ok / perOp / durationS, cpuMsPerOp: cpuMs / Math.max(1, Math.floor(ok / perOp)), cpuShare: cpuMs / (durationS * 1000), p50: r.p50, p99: r.p99, requests: r.total, ops: Math.floor(ok / perOp),
    non2xx: r.non2xx, errors: r.errors, durationS,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/**
 * An open-loop load at `spec.rate` operations per second, evenly spaced: operation k is due at
 * start + k / rate, whatever happened to the ones before (no coordinated omission). An operation's
 * requests run in order over a keep-alive agent of `spec.connections` sockets; a request's latency
 * counts from when it was due (the first: the operation's due time; the next: the end of the one
 * before), so waiting for a free socket is latency too.
 */
async function paced(spec: LoadSpec, steps: autocannon.Request[], exhausted: () => boolean) {
  const target = new URL(spec.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections, noDelay: true } as http.AgentOptions);
  const latencies: number[] = [];
  // The generator's own start (sockets opening, its code compiling) is not the server's latency:
  // operations due in the first tenth of the run (at most a second) count for the rate, not the percentiles.
  let measureFrom = Infinity;
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  // BENCH_TAIL_TRACE=1: where the slow requests of a paced run fall in time, beside how late this
  // generator itself sent them (its own scheduling on the shared cores), printed to stderr.
  const trace = process.env.BENCH_TAIL_TRACE === '1';
  const slow: Array<{ t: number; lat: number; late: number }> = [];
  const send = (req: autocannon.Request, dueAt: number) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const body = req.body === undefined ? undefined : Buffer.from(String(req.body));
      const headers = { ...(req.headers ?? {}), ...(body ? { 'content-length': String(body.length) } : {}) };
      const sentAt = performance.now();
      const out = http.request({ host: target.hostname, port: target.port, method: req.method ?? 'GET', path: req.path ?? '/', headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const latency = performance.now() - dueAt;
          if (dueAt >= measureFrom) latencies.push(latency);
          if (trace && dueAt >= measureFrom && latency > 25) slow.push({ t: dueAt - t0, lat: latency, late: sentAt - dueAt });
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      });
      out.on('error', reject);
      out.end(body);
    });
  const operation = async (dueAt: number) => {
    const ctx: Record<string, unknown> = {};
    let due = dueAt;
    for (const step of steps) {
      const req = step.setupRequest ? (step.setupRequest({ ...step }, ctx) as autocannon.Request) : step;
      try {
        const res = await send(req, due);
        if (res.status < 200 || res.status >= 300) return void non2xx++;
        ok++;
        step.onResponse?.(res.status, res.body, ctx);
      } catch {
        return void errors++;
      }
      due = performance.now();
    }
  };
  const interval = 1000 / spec.rate!;
  const t0 = performance.now();
  const end = t0 + spec.durationS * 1000;
  measureFrom = t0 + Math.min(1000, spec.durationS * 100);
  const inFlight = new Set<Promise<void>>();
  let k = 0;
  await new Promise<void>((done) => {
    const tick = () => {
      const now = performance.now();
      for (let due = t0 + k * interval; due <= now && due < end && !exhausted(); due = t0 + ++k * interval) {
        const p = operation(due).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      if (now >= end || exhausted()) return done();
      setTimeout(tick, Math.max(0, t0 + k * interval - performance.now()));
    };
    tick();
  });
  const durationS = (performance.now() - t0) / 1000;
  await Promise.race([Promise.all(inFlight), new Promise((r) => setTimeout(r, 10_000))]);
  agent.destroy();
  if (trace) {
    const buckets = new Map<number, { n: number; lat: number; late: number }>();
    for (const x of slow) {
      const b = buckets.get(Math.floor(x.t / 100)) ?? { n: 0, lat: 0, late: 0 };
      buckets.set(Math.floor(x.t / 100), { n: b.n + 1, lat: Math.max(b.lat, x.lat), late: Math.max(b.late, x.late) });
    }
    process.stderr.write(`[load] ${spec.scenario} at ${spec.rate!.toFixed(0)}/s from ${new Date(Date.now() - (performance.now() - t0)).toISOString()}: ${slow.length} of ${latencies.length} requests over 25 ms; by 100 ms of the run (count, worst ms, the generator's worst lateness ms):\n` +
      [...buckets].sort((a, b) => a[0] - b[0]).map(([k, b]) => `  ${(k / 10).toFixed(1)} s: ${b.n} × ≤${b.lat.toFixed(0)} ms, late ≤${b.late.toFixed(0)} ms`).join('\n') + '\n');
  }
  latencies.sort((a, b) => a - b);
  const pct = (q: number) => (latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!) : 0);
  return { ok, non2xx, errors, total: ok + non2xx + errors, p50: pct(0.5), p99: pct(0.99), durationS };
}

if (require.main === module)
  main().catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });

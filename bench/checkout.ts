/**
 * Throughput of the checkout paths against a local gateway + simulator, with autocannon:
 *   1. POST /v1/checkouts            (auth, validation, one insert)
 *   2. GET /checkout/{id} desktop    (page decision, channel order reused, QR rendered)
 *   3. POST /notify (duplicate copy) (raw log insert, verify, decrypt, apply → duplicate)
 * Run: node --import tsx bench/checkout.ts   (starts its own PostgreSQL and Redis in a temp dir)
 */
import { cpus } from 'node:os';
import autocannon from 'autocannon';
import { loadConfig } from '../src/config/config';
import { SANDBOX_APP_SECRET, sandboxEnv } from '../src/config/sandbox';
import { buildDeps, startGateway } from '../src/gateway';
import { createMerchant } from '../src/modules/merchants/merchant.service';
import { startSimulator } from '../src/simulator/app';
import { loadOrCreateSandboxKeys } from '../src/simulator/keys';
import { freePort } from '../scripts/services';
import { startBenchServices } from './services';
import { runMain, stopInOrder } from './proc';

const DURATION = Number(process.argv[2] ?? 10);
const KEY = 'sk_bench_merchant_key_00000001';

async function run(title: string, opts: autocannon.Options) {
  const r = await autocannon({ duration: DURATION, connections: 20, ...opts });
  const line = `${title.padEnd(34)} ${Math.round(r.requests.average).toString().padStart(6)} req/s  p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms  non-2xx ${r.non2xx}  errors ${r.errors}`;
  process.stdout.write(`${line}\n`);
  return line;
}

async function main() {
  const services = await startBenchServices('', { ephemeral: true });
  const { pg, redis, keysDir } = services;
  const keys = loadOrCreateSandboxKeys(keysDir);
  const sim = await startSimulator({ keys, appSecret: SANDBOX_APP_SECRET, notifyUrlPolicy: 'any-no-query', h5Domains: ['127.0.0.1'] });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    ...sandboxEnv({ keysDir, simulatorUrl: sim.url, databaseUrl: pg.url, redisUrl: redis.url, port, publicBaseUrl: url }),
    LOG_LEVEL: 'silent',
    RUN_WORKERS: 'false',
  });
  const deps = buildDeps(config);
  await createMerchant(deps.prisma, { id: 'mch_bench', name: 'Bench', apiKey: KEY });
  const gw = await startGateway(config, deps);
  const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };

  const results: string[] = [];
  let n = 0;
  results.push(await run('POST /v1/checkouts', {
    url: `${url}/v1/checkouts`, method: 'POST', headers: auth,
    requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify({ out_trade_no: `B${Date.now()}_${n++}`, amount: 100, description: 'bench' }) }) }],
  }));

  const created = await fetch(`${url}/v1/checkouts`, { method: 'POST', headers: auth, body: JSON.stringify({ out_trade_no: `P${Date.now()}`, amount: 100, description: 'bench' }) }).then((r) => r.json() as Promise<{ id: string }>);
  const desktop = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/84.0.4147.89 Safari/537.36';
  await fetch(`${url}/checkout/${created.id}`, { headers: { 'user-agent': desktop } });
  results.push(await run('GET /checkout/{id} (desktop, QR)', { url: `${url}/checkout/${created.id}`, headers: { 'user-agent': desktop } }));

  // Capture one real notify from the simulator, then replay it (WeChat's retries are exactly that).
  const order = await deps.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: created.id } });
  sim.control.pay(order.outTradeNo);
  await sim.control.waitFor(() => sim.control.notifyRecords.some((r) => r.delivered), 5000);
  const rec = sim.control.notifyRecords.find((r) => r.delivered)!;
  const log = await deps.prisma.notifyLog.findFirstOrThrow({ where: { outTradeNo: order.outTradeNo } });
  results.push(await run('POST /notify (duplicate copies)', {
    url: `${url}/notify/wechatpay/transactions`, method: 'POST', body: rec.body,
    headers: { ...(log.headers as Record<string, string>), 'content-type': 'application/json' },
  }));

  process.stdout.write(`\nmachine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, ${DURATION}s per run, 20 connections\n`);
  await stopInOrder(() => gw.close(), () => sim.close(), services.stop);
}

runMain(main);

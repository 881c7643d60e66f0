/**
 * Webhook delivery benchmark (issue 9): one gateway process (this one: API + dispatcher, default
 * WEBHOOK_POLL_MS and WEBHOOK_CONCURRENCY) delivering to a local receiver in its own process that
 * verifies every signature with `standardwebhooks`.
 *   1. Idle latency: one checkout closed at a time through the API; time from the state change (the
 *      event row's created_at, written in the closing transaction) to the receiver's receipt.
 *   2. Throughput: EVENTS events over CHECKOUTS checkouts published while the dispatcher is stopped
 *      (order per checkout holds, so each checkout's events go one after another); deliveries/s from
 *      the dispatcher's start to the last receipt. Rendering each event's checkout JSON is part of it.
 *   3. The limit in the same run: a bare node:http sender signing the same bodies with
 *      `standardwebhooks`, with the dispatcher's concurrency, to the same receiver (no database).
 * Run: node --import tsx bench/webhooks.ts [events=2000] [checkouts=200] [idle samples=60]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { loadConfig } from '../src/config/config';
import { SANDBOX_APP_SECRET, sandboxEnv } from '../src/config/sandbox';
import { buildDeps, startBackground, startGateway } from '../src/gateway';
import { createMerchant } from '../src/modules/merchants/merchant.service';
import { publishEvent } from '../src/modules/webhooks/webhook.publish';
import { signatureHeader } from '../src/modules/webhooks/webhook.sender';
import { startSimulator } from '../src/simulator/app';
import { loadOrCreateSandboxKeys } from '../src/simulator/keys';
import { freePort } from '../scripts/services';
import { startBenchServices } from './services';
import { quantile, runMain, stopInOrder, treeCpuMs } from './proc';

const EVENTS = Number(process.argv[2] ?? 2000);
const CHECKOUTS = Number(process.argv[3] ?? 200);
const IDLE = Number(process.argv[4] ?? 60);
const KEY = 'sk_bench_merchant_key_00000001';

const pct = (xs: number[], p: number) => quantile(xs, p / 100);

async function main() {
  const services = await startBenchServices('wh-');
  const { pg, redis, keysDir } = services;
  const sim = await startSimulator({ keys: loadOrCreateSandboxKeys(keysDir), appSecret: SANDBOX_APP_SECRET, notifyUrlPolicy: 'any-no-query', h5Domains: ['127.0.0.1'] });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    ...sandboxEnv({ keysDir, simulatorUrl: sim.url, databaseUrl: pg.url, redisUrl: redis.url, port, publicBaseUrl: url }),
    LOG_LEVEL: 'silent',
    SWEEPER_INTERVAL_MS: '3600000',
    RUN_WORKERS: 'false', // background started by hand below, so the burst is published before delivery starts
    ...(process.env.WEBHOOK_POLL_MS ? { WEBHOOK_POLL_MS: process.env.WEBHOOK_POLL_MS } : {}),
  });
  const deps = buildDeps(config);
  await createMerchant(deps.prisma, { id: 'mch_bench', name: 'Bench', apiKey: KEY });
  const gw = await startGateway(config, deps);
  let background = await startBackground(deps);
  const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${url}${path}`, { method, headers: auth, body: body === undefined ? undefined : JSON.stringify(body) });
    return (await r.json()) as Record<string, unknown>;
  };

  // The receiver, in its own process.
  const ep = (await api('POST', '/v1/webhook_endpoints', { url: 'http://127.0.0.1:1/placeholder' })) as { id: string; secret: string };
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', resolve(__dirname, 'webhook-receiver.ts')], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, SECRET: ep.secret },
  });
  const received = new Map<string, number>();
  let bad = 0;
  const rxPort = await new Promise<number>((res) =>
    child.on('message', (m: { port?: number; got?: Array<[string, number, boolean]> }) => {
      if (m.port) res(m.port);
      for (const [id, t, ok] of m.got ?? []) {
        if (!ok) bad++;
        if (!received.has(id)) received.set(id, t);
      }
    }),
  );
  const rxUrl = `http://127.0.0.1:${rxPort}/hooks`;
  await api('PATCH', `/v1/webhook_endpoints/${ep.id}`, { url: rxUrl });
  const waitFor = async (ids: string[], timeoutMs: number) => {
    const end = Date.now() + timeoutMs;
    while (!ids.every((i) => received.has(i))) {
      if (Date.now() > end) throw new Error(`only ${ids.filter((i) => received.has(i)).length}/${ids.length} delivered`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  // 1. Idle: one state change at a time.
  const lat: number[] = [];
  for (let i = 0; i < IDLE; i++) {
    const c = (await api('POST', '/v1/checkouts', { out_trade_no: `IDLE${i}_${Date.now()}`, amount: 100, description: 'bench' })) as { id: string };
    await api('POST', `/v1/checkouts/${c.id}/close`);
    const ev = await deps.prisma.merchantEvent.findFirstOrThrow({ where: { checkoutId: c.id } });
    await waitFor([ev.id], 10_000);
    lat.push(received.get(ev.id)! - ev.createdAt.getTime());
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 200)); // idle, at random phases of the poll
  }

  // 2. Burst: EVENTS events over CHECKOUTS checkouts, published in transactions of 50 while the
  // dispatcher is stopped; then it starts and renders + delivers them all.
  await background.stop();
  const ids: string[] = [];
  for (let i = 0; i < CHECKOUTS; i++) ids.push(((await api('POST', '/v1/checkouts', { out_trade_no: `BURST${i}_${Date.now()}`, amount: 100, description: 'bench' })) as { id: string }).id);
  const t0 = Date.now();
  const evIds: string[] = [];
  for (let b = 0; b < EVENTS; b += 50)
    await deps.prisma.$transaction(async (tx) => {
      for (let i = b; i < Math.min(EVENTS, b + 50); i++) {
        const co = ids[i % CHECKOUTS]!;
        evIds.push((await publishEvent(tx, { merchantId: 'mch_bench', type: 'checkout.closed', checkoutId: co, object: { kind: 'checkout', id: co } })).id);
      }
    }, { timeout: 60_000 });
  const published = Date.now() - t0;
  const start = Date.now();
  const cpu0 = { gw: process.cpuUsage(), pg: treeCpuMs(pg.pid), rx: treeCpuMs(child.pid!) };
  background = await startBackground(deps);
  await waitFor(evIds, 600_000);
  const last = Math.max(...evIds.map((i) => received.get(i)!));
  const gwRate = EVENTS / ((last - start) / 1000);
  const perDelivery = (ms: number) => (ms / EVENTS).toFixed(2);
  const gwCpu = process.cpuUsage(cpu0.gw);
  const cpu = { gw: perDelivery((gwCpu.user + gwCpu.system) / 1000), pg: perDelivery(treeCpuMs(pg.pid) - cpu0.pg), rx: perDelivery(treeCpuMs(child.pid!) - cpu0.rx) };

  // 3. The limit: the same bodies, signed with the same library, sent by a bare node:http loop.
  const bodies = await deps.prisma.merchantEvent.findMany({ where: { id: { in: evIds } }, select: { id: true, body: true } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: config.WEBHOOK_CONCURRENCY });
  const send = (id: string, body: string) =>
    new Promise<void>((res, rej) => {
      const at = new Date();
      const req = http.request(rxUrl, {
        method: 'POST', agent,
        headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signatureHeader([ep.secret], id, at, body) },
      }, (r) => { r.resume(); r.on('end', () => res()); });
      req.on('error', rej);
      req.end(body);
    });
  /** The bare sender at `concurrency` sockets, under its own webhook ids; deliveries/s and its CPU ms per delivery. */
  const bare = async (concurrency: number, tag: string) => {
    const b0 = Date.now();
    const c0 = process.cpuUsage();
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < bodies.length) {
        const e = bodies[next++]!;
        await send(`${e.id}_${tag}`, e.body!);
      }
    }));
    await waitFor(bodies.map((e) => `${e.id}_${tag}`), 60_000);
    const c = process.cpuUsage(c0);
    return { rate: bodies.length / ((Date.now() - b0) / 1000), cpu: perDelivery((c.user + c.system) / 1000) };
  };
  // The dispatcher sends to one endpoint on at most a quarter of its slots (a hanging endpoint cannot
  // take them all): the limit at that concurrency is the like-for-like one, at all 32 the ceiling.
  const perEndpoint = Math.max(1, Math.floor(config.WEBHOOK_CONCURRENCY / 4));
  const limitOne = await bare(perEndpoint, 'bare1');
  const limitAll = await bare(config.WEBHOOK_CONCURRENCY, 'bareall');

  const attempts = await deps.prisma.webhookAttempt.count();
  const out = [
    `idle, state change -> receipt (${IDLE} checkouts closed one at a time, WEBHOOK_POLL_MS=${config.WEBHOOK_POLL_MS}): median ${pct(lat, 50)} ms, p99 ${pct(lat, 99)} ms, max ${Math.max(...lat)} ms`,
    `burst, ${EVENTS} events over ${CHECKOUTS} checkouts to one endpoint (published in ${published} ms, before the dispatcher started): ${gwRate.toFixed(0)} deliveries/s rendered + delivered (gateway, WEBHOOK_CONCURRENCY=${config.WEBHOOK_CONCURRENCY}, ${perEndpoint} per endpoint); CPU ms per delivery: gateway ${cpu.gw}, PostgreSQL ${cpu.pg}, receiver ${cpu.rx}`,
    `limit, bare node:http + standardwebhooks signing, same bodies, same receiver: ${limitOne.rate.toFixed(0)} deliveries/s at ${perEndpoint} in flight (ratio ${(100 * gwRate / limitOne.rate).toFixed(0)}%, sender CPU ${limitOne.cpu} ms per delivery); ${limitAll.rate.toFixed(0)}/s at ${config.WEBHOOK_CONCURRENCY}`,
    `attempts recorded ${attempts}, signatures refused by the receiver ${bad}`,
    `machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}; PostgreSQL, Redis, simulator and receiver on the same machine`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  agent.destroy();
  child.disconnect();
  await background.stop();
  await stopInOrder(() => gw.close(), () => sim.close(), services.stop);
}

runMain(main);

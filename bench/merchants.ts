/**
 * Many merchants on one gateway (issue 10): checkout creation + the first page load (which places the
 * channel order) spread over 1,000 merchants on 2 account kinds (500 direct accounts, 500 sub-merchants
 * of one service provider), against the same flow for one merchant on the default account; and the
 * memory 1,000 cached account channels take.
 *
 * Run: node --expose-gc --import tsx bench/merchants.ts [seconds per phase, default 10]
 * The simulator knows one merchant key set, so the 500 direct accounts share its mchid and keys (each
 * still gets its own channel, KeyObjects and client: what the cache holds), and it is also the
 * service provider of the 500 bound sub-merchants.
 */
import { cpus } from 'node:os';
import { loadConfig } from '../src/config/config';
import { SANDBOX_APP_SECRET, SANDBOX_APPID, SANDBOX_MCHID, sandboxEnv } from '../src/config/sandbox';
import { buildDeps, startGateway } from '../src/gateway';
import { addAccount, addServiceProvider } from '../src/modules/merchants/account.service';
import { channelsOf, createChannelResolver } from '../src/modules/merchants/channel-resolver';
import { createMerchant } from '../src/modules/merchants/merchant.service';
import { startSimulator } from '../src/simulator/app';
import { loadOrCreateSandboxKeys } from '../src/simulator/keys';
import { freePort } from '../scripts/services';
import { startBenchServices } from './services';
import { runMain, stopInOrder } from './proc';

const SECONDS = Number(process.argv[2] ?? 10);
const MERCHANTS = 1000;
const CONCURRENCY = 10;
const DESKTOP = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/84.0.4147.89 Safari/537.36';
const subMchid = (i: number) => String(1901000000 + i);
const gc = () => (globalThis as { gc?: () => void }).gc?.();

async function main() {
  const services = await startBenchServices('m-');
  const { pg, redis, keysDir } = services;
  const keys = loadOrCreateSandboxKeys(keysDir);
  const sim = await startSimulator({
    keys, appSecret: SANDBOX_APP_SECRET, notifyUrlPolicy: 'any-no-query', h5Domains: ['127.0.0.1'],
    partner: { subMerchants: Object.fromEntries(Array.from({ length: MERCHANTS }, (_, i) => [subMchid(i), {}])) },
  });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    ...sandboxEnv({ keysDir, simulatorUrl: sim.url, databaseUrl: pg.url, redisUrl: redis.url, port, publicBaseUrl: url }),
    LOG_LEVEL: 'silent',
    RUN_WORKERS: 'false',
  });
  const deps = buildDeps(config);
  const signing = {
    app_secret: SANDBOX_APP_SECRET,
    merchant_private_key: keys.merchantPrivateKeyPem,
    merchant_cert_serial: keys.merchantCertSerial,
    apiv3_key: keys.apiv3Key,
    platform_keys: { [keys.platformPublicKeyId]: keys.platformPublicKeyPem },
  };
  const t0 = Date.now();
  await createMerchant(deps.prisma, { id: 'mch_single', name: 'Single', apiKey: 'sk_test_bench_single_0000' });
  const sp = await addServiceProvider(deps, { name: 'Bench SP', sp_mchid: SANDBOX_MCHID, sp_appid: SANDBOX_APPID, ...signing });
  const accountIds: string[] = [];
  for (let i = 0; i < MERCHANTS; i++) {
    const id = `mch_bench_${String(i).padStart(4, '0')}`;
    await createMerchant(deps.prisma, { id, name: `Bench ${i}`, apiKey: `sk_test_bench_${String(i).padStart(8, '0')}` });
    const a = i % 2 === 0
      ? await addAccount(deps, { merchant_id: id, kind: 'direct', mchid: SANDBOX_MCHID, appid: SANDBOX_APPID, ...signing })
      : await addAccount(deps, { merchant_id: id, kind: 'partner', service_provider: sp.id, sub_mchid: subMchid(i) });
    accountIds.push(a.id);
  }
  process.stdout.write(`onboarded ${MERCHANTS} merchants + accounts in ${Date.now() - t0} ms\n`);

  // Memory of 1,000 cached account channels, in a resolver of its own.
  gc();
  const before = process.memoryUsage();
  const resolver = createChannelResolver({ prisma: deps.prisma, config, defaultChannel: deps.channel });
  const tb = Date.now();
  for (const id of accountIds) await resolver.forAccount(id);
  const buildMs = Date.now() - tb;
  gc();
  const after = process.memoryUsage();
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  const memLine = `1,000 cached account channels (500 direct, 500 partner): heap +${mb(after.heapUsed - before.heapUsed)} MB, rss +${mb(after.rss - before.rss)} MB, built in ${buildMs} ms (${(buildMs / MERCHANTS).toFixed(2)} ms each, cold)`;
  process.stdout.write(`${memLine}\n`);

  const gw = await startGateway(config, deps);

  async function phase(title: string, keyOf: (n: number) => string): Promise<number> {
    let n = 0;
    let done = 0;
    let failed = 0;
    const end = Date.now() + SECONDS * 1000;
    const worker = async () => {
      while (Date.now() < end) {
        const key = keyOf(n++);
        const c = await fetch(`${url}/v1/checkouts`, {
          method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ out_trade_no: `M${Date.now()}_${n}`, amount: 100, description: 'bench' }),
        });
        const body = (await c.json()) as { id?: string };
        const p = body.id ? await fetch(`${url}/checkout/${body.id}`, { headers: { 'user-agent': DESKTOP, accept: 'application/json' } }) : null;
        if (c.status === 201 && p?.status === 200) done++;
        else failed++;
        await p?.arrayBuffer();
      }
    };
    const start = Date.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const rate = done / ((Date.now() - start) / 1000);
    process.stdout.write(`${title.padEnd(44)} ${rate.toFixed(1).padStart(7)} checkouts+first page/s  (failed ${failed})\n`);
    return rate;
  }

  const single = (_n: number) => 'sk_test_bench_single_0000';
  const many = (n: number) => `sk_test_bench_${String(n % MERCHANTS).padStart(8, '0')}`;
  // Warm: every account's channel built once in the gateway's own resolver (steady state).
  for (const id of accountIds) await channelsOf(deps).forAccount(id);
  await phase('warm-up (1 merchant)', single);
  // Steady state for the 1,000 too: each merchant's API key and merchant → account answer cached once
  // (a cold phase would measure 1,000 first requests, not many merchants).
  await phase('warm-up (1,000 merchants)', many);
  // A B B A: the process still speeds up for a while (JIT, PostgreSQL's buffers), and a linear drift
  // cancels out of this order (A B A B handed the later, faster slots to the 1,000).
  const r1 = await phase('1 merchant, default account', single);
  const r2 = await phase('1,000 merchants, 2 account kinds', many);
  const r4 = await phase('1,000 merchants, 2 account kinds (again)', many);
  const r3 = await phase('1 merchant, default account (again)', single);
  const ratio = (r2 + r4) / (r1 + r3);
  process.stdout.write(`multi / single = ${(ratio * 100).toFixed(1)}% (target ≥ 90%)\n`);
  process.stdout.write(`machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, ${SECONDS}s per phase, ${CONCURRENCY} concurrent flows\n`);
  await stopInOrder(() => gw.close(), () => sim.close(), services.stop);
}

runMain(main);

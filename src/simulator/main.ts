/**
 * `npm run simulator`: the WeChat Pay simulator on its own. The only place the simulator reads the
 * environment (it is a separate application from the gateway, with its own tiny config):
 *   SIM_PORT (default 3100), SIM_HOST (127.0.0.1), SIM_KEYS_DIR (./sandbox), SIM_PUBLIC_BASE_URL,
 *   SIM_MCHID, SIM_APPID, SIM_APP_SECRET, SIM_H5_DOMAINS / SIM_OAUTH_DOMAINS (comma lists, default localhost,127.0.0.1),
 *   SIM_NOTIFY_URL_POLICY (any-no-query for the local sandbox; https-public is WeChat's rule),
 *   SIM_PROFIT_SHARING_RESULT_DELAY_MS / _MIN_DELAY_AFTER_PAY_MS / _RATE_PER_SECOND / _RECEIVER_LIMIT /
 *   _SP_RATE_PER_SECOND / _SUB_RATE_PER_SECOND (partner mode: per service provider, per sub-merchant) /
 *   _PER_ORDER_RATE_PER_SECOND (integers), SIM_PROFIT_SHARING_FEE_RATE (e.g. 0.006); unset keeps the
 *   simulator's defaults (WeChat's: 1 split request per second per order, 0.6% fee). SIM_PORT=0 picks a free port (printed on the first line).
 *   SIM_STATE_FILE: keep orders, QR codes and split orders in this JSON file across restarts (unset: memory only).
 */
import { resolve } from 'node:path';
import { loadOrCreateSandboxKeys } from './keys';
import { startSimulator } from './app';

async function main() {
  const env = process.env;
  const list = (v: string | undefined, d: string[]) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : d);
  const keysDir = resolve(env.SIM_KEYS_DIR ?? './sandbox');
  const keys = loadOrCreateSandboxKeys(keysDir);
  const policy = env.SIM_NOTIFY_URL_POLICY === 'https-public' ? 'https-public' : 'any-no-query';
  const int = (name: string) => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    if (!/^\d+$/.test(v)) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  const rate = (name: string) => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    if (!/^0(\.\d+)?$/.test(v)) throw new Error(`${name} must be a rate between 0 and 1, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  const profitSharing = Object.fromEntries(
    Object.entries({
      resultDelayMs: int('SIM_PROFIT_SHARING_RESULT_DELAY_MS'),
      minDelayAfterPayMs: int('SIM_PROFIT_SHARING_MIN_DELAY_AFTER_PAY_MS'),
      ratePerSecond: int('SIM_PROFIT_SHARING_RATE_PER_SECOND'),
      spRatePerSecond: int('SIM_PROFIT_SHARING_SP_RATE_PER_SECOND'),
      subRatePerSecond: int('SIM_PROFIT_SHARING_SUB_RATE_PER_SECOND'),
      receiverLimit: int('SIM_PROFIT_SHARING_RECEIVER_LIMIT'),
      perOrderRatePerSecond: int('SIM_PROFIT_SHARING_PER_ORDER_RATE_PER_SECOND'),
      feeRate: rate('SIM_PROFIT_SHARING_FEE_RATE'),
    }).filter(([, v]) => v !== undefined),
  );
  const sim = await startSimulator({
    keys,
    port: Number(env.SIM_PORT ?? 3100),
    host: env.SIM_HOST ?? '127.0.0.1',
    publicBaseUrl: env.SIM_PUBLIC_BASE_URL,
    mchid: env.SIM_MCHID,
    appid: env.SIM_APPID,
    appSecret: env.SIM_APP_SECRET,
    h5Domains: list(env.SIM_H5_DOMAINS, ['localhost', '127.0.0.1']),
    oauthDomains: list(env.SIM_OAUTH_DOMAINS, ['localhost', '127.0.0.1']),
    notifyUrlPolicy: policy,
    profitSharing,
    stateFile: env.SIM_STATE_FILE || undefined,
  });
  const o = sim.ctx.opts;
  console.log(`WeChat Pay simulator on ${sim.url}`);
  console.log(`  keys: ${keysDir}  mchid=${o.mchid} appid=${o.appid} merchant serial=${o.merchantCertSerial}`);
  console.log(`  platform public key id=${keys.platformPublicKeyId}  notify_url policy=${policy}`);
  console.log(`  profit sharing: ${JSON.stringify(o.profitSharing)}`);
  const stop = () => void sim.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

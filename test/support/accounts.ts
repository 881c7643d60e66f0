import { addAccount, addServiceProvider } from '../../src/modules/merchants/account.service';
import { createChannelResolver } from '../../src/modules/merchants/channel-resolver';
import { generateSimKeys, type SandboxKeys } from '../../src/simulator/keys';
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '../../src/simulator/app';
import request from 'supertest';
import type { Agent } from 'supertest';
import { checkoutBody, type Harness } from './harness';

/** Key material made once per test process (RSA generation is slow). */
let cachedKeys: SandboxKeys | undefined;
export function secondMerchantKeys(): SandboxKeys {
  cachedKeys ??= generateSimKeys();
  return cachedKeys;
}

export interface DirectAccountFixture {
  accountId: string;
  mchid: string;
  appid: string;
  appSecret: string;
  keys: SandboxKeys;
  /** The account's own WeChat (a second simulator: the first one knows only the default merchant). */
  sim: RunningSimulator;
}

/** The body of `account add --kind direct` for these keys. */
export function directAccountBody(merchantId: string, keys: SandboxKeys, ids: { mchid: string; appid: string; appSecret: string }) {
  return {
    merchant_id: merchantId,
    kind: 'direct',
    mchid: ids.mchid,
    appid: ids.appid,
    app_secret: ids.appSecret,
    merchant_private_key: keys.merchantPrivateKeyPem,
    merchant_cert_serial: keys.merchantCertSerial,
    apiv3_key: keys.apiv3Key,
    platform_keys: { [keys.platformPublicKeyId]: keys.platformPublicKeyPem },
  };
}

/**
 * Gives `merchantId` a direct account of its own, whose WeChat is a second simulator, and routes that
 * account's calls there (the resolver's endpoint override; production uses the configured hosts).
 */
export async function addDirectAccountOnOwnSimulator(h: Harness, merchantId: string): Promise<DirectAccountFixture> {
  const keys = secondMerchantKeys();
  const ids = { mchid: '1900000201', appid: 'wx1234567890abcdef', appSecret: 'second-merchant-app-secret' };
  const sim = await startSimulator({
    keys,
    mchid: ids.mchid,
    appid: ids.appid,
    appSecret: ids.appSecret,
    notifyUrlPolicy: 'any-no-query',
    h5Domains: ['127.0.0.1', 'localhost'],
    oauthDomains: ['127.0.0.1', 'localhost'],
    notifyRetryScheduleMs: [200, 400, 800, 1600],
    profitSharing: { minDelayAfterPayMs: 0, resultDelayMs: 0 },
  });
  const acct = await addAccount(h.deps, directAccountBody(merchantId, keys, ids));
  h.deps.channels = createChannelResolver({
    prisma: h.deps.prisma,
    config: h.config,
    logger: h.deps.logger,
    defaultChannel: h.deps.channel,
    endpointsFor: (a) => (a.id === acct.id ? { baseUrl: sim.url, oauthBaseUrl: sim.url, apiBaseUrl: sim.url } : {}),
  });
  return { accountId: acct.id, ...ids, keys, sim };
}

export interface PartnerFixture {
  spId: string;
  spMchid: string;
  spAppid: string;
  subMchid: string;
  accountId: string;
  keys: SandboxKeys;
  /** The service provider's WeChat (a simulator whose merchant is the SP, with its bound sub-merchants). */
  sim: RunningSimulator;
}

/** Registers a service provider whose WeChat is its own simulator, and makes `merchantId` its sub-merchant. */
export async function addPartnerAccountOnOwnSimulator(h: Harness, merchantId: string, o: { subMchid?: string; boundSubMchids?: string[]; sim?: Partial<SimulatorOptions> } = {}): Promise<PartnerFixture> {
  const keys = secondMerchantKeys();
  const ids = { spMchid: '1900000701', spAppid: 'wx00000000000000f6', appSecret: 'sp-official-account-secret' };
  const subMchid = o.subMchid ?? '1900000801';
  const sim = await startSimulator({
    keys,
    mchid: ids.spMchid,
    appid: ids.spAppid,
    appSecret: ids.appSecret,
    // Each bound sub-merchant authorised 20% of a payment for profit sharing.
    partner: { subMerchants: Object.fromEntries((o.boundSubMchids ?? [subMchid]).map((s) => [s, { maxRatioBp: 2000 }])) },
    notifyUrlPolicy: 'any-no-query',
    h5Domains: ['127.0.0.1', 'localhost'],
    oauthDomains: ['127.0.0.1', 'localhost'],
    notifyRetryScheduleMs: [200, 400, 800, 1600],
    refundResultDelayMs: 100,
    // As the harness's own simulator: no fee and no per-order rate unless a test is about them.
    profitSharing: { minDelayAfterPayMs: 0, resultDelayMs: 0, feeRate: 0, perOrderRatePerSecond: 0 },
    ...o.sim,
  });
  const { mchid: _m, appid: _a, merchant_id: _id, kind: _k, ...signing } = directAccountBody(merchantId, keys, { mchid: ids.spMchid, appid: ids.spAppid, appSecret: ids.appSecret });
  const sp = await addServiceProvider(h.deps, { name: 'Demo SP', sp_mchid: ids.spMchid, sp_appid: ids.spAppid, ...signing });
  const acct = await addAccount(h.deps, { merchant_id: merchantId, kind: 'partner', service_provider: sp.id, sub_mchid: subMchid });
  h.deps.channels = createChannelResolver({
    prisma: h.deps.prisma,
    config: h.config,
    logger: h.deps.logger,
    defaultChannel: h.deps.channel,
    endpointsFor: (a) => (a.mchid === ids.spMchid ? { baseUrl: sim.url, oauthBaseUrl: sim.url, apiBaseUrl: sim.url } : {}),
  });
  return { spId: sp.id, spMchid: ids.spMchid, spAppid: ids.spAppid, subMchid, accountId: acct.id, keys, sim };
}

/**
 * The steps the account tests share: create a checkout as a merchant, open its page as a shopper's
 * browser (JSON), read its latest channel order and status. `h` is read at call time (set in beforeAll).
 */
export function checkoutSteps(harness: () => Harness) {
  const h = harness;
  return {
    createAs: async (key: string) => (await request(h().app).post('/v1/checkouts').set('Authorization', `Bearer ${key}`).send(checkoutBody()).expect(201)).body.id as string,
    pageJson: (id: string, ua: string, agent: Agent = h().http()) => agent.get(`/checkout/${id}`).set('User-Agent', ua).set('Accept', 'application/json'),
    orderOf: (id: string) => h().db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: id }, orderBy: { createdAt: 'desc' } }),
    statusOf: async (id: string) => (await h().db.prisma.checkout.findUniqueOrThrow({ where: { id } })).status,
    async eventually(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
      const end = Date.now() + timeoutMs;
      while (!(await cond())) {
        if (Date.now() > end) throw new Error('condition not met in time');
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}

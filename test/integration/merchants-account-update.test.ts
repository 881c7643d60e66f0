import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { runCli } from '../../src/cli/admin';
import { generateSimKeys, type SandboxKeys } from '../../src/simulator/keys';
import { CHANNEL_ACCOUNT_CHANGED, createChannelResolver } from '../../src/modules/merchants/channel-resolver';
import { waitFor } from './split-support';
import { addDirectAccountOnOwnSimulator, addPartnerAccountOnOwnSimulator, checkoutSteps, type DirectAccountFixture, type PartnerFixture } from '../support/accounts';
import { OTHER_API_KEY, startHarness, UA, type Harness } from '../support/harness';

/**
 * `account update` / `sp update`: keys rotated in place, checked like `account add`, and the cached
 * channel rebuilt (the next order is signed with the new key, which the account's WeChat now expects).
 */
const ADMIN = 'admin-token-for-tests-0123456789abcdef';
let h: Harness;
let b: DirectAccountFixture;
let next: SandboxKeys;
beforeAll(async () => {
  h = await startHarness({ env: { ADMIN_TOKEN: ADMIN } });
  b = await addDirectAccountOnOwnSimulator(h, 'mch_other');
  next = generateSimKeys();
});
afterAll(async () => {
  await b?.sim.close();
  await h?.close();
});

const admin = (path: string) => request(h.app).patch(path).set('Authorization', `Bearer ${ADMIN}`);
const { createAs, pageJson, orderOf } = checkoutSteps(() => h);
const row = () => h.db.prisma.channelAccount.findUniqueOrThrow({ where: { id: b.accountId } });
/** Opens a new checkout of mch_other on a desktop: the Native order is placed at its WeChat (signed by its channel). */
const order = async () => {
  const id = await createAs(OTHER_API_KEY);
  return { res: await pageJson(id, UA.chromeMac), id };
};

it('When a direct account\'s merchant key is rotated, then the cached channel is rebuilt and signs with the new key and serial', async () => {
  expect((await order()).res.status).toBe(200); // the channel is now built and cached with the old key
  // WeChat now knows only the new API certificate (the merchant replaced it on the merchant platform).
  b.sim.ctx.keys.merchantPublicKey = next.merchantPublicKey;
  b.sim.ctx.opts.merchantCertSerial = next.merchantCertSerial;
  expect((await order()).res.status).toBeGreaterThanOrEqual(400); // old key: SIGN_ERROR at WeChat

  const res = await admin(`/admin/api/accounts/${b.accountId}`).send({ merchant_private_key: next.merchantPrivateKeyPem, merchant_cert_serial: next.merchantCertSerial }).expect(200);
  expect(res.body).toMatchObject({ id: b.accountId, merchant_cert_serial: next.merchantCertSerial.toUpperCase() });
  expect(JSON.stringify(res.body)).not.toContain('PRIVATE KEY');
  const { res: page, id } = await order();
  expect(page.status).toBe(200);
  expect((await orderOf(id)).accountId).toBe(b.accountId);
  expect(b.sim.control.calls.at(-1)).toMatchObject({ path: '/v3/pay/transactions/native', status: 200 });
  // Stored encrypted: no PEM in the row.
  expect((await row()).secrets).not.toContain('PRIVATE KEY');
});

it('When a platform key is added by id, then both keys are kept; replacing the set keeps only the new one', async () => {
  const added = await admin(`/admin/api/accounts/${b.accountId}`).send({ add_platform_keys: { [next.platformPublicKeyId]: next.platformPublicKeyPem } }).expect(200);
  expect(added.body.platform_key_ids.sort()).toEqual([b.keys.platformPublicKeyId, next.platformPublicKeyId].sort());
  const replaced = await admin(`/admin/api/accounts/${b.accountId}`).send({ platform_keys: { [b.keys.platformPublicKeyId]: b.keys.platformPublicKeyPem } }).expect(200);
  expect(replaced.body.platform_key_ids).toEqual([b.keys.platformPublicKeyId]);
  // Its WeChat still signs with the fixture's platform key: payments go on.
  expect((await order()).res.status).toBe(200);
});

test.each([
  ['a malformed PEM', () => ({ merchant_private_key: '-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----', merchant_cert_serial: 'ABCDEF0123456789' }), 'merchant_private_key'],
  ['a key without its serial', () => ({ merchant_private_key: next.merchantPrivateKeyPem }), 'merchant_cert_serial'],
  ['an APIv3 key of 31 characters', () => ({ apiv3_key: 'a'.repeat(31) }), 'apiv3_key'],
  ['a platform key that is not a key', () => ({ add_platform_keys: { PUB_KEY_ID_X: 'hello' } }), 'platform_keys.PUB_KEY_ID_X'],
  ['both platform_keys and add_platform_keys', () => ({ platform_keys: { A: next.platformPublicKeyPem }, add_platform_keys: { B: next.platformPublicKeyPem } }), 'add_platform_keys'],
  ['partner fields on a direct account', () => ({ sub_appid: 'wx00000000000000e5' }), undefined],
  ['nothing', () => ({}), undefined],
])('When an update has %s, then 400 VALIDATION_FAILED naming it and the account is unchanged', async (_n, body, field) => {
  const before = await row();
  const res = await admin(`/admin/api/accounts/${b.accountId}`).send(body()).expect(400);
  expect(res.body.error.code).toBe('VALIDATION_FAILED');
  if (field) expect(res.body.error.message).toContain(field);
  expect(await row()).toEqual(before);
});

it('When an unknown account is updated, then 404', async () => {
  await admin('/admin/api/accounts/acct_nonexistent0000000000').send({ app_secret: 'x' }).expect(404);
});

describe('partner accounts', () => {
  let p: PartnerFixture;
  beforeAll(async () => {
    await h.db.prisma.merchant.create({ data: { id: 'mch_sub', name: 'Sub' } });
    p = await addPartnerAccountOnOwnSimulator(h, 'mch_sub');
  });
  afterAll(async () => p?.sim.close());

  it('When a partner account\'s sub_appid is set and removed, then it is stored with its secret; its keys are refused (they are the SP\'s)', async () => {
    const set = await admin(`/admin/api/accounts/${p.accountId}`).send({ sub_appid: 'wx00000000000000e5', sub_app_secret: 'sub-secret' }).expect(200);
    expect(set.body.sub_appid).toBe('wx00000000000000e5');
    expect((await h.db.prisma.channelAccount.findUniqueOrThrow({ where: { id: p.accountId } })).secrets).not.toContain('sub-secret');
    await admin(`/admin/api/accounts/${p.accountId}`).send({ sub_appid: 'wx00000000000000e6' }).expect(400); // without its secret
    expect((await admin(`/admin/api/accounts/${p.accountId}`).send({ sub_appid: null }).expect(200)).body.sub_appid).toBeNull();
    await admin(`/admin/api/accounts/${p.accountId}`).send({ merchant_private_key: next.merchantPrivateKeyPem, merchant_cert_serial: next.merchantCertSerial }).expect(400);
  });

  it('When the service provider\'s platform keys are extended with sp update, then the SP row lists both (a bad one is refused)', async () => {
    const res = await request(h.app).patch(`/admin/api/service-providers/${p.spMchid}`).set('Authorization', `Bearer ${ADMIN}`).send({ add_platform_keys: { [next.platformPublicKeyId]: next.platformPublicKeyPem } }).expect(200);
    expect(res.body.platform_key_ids.sort()).toEqual([p.keys.platformPublicKeyId, next.platformPublicKeyId].sort());
    await request(h.app).patch(`/admin/api/service-providers/${p.spId}`).set('Authorization', `Bearer ${ADMIN}`).send({ apiv3_key: 'short' }).expect(400);
  });
});

it('When `account update` runs from the CLI with a broken PEM file, then it exits non-zero naming the field; with a good key it updates', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'acct-update-'));
  writeFileSync(join(dir, 'bad.pem'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
  writeFileSync(join(dir, 'good.pem'), next.merchantPrivateKeyPem);
  const err: string[] = [];
  const out: string[] = [];
  const env = { DATABASE_URL: h.db.url, SECRETS_MASTER_KEY: h.config.SECRETS_MASTER_KEY! };
  const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s), cwd: dir };
  expect(await runCli(['account', 'update', b.accountId, '--private-key', join(dir, 'bad.pem'), '--cert-serial', next.merchantCertSerial], env, io)).not.toBe(0);
  expect(err.join('\n')).toContain('merchant_private_key');
  expect(await runCli(['account', 'update', b.accountId, '--private-key', join(dir, 'good.pem'), '--cert-serial', next.merchantCertSerial, '--json'], env, io)).toBe(0);
  expect(JSON.parse(out.at(-1)!)).toMatchObject({ id: b.accountId, merchant_cert_serial: next.merchantCertSerial.toUpperCase() });
  expect(await runCli(['account', 'update', '--help'], env, io)).toBe(0);
  expect(out.join('\n')).toContain('--add-platform-key');
});

it('When one instance invalidates an account, then another instance subscribed on Redis drops its cached channel', async () => {
  const resolver = () => createChannelResolver({ prisma: h.deps.prisma, config: h.config, logger: h.deps.logger, defaultChannel: h.deps.channel, redis: h.deps.redis });
  const [one, two] = [resolver(), resolver()];
  try {
    const subscribers = async () => ((await h.deps.redis.pubsub('NUMSUB', CHANNEL_ACCOUNT_CHANGED)) as [string, number])[1];
    await waitFor(async () => (await subscribers()) >= 2, 5_000, 'both resolvers subscribed');
    await two.forAccount(b.accountId);
    expect(two.cachedAccounts()).toBe(1);
    await one.invalidate(b.accountId);
    await waitFor(async () => two.cachedAccounts() === 0, 5_000, 'the other instance to drop the channel');
  } finally {
    await one.close?.();
    await two.close?.();
  }
});

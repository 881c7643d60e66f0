import request from 'supertest';
import { checkoutBody, startHarness, type Harness } from '../support/harness';
import { directAccountBody, secondMerchantKeys } from '../support/accounts';

const ADMIN = 'admin-token-for-tests-0123456789abcdef';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { ADMIN_TOKEN: ADMIN } });
});
afterAll(async () => h?.close());

const admin = (method: 'get' | 'post', path: string) => request(h.app)[method](path).set('Authorization', `Bearer ${ADMIN}`);
const asKey = (key: string) => request(h.app).post('/v1/checkouts').set('Authorization', `Bearer ${key}`);

describe('admin API', () => {
  it('When the token is wrong or missing, then 401 and nothing is created', async () => {
    const before = await h.db.prisma.merchant.count();
    await request(h.app).post('/admin/api/merchants').send({ name: 'X' }).expect(401);
    await request(h.app).post('/admin/api/merchants').set('Authorization', `Bearer ${ADMIN}x`).send({ name: 'X' }).expect(401);
    expect(await h.db.prisma.merchant.count()).toBe(before);
  });

  it('When a merchant is created, rotated and its old key revoked, then the new key works and the old one is a 401', async () => {
    const created = await admin('post', '/admin/api/merchants').send({ name: 'Acme 商店' }).expect(201);
    expect(created.body.id).toMatch(/^mch_[0-9a-z]{20}$/);
    const first = created.body.api_key;
    expect(first.secret).toMatch(/^sk_test_/); // sandbox mode
    expect(first.id).toMatch(/^key_/);
    expect(first.secret.startsWith(first.prefix)).toBe(true);

    await asKey(first.secret).send(checkoutBody()).expect(201);

    const second = await admin('post', `/admin/api/merchants/${created.body.id}/keys`).expect(201);
    await asKey(second.body.secret).send(checkoutBody()).expect(201);
    await asKey(first.secret).send(checkoutBody()).expect(201); // both live during the rotation

    const listed = await admin('get', `/admin/api/merchants/${created.body.id}/keys`).expect(200);
    expect(listed.body.data.map((k: { id: string }) => k.id)).toEqual([first.id, second.body.id]);
    expect(JSON.stringify(listed.body)).not.toContain(first.secret);
    expect(listed.body.data[0].last_used_at).not.toBeNull();

    const revoked = await admin('post', `/admin/api/keys/${first.id}/revoke`).expect(200);
    expect(revoked.body.revoked_at).not.toBeNull();
    const refused = await asKey(first.secret).send(checkoutBody()).expect(401);
    expect(refused.body.error.code).toBe('UNAUTHENTICATED');
    await asKey(second.body.secret).send(checkoutBody()).expect(201);

    const merchants = await admin('get', '/admin/api/merchants').expect(200);
    expect(merchants.body.data.some((m: { id: string }) => m.id === created.body.id)).toBe(true);
  });

  it('When a key of an unknown merchant or an unknown key is asked for, then 404', async () => {
    await admin('post', '/admin/api/merchants/mch_nope/keys').expect(404);
    await admin('post', '/admin/api/keys/key_nope/revoke').expect(404);
  });

  it('When account data is bad, then account add refuses it with a message naming the field, and stores nothing', async () => {
    const keys = secondMerchantKeys();
    const ids = { mchid: '1900000301', appid: 'wx00000000000000a1', appSecret: 's' };
    const good = directAccountBody('mch_other', keys, ids);
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ ...good, merchant_private_key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }, 'merchant_private_key', /not a usable RSA private key/],
      [{ ...good, merchant_private_key: 'hello' }, 'merchant_private_key', /is not PEM/],
      [{ ...good, apiv3_key: keys.apiv3Key.slice(1) }, 'apiv3_key', /exactly 32 characters \(got 31\)/],
      [{ ...good, platform_keys: { PUB_KEY_ID_0100: 'not a pem' } }, 'platform_keys.PUB_KEY_ID_0100', /public key or certificate/],
      [{ merchant_id: 'mch_other', kind: 'partner', service_provider: '1234567890', sub_mchid: '1900000999' }, 'service_provider', /unknown service provider/],
      [{ ...good, merchant_id: 'mch_nope' }, 'merchant_id', /no merchant/],
    ];
    for (const [body, field, message] of cases) {
      const res = await admin('post', '/admin/api/accounts').send(body).expect(400);
      expect(res.body.error.field).toBe(field);
      expect(res.body.error.message).toMatch(message);
    }
    expect(await h.db.prisma.channelAccount.count()).toBe(0);
  });

  it('When an account is added, then its secrets are encrypted in the row and never returned', async () => {
    const keys = secondMerchantKeys();
    const m = await admin('post', '/admin/api/merchants').send({ name: 'Secret keeper' }).expect(201);
    const body = directAccountBody(m.body.id, keys, { mchid: '1900000401', appid: 'wx00000000000000b2', appSecret: 'official-account-secret-xyz' });
    const res = await admin('post', '/admin/api/accounts').send(body).expect(201);
    expect(res.body.notify_url).toBe(`${h.config.PUBLIC_BASE_URL}/notify/wechatpay/${res.body.id}/transactions`);
    const listed = await admin('get', `/admin/api/accounts?merchant_id=${m.body.id}`).expect(200);
    for (const text of [JSON.stringify(res.body), JSON.stringify(listed.body)]) {
      expect(text).not.toContain('PRIVATE KEY');
      expect(text).not.toContain(keys.apiv3Key);
      expect(text).not.toContain('official-account-secret-xyz');
    }
    const rows = await h.db.prisma.$queryRawUnsafe<Array<Record<string, unknown>>>('SELECT * FROM channel_accounts WHERE id = $1', res.body.id);
    const raw = JSON.stringify(rows[0]);
    expect(raw).not.toContain('BEGIN');
    expect(raw).not.toContain(keys.merchantPrivateKeyPem.split('\n')[1]!);
    expect(raw).not.toContain(keys.apiv3Key);
    expect(raw).not.toContain('official-account-secret-xyz');
    expect(rows[0]!.secrets_key_id).toBe(h.config.SECRETS_MASTER_KEY!.split(':')[0]);
    // A second account for the same merchant is a conflict, not a silent replacement.
    await admin('post', '/admin/api/accounts').send(body).expect(409);
  });
});

describe('admin API without ADMIN_TOKEN', () => {
  let bare: Harness;
  beforeAll(async () => {
    bare = await startHarness({ env: { ADMIN_TOKEN: '' } });
  });
  afterAll(async () => bare?.close());

  it('When no admin token is configured, then every admin route is a 404, even with a token', async () => {
    await request(bare.app).get('/admin/api/merchants').expect(404);
    await request(bare.app).post('/admin/api/merchants').set('Authorization', `Bearer ${ADMIN}`).send({ name: 'X' }).expect(404);
  });
});

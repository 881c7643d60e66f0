import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { runCli } from '../../src/cli/admin';
import { loadConfig } from '../../src/config/config';
import { createChannelResolver } from '../../src/modules/merchants/channel-resolver';
import { newMasterKeySpec } from '../../src/lib/secrets';
import { checkoutBody, startHarness, type Harness } from '../support/harness';
import { directAccountBody, secondMerchantKeys } from '../support/accounts';
import { addAccount, rotateSecrets } from '../../src/modules/merchants/account.service';

const run = promisify(execFile);
const root = resolve(__dirname, '../..');

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

/** In process (the same runCli the binary runs): the machine is slow to spawn, so only some steps spawn. */
async function inProcess(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { DATABASE_URL: h.db.url, SECRETS_MASTER_KEY: h.config.SECRETS_MASTER_KEY! }, { out: (s) => out.push(s), err: (s) => err.push(s), cwd: root });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

/** The real command, spawned as an operator runs it (production-style: DATABASE_URL in the environment). */
async function cli(args: string[], env: Record<string, string> = {}) {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/cli/admin.ts', ...args], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: h.db.url, SECRETS_MASTER_KEY: h.config.SECRETS_MASTER_KEY!, ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

it('When an operator onboards a merchant with the CLI, then create, list, rotate and revoke work and a revoked key is a 401', async () => {
  const created = await cli(['merchant', 'create', '--name', 'CLI Shop', '--json']);
  expect(created.code).toBe(0);
  const m = JSON.parse(created.stdout);
  expect(m.id).toMatch(/^mch_/);
  expect(m.api_key.secret).toMatch(/^sk_live_/); // APP_MODE defaults to production
  await request(h.app).post('/v1/checkouts').set('Authorization', `Bearer ${m.api_key.secret}`).send(checkoutBody()).expect(201);

  const list = await inProcess(['merchant', 'list']);
  expect(list.stdout).toContain(m.id);

  const k2 = JSON.parse((await cli(['key', 'create', m.id, '--json'])).stdout);
  expect(k2.secret).toMatch(/^sk_live_/);
  const keys = await inProcess(['key', 'list', m.id]);
  expect(keys.stdout).toContain(m.api_key.id);
  expect(keys.stdout).toContain(k2.id);
  expect(keys.stdout).not.toContain(k2.secret);

  const revoked = await cli(['key', 'revoke', m.api_key.id]);
  expect(revoked.code).toBe(0);
  expect(revoked.stdout).toContain(`revoked ${m.api_key.id}`);
  await request(h.app).post('/v1/checkouts').set('Authorization', `Bearer ${m.api_key.secret}`).send(checkoutBody()).expect(401);
  await request(h.app).post('/v1/checkouts').set('Authorization', `Bearer ${k2.secret}`).send(checkoutBody()).expect(201);

  // account add reads the PEMs from files, refuses bad ones at once, and never prints secrets.
  const keysDir = mkdtempSync(join(tmpdir(), 'cli-keys-'));
  const k = secondMerchantKeys();
  writeFileSync(join(keysDir, 'apiclient_key.pem'), k.merchantPrivateKeyPem);
  writeFileSync(join(keysDir, 'pub_key.pem'), k.platformPublicKeyPem);
  writeFileSync(join(keysDir, 'apiv3'), k.apiv3Key);
  writeFileSync(join(keysDir, 'broken.pem'), '-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n');
  const base = ['account', 'add', '--merchant', m.id, '--kind', 'direct', '--mchid', '1900000501', '--appid', 'wx00000000000000c3', '--app-secret', 'cli-app-secret',
    '--cert-serial', k.merchantCertSerial, '--apiv3-key', `@${join(keysDir, 'apiv3')}`, '--platform-key', `${k.platformPublicKeyId}=${join(keysDir, 'pub_key.pem')}`];
  const bad = await inProcess([...base, '--private-key', join(keysDir, 'broken.pem')]);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/merchant_private_key: not a usable RSA private key/);
  const good = await inProcess([...base, '--private-key', join(keysDir, 'apiclient_key.pem')]);
  expect(good.code).toBe(0);
  expect(good.stdout).toMatch(/notify URL http.*\/notify\/wechatpay\/acct_[0-9a-z]{20}\/transactions/);
  const accounts = await inProcess(['account', 'list']);
  expect(accounts.stdout).toContain('1900000501');
  for (const out of [good.stdout, good.stderr, accounts.stdout]) {
    expect(out).not.toContain('PRIVATE KEY');
    expect(out).not.toContain(k.apiv3Key);
    expect(out).not.toContain('cli-app-secret');
  }
}, 300_000);

it('When --help is given, then each command explains itself', async () => {
  const out = await cli(['account', 'add', '--help']);
  expect(out.code).toBe(0);
  expect(out.stdout).toContain('--kind direct');
  expect(out.stdout).toContain('--kind partner');
  const top = await inProcess(['--help']);
  for (const c of ['merchant create', 'merchant list', 'key create', 'key list', 'key revoke', 'account add', 'account list', 'secrets rotate']) expect(top.stdout).toContain(c);
}, 120_000);

it('When no DATABASE_URL is set, then the CLI finds the sandbox started from the same folder through .data/sandbox.json', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-sandbox-'));
  const lines: string[] = [];
  const io = { out: (s: string) => lines.push(s), err: (s: string) => lines.push(s), cwd: dir };
  expect(await runCli(['merchant', 'list'], {}, io)).toBe(78);
  expect(lines.join('\n')).toMatch(/DATABASE_URL.*npm run sandbox/);
  mkdirSync(join(dir, '.data'));
  writeFileSync(join(dir, '.data', 'sandbox.json'), JSON.stringify({ APP_MODE: 'sandbox', DATABASE_URL: h.db.url, PUBLIC_BASE_URL: h.config.PUBLIC_BASE_URL, SECRETS_MASTER_KEY: h.config.SECRETS_MASTER_KEY }));
  lines.length = 0;
  expect(await runCli(['merchant', 'create', '--name', 'From sandbox', '--json'], {}, io)).toBe(0);
  expect(JSON.parse(lines.join('\n')).api_key.secret).toMatch(/^sk_test_/);
});

it('When the master key is rotated, then every envelope is re-wrapped and readable with the new key alone', async () => {
  const m = await h.db.prisma.merchant.create({ data: { id: 'mch_rotation_test', name: 'Rotating' } });
  const k = secondMerchantKeys();
  const acct = await addAccount(h.deps, directAccountBody(m.id, k, { mchid: '1900000601', appid: 'wx00000000000000d4', appSecret: 'x' }));
  const next = newMasterKeySpec('k2');
  const both = loadConfig({ ...envOf(h), SECRETS_MASTER_KEY: `${next},${h.config.SECRETS_MASTER_KEY}` });
  const r = await rotateSecrets({ prisma: h.db.prisma, config: both });
  expect(r.current).toBe('k2');
  expect(r.rewrapped).toBeGreaterThanOrEqual(1);
  const row = await h.db.prisma.channelAccount.findUniqueOrThrow({ where: { id: acct.id } });
  expect(row.secretsKeyId).toBe('k2');
  expect((await rotateSecrets({ prisma: h.db.prisma, config: both })).rewrapped).toBe(0); // idempotent
  // The old key can now be dropped: the channel still builds (secrets decrypt) with k2 alone.
  const onlyNew = loadConfig({ ...envOf(h), SECRETS_MASTER_KEY: next });
  const resolver = createChannelResolver({ prisma: h.db.prisma, config: onlyNew, defaultChannel: h.deps.channel });
  const ch = await resolver.forAccount(acct.id);
  expect(ch.mchid).toBe('1900000601');
  // …and without any master key the secrets are unreadable.
  const wrong = createChannelResolver({ prisma: h.db.prisma, config: loadConfig({ ...envOf(h), SECRETS_MASTER_KEY: newMasterKeySpec('k2') }), defaultChannel: h.deps.channel });
  await expect(wrong.forAccount(acct.id)).rejects.toThrow(/does not decrypt/);
});

function envOf(x: Harness): Record<string, string> {
  const c = x.config as unknown as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(c)) {
    if (!/^[A-Z0-9_]+$/.test(k) || v === undefined) continue;
    out[k] = k === 'WECHATPAY_PLATFORM_KEYS' ? Object.entries(v as Record<string, string>).map(([a, b]) => `${a}=${b}`).join(',') : String(v);
  }
  return out;
}

it('When `user create` is run, then the console user exists with a generated password shown once, and bad roles are refused', async () => {
  const op = await inProcess(['user', 'create', '--email', 'Ops@Example.com', '--role', 'operator', '--json']);
  expect(op.code).toBe(0);
  const created = JSON.parse(op.stdout) as { id: string; email: string; role: string; password: string };
  expect(created).toMatchObject({ email: 'ops@example.com', role: 'operator' });
  expect(created.password.length).toBeGreaterThanOrEqual(20);
  const row = await h.db.prisma.consoleUser.findUniqueOrThrow({ where: { email: 'ops@example.com' } });
  expect(row.passwordHash).toMatch(/^\$argon2id\$/);
  expect(row.passwordHash).not.toContain(created.password);
  // A merchant user needs an existing merchant; a wrong role is refused without writing anything.
  expect((await inProcess(['user', 'create', '--email', 'staff@example.com', '--role', 'merchant', '--merchant', 'mch_test', '--password', 'a long enough password'])).code).toBe(0);
  const bad = await inProcess(['user', 'create', '--email', 'x@example.com', '--role', 'admin']);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toContain('--role must be operator or merchant');
  expect(await h.db.prisma.consoleUser.count()).toBe(2);
});

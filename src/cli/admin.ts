/**
 * `npm run admin -- <command>`: onboarding from a shell. Every command is one call into the merchant
 * services (src/modules/merchants/), the same ones the admin API (/admin/api/...) calls.
 *
 * Where the database is: DATABASE_URL (and SECRETS_MASTER_KEY, PUBLIC_BASE_URL, APP_MODE) from the
 * environment; without DATABASE_URL, the sandbox running from this folder (.data/sandbox.json, which
 * `npm run sandbox` writes when it starts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createChannelRegistry, defaultChannelFactories } from '../channels/registry';
import { ConfigError, loadAdminConfig, loadConfig, type AdminEnvConfig } from '../config/config';
import { createLogger } from '../lib/logger';
import { createMetrics } from '../lib/metrics';
import { createChannelResolver } from '../modules/merchants/channel-resolver';
import { openMismatches } from '../modules/reconciliation/reconcile.queries';
import { accountRef, reconcileDay, type AccountRef, type ReconcileDeps } from '../modules/reconciliation/reconcile.service';
import { MERCHANT_KEY_REVOKED_CHANNEL } from '../http/merchant-cache';
import { AppError } from '../lib/errors';
import { createPrisma, disconnectPrisma, type PrismaClient } from '../lib/prisma';
import { newMasterKeySpec } from '../lib/secrets';
import { addAccount, addServiceProvider, listAccounts, listServiceProviders, rotateSecrets, updateAccount, updateServiceProvider } from '../modules/merchants/account.service';
import { CHANNEL_ACCOUNT_CHANGED } from '../modules/merchants/channel-resolver';
import { createConsoleUser } from '../modules/console/console.users';
import { createApiKey, listApiKeys, listMerchants, onboardMerchant, revokeApiKey } from '../modules/merchants/merchant.service';

type Ctx = {
  prisma: PrismaClient;
  config: AdminEnvConfig;
  json: boolean;
  out: (s: string) => void;
  /** The whole gateway environment, for commands that call the channel as the gateway does (reconcile). */
  gatewayEnv: () => Record<string, string | undefined>;
};
type Flags = Record<string, string | boolean | string[] | undefined>;

interface Command {
  usage: string;
  help: string;
  options?: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;
  /** No database needed. */
  offline?: boolean;
  run(ctx: Ctx, args: string[], flags: Flags): Promise<unknown>;
  /** The process exit code of a run that completed (default 0). */
  exitCode?(result: unknown): number;
}

/** `@path` reads the value from a file (keeps secrets out of shell history and `ps`). */
function value(v: unknown, name: string): string {
  if (typeof v !== 'string' || v === '') throw new AppError('VALIDATION_FAILED', `--${name} is required`, { field: name });
  if (v.startsWith('@')) {
    const p = v.slice(1);
    try {
      return readFileSync(p, 'utf8').trim();
    } catch (e) {
      throw new AppError('VALIDATION_FAILED', `--${name}: cannot read ${p} (${(e as Error).message})`, { field: name });
    }
  }
  return v;
}
const optional = (v: unknown, name: string) => (v === undefined ? undefined : value(v, name));
const fileText = (v: unknown, name: string) => {
  const s = value(v, name);
  return s.includes('-----BEGIN') ? s : value(`@${s}`, name); // a path, or the PEM itself
};

/** --platform-key ID=file.pem (repeatable) → {ID: PEM} */
function platformKeys(v: unknown): Record<string, string> {
  const list = Array.isArray(v) ? v : [];
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = String(item).indexOf('=');
    if (eq <= 0) throw new AppError('VALIDATION_FAILED', `--platform-key ${item}: expected ID=path.pem`, { field: 'platform_keys' });
    out[String(item).slice(0, eq)] = fileText(String(item).slice(eq + 1), 'platform-key');
  }
  return out;
}

const signingOptions = {
  'app-secret': { type: 'string' },
  'private-key': { type: 'string' },
  'cert-serial': { type: 'string' },
  'apiv3-key': { type: 'string' },
  'platform-key': { type: 'string', multiple: true },
} as const;

function signingInput(f: Flags) {
  return {
    app_secret: value(f['app-secret'], 'app-secret'),
    merchant_private_key: fileText(f['private-key'], 'private-key'),
    merchant_cert_serial: value(f['cert-serial'], 'cert-serial'),
    apiv3_key: value(f['apiv3-key'], 'apiv3-key'),
    platform_keys: platformKeys(f['platform-key']),
  };
}

/** The signing flags of `account update` / `sp update`: only those given (--add-platform-key adds by id). */
function signingUpdate(f: Flags) {
  const some = (k: string) => f[k] !== undefined && !(Array.isArray(f[k]) && f[k].length === 0);
  return {
    ...(some('app-secret') ? { app_secret: value(f['app-secret'], 'app-secret') } : {}),
    ...(some('private-key') ? { merchant_private_key: fileText(f['private-key'], 'private-key') } : {}),
    ...(some('cert-serial') ? { merchant_cert_serial: value(f['cert-serial'], 'cert-serial') } : {}),
    ...(some('apiv3-key') ? { apiv3_key: value(f['apiv3-key'], 'apiv3-key') } : {}),
    ...(some('platform-key') ? { platform_keys: platformKeys(f['platform-key']) } : {}),
    ...(some('add-platform-key') ? { add_platform_keys: platformKeys(f['add-platform-key']) } : {}),
  };
}
const signingUpdateOptions = { ...signingOptions, 'add-platform-key': { type: 'string', multiple: true } } as const;
const signingUpdateUsage = '[--private-key <apiclient_key.pem> --cert-serial <hex>] [--platform-key <ID=file.pem> … | --add-platform-key <ID=file.pem> …] [--app-secret <s|@file>] [--apiv3-key <32 chars|@file>]';

const arg = (args: string[], i: number, name: string) => {
  const v = args[i];
  if (!v) throw new AppError('VALIDATION_FAILED', `missing <${name}>`, { field: name });
  return v;
};

const table = (rows: Array<Record<string, unknown>>, cols: string[]) =>
  rows.length === 0 ? '(none)' : rows.map((r) => cols.map((c) => `${c}=${r[c] ?? '-'}`).join('  ')).join('\n');

const COMMANDS: Record<string, Command> = {
  'merchant create': {
    usage: 'merchant create --name <name>',
    help: 'Creates a merchant and its first API key; prints the merchant id (mch_…) and the key, which is shown only this once.',
    options: { name: { type: 'string' } },
    async run(ctx, _a, f) {
      const out = await onboardMerchant(ctx.prisma, { name: value(f.name, 'name'), mode: ctx.config.APP_MODE === 'sandbox' ? 'test' : 'live' });
      if (!ctx.json) ctx.out(`merchant  ${out.merchant.id}  ${out.merchant.name}\nkey id    ${out.key.id}\napi key   ${out.secret}\n(the API key is shown only now: store it)`);
      return { ...out.merchant, api_key: { ...out.key, secret: out.secret } };
    },
  },
  'merchant list': {
    usage: 'merchant list',
    help: 'Lists merchants.',
    async run(ctx) {
      const list = await listMerchants(ctx.prisma);
      if (!ctx.json) ctx.out(table(list as unknown as Array<Record<string, unknown>>, ['id', 'name', 'created_at']));
      return list;
    },
  },
  'key create': {
    usage: 'key create <merchant id>',
    help: 'Adds an API key to a merchant (rotation: create, deploy, then revoke the old key). The key is shown only this once.',
    async run(ctx, a) {
      const out = await createApiKey(ctx.prisma, arg(a, 0, 'merchant id'), ctx.config.APP_MODE === 'sandbox' ? 'test' : 'live');
      if (!ctx.json) ctx.out(`key id    ${out.key.id}\napi key   ${out.secret}\n(the API key is shown only now: store it)`);
      return { ...out.key, secret: out.secret };
    },
  },
  'key list': {
    usage: 'key list <merchant id>',
    help: 'Lists a merchant\'s API keys: id, prefix, created, last used, revoked.',
    async run(ctx, a) {
      const list = await listApiKeys(ctx.prisma, arg(a, 0, 'merchant id'));
      if (!ctx.json) ctx.out(table(list as unknown as Array<Record<string, unknown>>, ['id', 'prefix', 'created_at', 'last_used_at', 'revoked_at']));
      return list;
    },
  },
  'key revoke': {
    usage: 'key revoke <key id>',
    help: 'Revokes an API key at once: requests with it answer 401 from now on.',
    async run(ctx, a) {
      const k = await revokeApiKey(ctx.prisma, arg(a, 0, 'key id'), new Date(), (h) => publishRevocation(ctx.config.REDIS_URL, h));
      if (!ctx.json) ctx.out(`revoked ${k.id} (${k.prefix}…) at ${k.revoked_at}`);
      return k;
    },
  },
  'user create': {
    usage: 'user create --email <email> --role operator|merchant [--merchant <merchant id>] [--password <p|@file>]',
    help: 'Creates a console user (/console). Operators see every merchant; merchant users only theirs. Without --password a strong one is generated and shown only this once.',
    options: { email: { type: 'string' }, role: { type: 'string' }, merchant: { type: 'string' }, password: { type: 'string' } },
    async run(ctx, _a, f) {
      const role = value(f.role, 'role');
      if (role !== 'operator' && role !== 'merchant') throw new AppError('VALIDATION_FAILED', '--role must be operator or merchant', { field: 'role' });
      const out = await createConsoleUser(ctx.prisma, {
        email: value(f.email, 'email'),
        role,
        merchantId: typeof f.merchant === 'string' ? value(f.merchant, 'merchant') : null,
        password: typeof f.password === 'string' ? value(f.password, 'password') : undefined,
      });
      if (!ctx.json) ctx.out(`console user ${out.user.id}  ${out.user.email}  ${out.user.role}${out.user.merchantId ? ` of ${out.user.merchantId}` : ''}${out.generated ? `\npassword  ${out.password}\n(the password is shown only now: store it)` : ''}`);
      return { id: out.user.id, email: out.user.email, role: out.user.role, merchant_id: out.user.merchantId, ...(out.generated ? { password: out.password } : {}) };
    },
  },
  'sp add': {
    usage: 'sp add --name <name> --sp-mchid <id> --sp-appid <wx…> --app-secret <s|@file> --private-key <apiclient_key.pem> --cert-serial <hex> --apiv3-key <32 chars|@file> --platform-key <PUB_KEY_ID_…=pub_key.pem> [--platform-key …]',
    help: 'Registers a WeChat Pay service provider (服务商) once; its sub-merchants are then added with `account add --kind partner`.',
    options: { name: { type: 'string' }, 'sp-mchid': { type: 'string' }, 'sp-appid': { type: 'string' }, ...signingOptions },
    async run(ctx, _a, f) {
      const sp = await addServiceProvider(ctx, { name: value(f.name, 'name'), sp_mchid: value(f['sp-mchid'], 'sp-mchid'), sp_appid: value(f['sp-appid'], 'sp-appid'), ...signingInput(f) });
      if (!ctx.json) ctx.out(`service provider ${sp.id}  sp_mchid=${sp.sp_mchid}  sp_appid=${sp.sp_appid}`);
      return sp;
    },
  },
  'sp update': {
    usage: `sp update <sp_… | sp_mchid> ${signingUpdateUsage}`,
    help: 'Rotates a service provider\'s keys (checked like `sp add`); every sub-merchant account of it signs with the new ones at once. --platform-key replaces the whole set, --add-platform-key adds or replaces by id.',
    options: signingUpdateOptions,
    async run(ctx, a, f) {
      const sp = await updateServiceProvider(ctx, arg(a, 0, 'service provider'), signingUpdate(f), (ref) => publishChannelChange(ctx.config.REDIS_URL, ref));
      if (!ctx.json) ctx.out(`service provider ${sp.id} updated  serial=${sp.merchant_cert_serial}  platform keys=${sp.platform_key_ids.join(',')}`);
      return sp;
    },
  },
  'sp list': {
    usage: 'sp list',
    help: 'Lists service providers (no secrets).',
    async run(ctx) {
      const list = await listServiceProviders(ctx.prisma);
      if (!ctx.json) ctx.out(table(list as unknown as Array<Record<string, unknown>>, ['id', 'name', 'sp_mchid', 'sp_appid']));
      return list;
    },
  },
  'account add': {
    usage:
      'account add --merchant <mch_…> --kind direct --mchid <id> --appid <wx…> --app-secret <s|@file> --private-key <apiclient_key.pem> --cert-serial <hex> --apiv3-key <32 chars|@file> --platform-key <ID=file.pem> [--platform-key …]\n' +
      '       account add --merchant <mch_…> --kind partner --sp <sp_… | sp_mchid> --sub-mchid <id> [--sub-appid <wx…> --sub-app-secret <s|@file>]',
    help: 'Gives a merchant its WeChat Pay account (checks every key now; secrets are stored encrypted and never shown again). Prints the notify URL to expect.',
    options: {
      merchant: { type: 'string' }, kind: { type: 'string' }, mchid: { type: 'string' }, appid: { type: 'string' },
      sp: { type: 'string' }, 'sub-mchid': { type: 'string' }, 'sub-appid': { type: 'string' }, 'sub-app-secret': { type: 'string' },
      ...signingOptions,
    },
    async run(ctx, _a, f) {
      const kind = value(f.kind, 'kind');
      const body =
        kind === 'partner'
          ? {
              merchant_id: value(f.merchant, 'merchant'), kind, service_provider: value(f.sp, 'sp'), sub_mchid: value(f['sub-mchid'], 'sub-mchid'),
              ...(f['sub-appid'] !== undefined ? { sub_appid: value(f['sub-appid'], 'sub-appid') } : {}),
              ...(f['sub-app-secret'] !== undefined ? { sub_app_secret: optional(f['sub-app-secret'], 'sub-app-secret') } : {}),
            }
          : kind === 'direct'
            ? { merchant_id: value(f.merchant, 'merchant'), kind, mchid: value(f.mchid, 'mchid'), appid: value(f.appid, 'appid'), ...signingInput(f) }
            : (() => {
                throw new AppError('VALIDATION_FAILED', '--kind must be direct or partner', { field: 'kind' });
              })();
      const acct = await addAccount(ctx, body);
      if (!ctx.json) ctx.out(`account ${acct.id} (${acct.kind}) for ${acct.merchant_id}\nnotify URL ${acct.notify_url}`);
      return acct;
    },
  },
  'account update': {
    usage: `account update <acct_…> ${signingUpdateUsage}\n       account update <acct_…> (--sub-appid <wx…> --sub-app-secret <s|@file> | --no-sub-appid)`,
    help: 'Changes a channel account in place (checked like `account add`): a direct account\'s keys, or a partner account\'s sub_appid (its keys are the service provider\'s: `sp update`). Running gateways rebuild its channel.',
    options: { ...signingUpdateOptions, 'sub-appid': { type: 'string' }, 'sub-app-secret': { type: 'string' }, 'no-sub-appid': { type: 'boolean' } },
    async run(ctx, a, f) {
      const partner = f['sub-appid'] !== undefined || f['sub-app-secret'] !== undefined || f['no-sub-appid'] === true;
      const body = partner
        ? {
            ...(f['no-sub-appid'] === true ? { sub_appid: null } : f['sub-appid'] !== undefined ? { sub_appid: value(f['sub-appid'], 'sub-appid') } : {}),
            ...(f['sub-app-secret'] !== undefined ? { sub_app_secret: value(f['sub-app-secret'], 'sub-app-secret') } : {}),
          }
        : signingUpdate(f);
      const acct = await updateAccount(ctx, arg(a, 0, 'account id'), body, (ref) => publishChannelChange(ctx.config.REDIS_URL, ref));
      if (!ctx.json) ctx.out(`account ${acct.id} (${acct.kind}) updated`);
      return acct;
    },
  },
  'account list': {
    usage: 'account list [--merchant <mch_…>]',
    help: 'Lists channel accounts (ids, mchids, key ids; never secrets).',
    options: { merchant: { type: 'string' } },
    async run(ctx, _a, f) {
      const list = await listAccounts(ctx, typeof f.merchant === 'string' ? f.merchant : undefined);
      if (!ctx.json)
        ctx.out(
          table(
            list.map((a) => ({ ...a, mchid: a.mchid ?? a.service_provider?.sp_mchid, sub_mchid: a.sub_mchid })),
            ['id', 'merchant_id', 'kind', 'mchid', 'sub_mchid', 'notify_url'],
          ),
        );
      return list;
    },
  },
  reconcile: {
    usage: 'reconcile --date YYYY-MM-DD [--account <account id | default>]',
    help:
      'Reconciles one Beijing day by hand (docs/reconciliation.md): downloads the trade and profit-sharing bills of every channel account ' +
      '(or only --account; `default` = the WECHATPAY_* account), matches them with our records and replaces that day\'s result. ' +
      'Prints the mismatches still open. Exit code: 0 all matched (or resolved), 2 mismatches remain open, 3 a bill could not be reconciled (not ready, bad hash, channel error: retried later).',
    options: { date: { type: 'string' }, account: { type: 'string' } },
    async run(ctx, _a, f) {
      const date = value(f.date, 'date');
      if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`)) || new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10) !== date)
        throw new AppError('VALIDATION_FAILED', '--date must be a calendar day YYYY-MM-DD (Beijing)', { field: 'date' });
      const deps = reconcileDeps(ctx);
      let only: AccountRef | undefined;
      if (f.account !== undefined) {
        const found = await accountRef(ctx.prisma, value(f.account, 'account'));
        if (!found) throw new AppError('NOT_FOUND', `no channel account ${String(f.account)}`, { field: 'account' });
        only = found;
      }
      const runs = await reconcileDay(deps, date, only);
      const open = await openMismatches(ctx.prisma, { billDate: date, accountKey: only?.key });
      if (!ctx.json) {
        for (const r of runs)
          ctx.out(
            'runId' in r
              ? `${r.billDate}  ${r.accountKey}  ${r.status}  mismatches=${r.mismatches} open=${r.open} recovered=${r.recovered}${r.error ? `  (${r.error})` : ''}`
              : `${r.billDate}  ${r.accountKey}  busy (another process is reconciling it)`,
          );
        ctx.out(open.length ? `open mismatches:\n${table(open.map((m) => ({ id: m.id, account: m.run.accountKey, bill: m.bill, kind: m.kind, ref: m.ref, ours: m.ours, theirs: m.theirs })), ['id', 'account', 'bill', 'kind', 'ref', 'ours', 'theirs'])}` : 'no open mismatches');
      }
      return { runs, open: open.map((m) => ({ id: m.id, account: m.run.accountKey, bill_date: m.billDate, bill: m.bill, kind: m.kind, ref: m.ref, ours: m.ours, theirs: m.theirs, detail: m.detail })) };
    },
    exitCode(result) {
      const r = result as { runs: Array<{ status: string }>; open: unknown[] };
      if (r.open.length > 0) return 2;
      return r.runs.every((x) => x.status === 'succeeded') ? 0 : 3;
    },
  },
  'secrets rotate': {
    usage: 'secrets rotate',
    help: 'Re-encrypts every stored secret\'s data key under the current master key (the first of SECRETS_MASTER_KEY). Then the old key can be removed from SECRETS_MASTER_KEY.',
    async run(ctx) {
      const r = await rotateSecrets(ctx);
      if (!ctx.json) ctx.out(`${r.rewrapped} secret(s) re-wrapped under master key ${r.current}`);
      return r;
    },
  },
  'secrets new-key': {
    usage: 'secrets new-key --kid <id>',
    help: 'Prints a new master key entry. Rotation: put it FIRST in SECRETS_MASTER_KEY (keep the old entries after it), restart, run `secrets rotate`, then drop the old entries.',
    options: { kid: { type: 'string' } },
    offline: true,
    async run(ctx, _a, f) {
      const spec = newMasterKeySpec(value(f.kid, 'kid'));
      if (!ctx.json) ctx.out(spec);
      return { entry: spec };
    },
  },
};

function usage(): string {
  return ['Usage: npm run admin -- <command> [--json] [--help]', '', ...Object.values(COMMANDS).map((c) => `  ${c.usage.split('\n')[0]}`)].join('\n');
}

/** The gateway's own environment: this process's when it has DATABASE_URL, else the sandbox's (.data/sandbox.json). */
function gatewayEnvOf(env: Record<string, string | undefined>, cwd: string): Record<string, string | undefined> {
  if (env.DATABASE_URL) return env;
  const s = JSON.parse(readFileSync(resolve(cwd, '.data', 'sandbox.json'), 'utf8')) as { GATEWAY_ENV?: Record<string, string> };
  if (!s.GATEWAY_ENV) throw new ConfigError(['.data/sandbox.json has no GATEWAY_ENV: restart `npm run sandbox` (or set the gateway environment)']);
  return s.GATEWAY_ENV;
}

/** What reconciliation needs, built like the gateway builds it (channels per account), quietly. */
function reconcileDeps(ctx: Ctx): ReconcileDeps {
  const config = loadConfig(ctx.gatewayEnv());
  // The command prints its own report; only errors go to the log.
  const logger = createLogger('error');
  const channel = createChannelRegistry(defaultChannelFactories(config, (p) => readFileSync(p, 'utf8'), logger)).get('wechatpay');
  return { prisma: ctx.prisma, config, logger, metrics: createMetrics(), now: () => new Date(), channel, channels: createChannelResolver({ prisma: ctx.prisma, config, logger, defaultChannel: channel }) };
}

/** Environment first; else the sandbox running from this folder. */
function loadCliConfig(env: Record<string, string | undefined>, cwd: string): AdminEnvConfig {
  if (env.DATABASE_URL) return loadAdminConfig(env);
  const file = resolve(cwd, '.data', 'sandbox.json');
  if (!existsSync(file))
    throw new ConfigError(['DATABASE_URL: is required (or start `npm run sandbox` in this folder: the CLI then finds it through .data/sandbox.json)']);
  const s = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  return loadAdminConfig({ APP_MODE: 'sandbox', ...s, ...Object.fromEntries(Object.entries(env).filter(([k]) => k === 'SECRETS_MASTER_KEY' || k === 'PUBLIC_BASE_URL')) });
}

export async function runCli(argv: string[], env: Record<string, string | undefined>, io: { out: (s: string) => void; err: (s: string) => void; cwd: string }): Promise<number> {
  const words = argv.filter((a) => !a.startsWith('-'));
  // Two-word commands (`merchant create`), else one word (`reconcile`).
  const twoWords = COMMANDS[words.slice(0, 2).join(' ')];
  const cmd = twoWords ?? COMMANDS[words[0] ?? ''];
  const lastWord = twoWords ? words[1]! : words[0]!;
  if (!cmd) {
    io[argv.includes('--help') || argv.length === 0 ? 'out' : 'err'](usage());
    return argv.includes('--help') || argv.length === 0 ? 0 : 64;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(`Usage: npm run admin -- ${cmd.usage}\n\n${cmd.help}\n\nAdd --json for machine-readable output.`);
    return 0;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv.slice(argv.indexOf(lastWord) + 1), options: { json: { type: 'boolean' }, ...(cmd.options ?? {}) }, allowPositionals: true, strict: true });
  } catch (e) {
    io.err(`${(e as Error).message}\nUsage: npm run admin -- ${cmd.usage}`);
    return 64;
  }
  const json = parsed.values.json === true;
  let prisma: PrismaClient | undefined;
  try {
    const config = cmd.offline ? ({} as AdminEnvConfig) : loadCliConfig(env, io.cwd);
    prisma = cmd.offline ? (undefined as unknown as PrismaClient) : createPrisma(config.DATABASE_URL, { preparedStatements: config.DATABASE_PREPARED_STATEMENTS, poolSize: config.DATABASE_POOL_SIZE });
    const result = await cmd.run({ prisma, config, json, out: io.out, gatewayEnv: () => gatewayEnvOf(env, io.cwd) }, parsed.positionals, parsed.values as Flags);
    if (json) io.out(JSON.stringify(result, null, 2));
    return cmd.exitCode?.(result) ?? 0;
  } catch (e) {
    if (e instanceof AppError) {
      io.err(json ? JSON.stringify({ error: { code: e.code, message: e.message, field: e.opts.field } }) : `error: ${e.message}`);
      return e.status === 404 ? 66 : 65;
    }
    if (e instanceof ConfigError) {
      io.err(e.message);
      return 78;
    }
    const msg = (e as Error)?.message ?? String(e);
    if (/ECONNREFUSED|connect/i.test(msg)) io.err(`error: cannot reach the database (${msg}). Is the sandbox / PostgreSQL running?`);
    else io.err(`error: ${msg}`);
    return 1;
  } finally {
    if (prisma) await disconnectPrisma(prisma).catch(() => undefined);
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2), process.env, { out: (s) => process.stdout.write(`${s}\n`), err: (s) => process.stderr.write(`${s}\n`), cwd: process.cwd() }).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}

/** Tells running gateways (through REDIS_URL) what changed; `unreachable` says what happens without it. */
async function publish(redisUrl: string | undefined, channel: string, message: string, unreachable: string): Promise<void> {
  if (!redisUrl) return;
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.publish(channel, message);
  } catch {
    process.stderr.write(`could not reach Redis: ${unreachable}\n`);
  } finally {
    redis.disconnect();
  }
}

/** Running gateways cache keys for 30 s at most; with REDIS_URL they drop a revoked one at once. */
const publishRevocation = (redisUrl: string | undefined, keyHash: string) =>
  publish(redisUrl, MERCHANT_KEY_REVOKED_CHANNEL, keyHash, 'running gateways forget the key within 30 s');

/** Running gateways cache an account's channel until told (or until their Redis connection comes back). */
const publishChannelChange = (redisUrl: string | undefined, ref: string) =>
  publish(redisUrl, CHANNEL_ACCOUNT_CHANGED, ref, 'running gateways keep the old keys until restarted');

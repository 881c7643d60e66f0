import { loadMerchantPrivateKey, PlatformKeyRing } from '../../channels/wechatpay/wechatpay.crypto';
import type { Config } from '../../config/config';
import { AppError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { PrismaClient } from '../../lib/prisma';
import { decryptSecret, encryptSecret, parseMasterKeys, rewrapSecret, type MasterKeys } from '../../lib/secrets';
import { addAccountSchema, serviceProviderSchema, updatePartnerAccountSchema, updateSigningSchema, type UpdateSigningInput } from './account.schemas';

/**
 * Channel accounts (where a merchant's checkouts are paid) and service providers (服务商, registered
 * once). Everything is validated here, at `account add`, so a malformed PEM or a short APIv3 key is
 * refused with a message naming the field instead of failing the first payment. Secrets go into one
 * encrypted envelope per row (lib/secrets.ts) and never come back out through any view.
 */

/** The secrets of a signing identity (direct merchant or service provider), as stored in the envelope. */
export interface SigningSecrets {
  appSecret: string;
  merchantPrivateKeyPem: string;
  apiv3Key: string;
  platformKeys: Record<string, string>;
}

/** The secrets of a partner account: only the sub_appid's OAuth secret, if it has its own official account. */
export interface PartnerSecrets {
  subAppSecret?: string;
}

/** What the merchant services need of the configuration (the admin CLI has no WECHATPAY_* settings). */
export type AdminConfig = Pick<Config, 'SECRETS_MASTER_KEY' | 'PUBLIC_BASE_URL'>;

export function masterKeysOf(config: Pick<Config, 'SECRETS_MASTER_KEY'>): MasterKeys {
  const mk = parseMasterKeys(config.SECRETS_MASTER_KEY);
  if (!mk) throw new AppError('UNPROCESSABLE', 'SECRETS_MASTER_KEY is not configured: channel secrets cannot be stored or read');
  return mk;
}

const invalid = (field: string, message: string) => new AppError('VALIDATION_FAILED', `${field}: ${message}`, { field });

/** Parses every key the way the channel will, so a bad one is refused now with the field named. */
function checkSigningIdentity(i: { merchant_private_key: string; platform_keys: Record<string, string> }): void {
  if (!i.merchant_private_key.includes('-----BEGIN')) throw invalid('merchant_private_key', 'is not PEM (expected -----BEGIN PRIVATE KEY----- from apiclient_key.pem)');
  try {
    const k = loadMerchantPrivateKey(i.merchant_private_key);
    const bits = k.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new Error(`RSA key of ${bits} bits; WeChat Pay API keys are 2048 bits`);
  } catch (e) {
    throw invalid('merchant_private_key', `not a usable RSA private key in PEM (${(e as Error).message})`);
  }
  for (const [id, pem] of Object.entries(i.platform_keys)) {
    try {
      new PlatformKeyRing({ [id]: pem });
    } catch (e) {
      throw invalid(`platform_keys.${id}`, `not a usable WeChat Pay public key or certificate (${(e as Error).message})`);
    }
  }
}

function parseInput<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } } }, body: unknown): T {
  const p = schema.safeParse(body);
  if (p.success) return p.data;
  const issue = p.error.issues[0]!;
  const field = issue.path.map(String).join('.');
  throw new AppError('VALIDATION_FAILED', field ? `${field}: ${issue.message}` : issue.message, field ? { field } : {});
}

export interface ServiceProviderView {
  id: string;
  name: string;
  sp_mchid: string;
  sp_appid: string;
  merchant_cert_serial: string;
  platform_key_ids: string[];
  created_at: string;
}

export interface AccountView {
  id: string;
  merchant_id: string;
  channel: string;
  kind: 'direct' | 'partner';
  mchid: string | null;
  appid: string | null;
  merchant_cert_serial: string | null;
  platform_key_ids: string[];
  service_provider: { id: string; sp_mchid: string; sp_appid: string } | null;
  sub_mchid: string | null;
  sub_appid: string | null;
  /** Where WeChat sends this account's payment notifies (give it nothing else). */
  notify_url: string;
  created_at: string;
}

type SpRow = { id: string; name: string; spMchid: string; spAppid: string; merchantCertSerial: string; platformKeyIds: string[]; createdAt: Date };

const toSpView = (s: SpRow): ServiceProviderView => ({
  id: s.id,
  name: s.name,
  sp_mchid: s.spMchid,
  sp_appid: s.spAppid,
  merchant_cert_serial: s.merchantCertSerial,
  platform_key_ids: s.platformKeyIds,
  created_at: s.createdAt.toISOString(),
});

/** `/notify/wechatpay/{account id}/transactions`: the account's own keys verify what arrives there. */
export function accountNotifyUrl(config: Pick<Config, 'PUBLIC_BASE_URL'>, accountId: string, kind: 'transactions' | 'refunds' = 'transactions'): string {
  return new URL(`/notify/wechatpay/${accountId}/${kind}`, config.PUBLIC_BASE_URL).toString();
}

const accountInclude = { serviceProvider: { select: { id: true, spMchid: true, spAppid: true } } } as const;
type AccountRow = {
  id: string; merchantId: string; channel: string; kind: 'direct' | 'partner'; mchid: string | null; appid: string | null;
  merchantCertSerial: string | null; platformKeyIds: string[]; subMchid: string | null; subAppid: string | null; createdAt: Date;
  serviceProvider: { id: string; spMchid: string; spAppid: string } | null;
};

function toAccountView(config: Pick<Config, 'PUBLIC_BASE_URL'>, a: AccountRow): AccountView {
  return {
    id: a.id,
    merchant_id: a.merchantId,
    channel: a.channel,
    kind: a.kind,
    mchid: a.mchid,
    appid: a.appid,
    merchant_cert_serial: a.merchantCertSerial,
    platform_key_ids: a.platformKeyIds,
    service_provider: a.serviceProvider ? { id: a.serviceProvider.id, sp_mchid: a.serviceProvider.spMchid, sp_appid: a.serviceProvider.spAppid } : null,
    sub_mchid: a.subMchid,
    sub_appid: a.subAppid,
    notify_url: accountNotifyUrl(config, a.id),
    created_at: a.createdAt.toISOString(),
  };
}

function signingSecretsOf(i: { app_secret: string; merchant_private_key: string; apiv3_key: string; platform_keys: Record<string, string> }): SigningSecrets {
  return { appSecret: i.app_secret, merchantPrivateKeyPem: i.merchant_private_key, apiv3Key: i.apiv3_key, platformKeys: i.platform_keys };
}

/** Registers a service provider (服务商) once; its sub-merchants are then added with `account add --kind partner`. */
export async function addServiceProvider(deps: { prisma: PrismaClient; config: AdminConfig }, body: unknown): Promise<ServiceProviderView> {
  const i = parseInput(serviceProviderSchema, body);
  checkSigningIdentity(i);
  const mk = masterKeysOf(deps.config);
  if (await deps.prisma.serviceProvider.findUnique({ where: { spMchid: i.sp_mchid }, select: { id: true } }))
    throw new AppError('CONFLICT', `service provider ${i.sp_mchid} is already registered`, { field: 'sp_mchid' });
  const id = newId('sp');
  const sealed = encryptSecret(mk, id, signingSecretsOf(i));
  const row = await deps.prisma.serviceProvider.create({
    data: {
      id,
      name: i.name,
      spMchid: i.sp_mchid,
      spAppid: i.sp_appid,
      merchantCertSerial: i.merchant_cert_serial.toUpperCase(),
      platformKeyIds: Object.keys(i.platform_keys),
      secrets: sealed.envelope,
      secretsKeyId: sealed.kid,
    },
  });
  return toSpView(row);
}

export async function listServiceProviders(prisma: PrismaClient): Promise<ServiceProviderView[]> {
  return (await prisma.serviceProvider.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })).map(toSpView);
}

/** Gives a merchant its channel account (one per merchant): direct, or a sub-merchant of a registered service provider. */
export async function addAccount(deps: { prisma: PrismaClient; config: AdminConfig }, body: unknown): Promise<AccountView> {
  const i = parseInput(addAccountSchema, body);
  const { prisma, config } = deps;
  if (!(await prisma.merchant.findUnique({ where: { id: i.merchant_id }, select: { id: true } })))
    throw new AppError('VALIDATION_FAILED', `merchant_id: no merchant ${i.merchant_id}`, { field: 'merchant_id' });
  if (await prisma.channelAccount.findUnique({ where: { merchantId: i.merchant_id }, select: { id: true } }))
    throw new AppError('CONFLICT', `merchant ${i.merchant_id} already has a channel account`, { field: 'merchant_id' });
  const mk = masterKeysOf(config);
  const id = newId('acct');

  if (i.kind === 'direct') {
    checkSigningIdentity(i);
    const sealed = encryptSecret(mk, id, signingSecretsOf(i));
    const row = await prisma.channelAccount.create({
      data: {
        id,
        merchantId: i.merchant_id,
        kind: 'direct',
        mchid: i.mchid,
        appid: i.appid,
        merchantCertSerial: i.merchant_cert_serial.toUpperCase(),
        platformKeyIds: Object.keys(i.platform_keys),
        secrets: sealed.envelope,
        secretsKeyId: sealed.kid,
      },
      include: accountInclude,
    });
    return toAccountView(config, row);
  }

  const sp = await prisma.serviceProvider.findFirst({ where: { OR: [{ id: i.service_provider }, { spMchid: i.service_provider }] } });
  if (!sp)
    throw new AppError('VALIDATION_FAILED', `service_provider: unknown service provider ${i.service_provider} (register it first with \`sp add\`)`, { field: 'service_provider' });
  // FACTS-partner-bills §1.12: WeChat refuses sub_mchid = sp_mchid ("子商户mchid不能与自身mchid相同").
  if (i.sub_mchid === sp.spMchid) throw new AppError('VALIDATION_FAILED', 'sub_mchid: must differ from the service provider\'s sp_mchid', { field: 'sub_mchid' });
  if (await prisma.channelAccount.findFirst({ where: { serviceProviderId: sp.id, subMchid: i.sub_mchid }, select: { id: true } }))
    throw new AppError('CONFLICT', `sub_mchid ${i.sub_mchid} is already the account of another merchant`, { field: 'sub_mchid' });
  const secrets: PartnerSecrets = i.sub_app_secret ? { subAppSecret: i.sub_app_secret } : {};
  const sealed = i.sub_app_secret ? encryptSecret(mk, id, secrets) : null;
  const row = await prisma.channelAccount.create({
    data: {
      id,
      merchantId: i.merchant_id,
      kind: 'partner',
      serviceProviderId: sp.id,
      subMchid: i.sub_mchid,
      subAppid: i.sub_appid ?? null,
      platformKeyIds: [],
      secrets: sealed?.envelope ?? null,
      secretsKeyId: sealed?.kid ?? null,
    },
    include: accountInclude,
  });
  return toAccountView(config, row);
}

export async function listAccounts(deps: { prisma: PrismaClient; config: AdminConfig }, merchantId?: string): Promise<AccountView[]> {
  const rows = await deps.prisma.channelAccount.findMany({
    where: merchantId ? { merchantId } : {},
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    include: accountInclude,
  });
  return rows.map((r) => toAccountView(deps.config, r));
}

/** Called after an account or service provider changed (its id): running gateways drop the cached channel. */
export type OnChannelChanged = (ref: string) => Promise<void>;

/** The stored identity with the update applied, checked exactly as at `add`. */
function updatedSigning(old: SigningSecrets, u: UpdateSigningInput): SigningSecrets {
  const next: SigningSecrets = {
    appSecret: u.app_secret ?? old.appSecret,
    merchantPrivateKeyPem: u.merchant_private_key ?? old.merchantPrivateKeyPem,
    apiv3Key: u.apiv3_key ?? old.apiv3Key,
    platformKeys: u.platform_keys ?? { ...old.platformKeys, ...u.add_platform_keys },
  };
  checkSigningIdentity({ merchant_private_key: next.merchantPrivateKeyPem, platform_keys: next.platformKeys });
  return next;
}

/** The columns a signing-identity update writes (same for a direct account and a service provider). */
function signingChange(mk: MasterKeys, id: string, envelope: string, body: unknown) {
  const u = parseInput(updateSigningSchema, body);
  const next = updatedSigning(decryptSecret<SigningSecrets>(mk, id, envelope), u);
  const sealed = encryptSecret(mk, id, next);
  return {
    secrets: sealed.envelope,
    secretsKeyId: sealed.kid,
    platformKeyIds: Object.keys(next.platformKeys),
    ...(u.merchant_cert_serial ? { merchantCertSerial: u.merchant_cert_serial.toUpperCase() } : {}),
  };
}

const changedMeanwhile = () => new AppError('CONFLICT', 'the account was changed by someone else meanwhile: read it again and retry');

/**
 * `account update`: a direct account's keys (rotation of the merchant key + serial, platform keys added
 * or replaced, app secret, APIv3 key), or a partner account's sub_appid. Validated like `account add`;
 * written by compare-and-set on the old envelope; then `onChanged` so cached channels are rebuilt.
 */
export async function updateAccount(deps: { prisma: PrismaClient; config: AdminConfig }, accountId: string, body: unknown, onChanged?: OnChannelChanged): Promise<AccountView> {
  const { prisma, config } = deps;
  const a = await prisma.channelAccount.findUnique({ where: { id: accountId } });
  if (!a) throw new AppError('NOT_FOUND', `No channel account ${accountId}`);
  const mk = masterKeysOf(config);
  if (a.kind === 'direct') {
    const r = await prisma.channelAccount.updateMany({ where: { id: a.id, secrets: a.secrets }, data: signingChange(mk, a.id, a.secrets!, body) });
    if (r.count !== 1) throw changedMeanwhile();
  } else {
    const u = parseInput(updatePartnerAccountSchema, body);
    const sealed = u.sub_appid ? encryptSecret(mk, a.id, { subAppSecret: u.sub_app_secret } satisfies PartnerSecrets) : null;
    const r = await prisma.channelAccount.updateMany({
      where: { id: a.id, secrets: a.secrets },
      data: { subAppid: u.sub_appid ?? null, secrets: sealed?.envelope ?? null, secretsKeyId: sealed?.kid ?? null },
    });
    if (r.count !== 1) throw changedMeanwhile();
  }
  await onChanged?.(a.id);
  return toAccountView(config, await prisma.channelAccount.findUniqueOrThrow({ where: { id: a.id }, include: accountInclude }));
}

/** `sp update`: the service provider's keys (every partner account of it signs with them). */
export async function updateServiceProvider(deps: { prisma: PrismaClient; config: AdminConfig }, ref: string, body: unknown, onChanged?: OnChannelChanged): Promise<ServiceProviderView> {
  const sp = await deps.prisma.serviceProvider.findFirst({ where: { OR: [{ id: ref }, { spMchid: ref }] } });
  if (!sp) throw new AppError('NOT_FOUND', `No service provider ${ref}`);
  const data = signingChange(masterKeysOf(deps.config), sp.id, sp.secrets, body);
  const r = await deps.prisma.serviceProvider.updateMany({ where: { id: sp.id, secrets: sp.secrets }, data });
  if (r.count !== 1) throw changedMeanwhile();
  await onChanged?.(sp.id);
  return toSpView(await deps.prisma.serviceProvider.findUniqueOrThrow({ where: { id: sp.id } }));
}

/**
 * Master-key rotation: re-wraps every envelope not under the current master key (the first of
 * SECRETS_MASTER_KEY). Idempotent; each row is a compare-and-set on its old envelope, so concurrent
 * runs cannot lose a write. Afterwards the old key can be dropped from SECRETS_MASTER_KEY.
 */
export async function rotateSecrets(deps: { prisma: PrismaClient; config: AdminConfig }): Promise<{ rewrapped: number; current: string }> {
  const mk = masterKeysOf(deps.config);
  let rewrapped = 0;
  for (const a of await deps.prisma.channelAccount.findMany({ where: { secrets: { not: null }, NOT: { secretsKeyId: mk.current } }, select: { id: true, secrets: true } })) {
    const next = rewrapSecret(mk, a.id, a.secrets!);
    if (!next) continue;
    const r = await deps.prisma.channelAccount.updateMany({ where: { id: a.id, secrets: a.secrets }, data: { secrets: next.envelope, secretsKeyId: next.kid } });
    rewrapped += r.count;
  }
  for (const s of await deps.prisma.serviceProvider.findMany({ where: { NOT: { secretsKeyId: mk.current } }, select: { id: true, secrets: true } })) {
    const next = rewrapSecret(mk, s.id, s.secrets);
    if (!next) continue;
    const r = await deps.prisma.serviceProvider.updateMany({ where: { id: s.id, secrets: s.secrets }, data: { secrets: next.envelope, secretsKeyId: next.kid } });
    rewrapped += r.count;
  }
  return { rewrapped, current: mk.current };
}

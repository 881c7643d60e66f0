import type { Redis } from 'ioredis';
import type pino from 'pino';
import type { ChannelCallObserver, PaymentChannel } from '../../channels/channel';
import { createWechatPayChannel, loadWechatPayKeys, type WechatPayConfig, type WechatPayKeys } from '../../channels/wechatpay/wechatpay.channel';
import type { Config } from '../../config/config';
import { AppError } from '../../lib/errors';
import { channelCallObserver, type Metrics } from '../../lib/metrics';
import type { PrismaClient } from '../../lib/prisma';
import { decryptSecret } from '../../lib/secrets';
import { accountNotifyUrl, masterKeysOf, type PartnerSecrets, type SigningSecrets } from './account.service';

/**
 * Which PaymentChannel pays a merchant's checkouts. A merchant without a channel account uses the
 * default account (the WECHATPAY_* environment, `deps.channel`), so single-account deployments are
 * unchanged. Channels are built once per account and cached with their parsed KeyObjects; partner
 * accounts of one service provider share that provider's keys (every key is the SP's).
 */
export interface ResolvedChannel {
  /** null = the default account */
  accountId: string | null;
  channel: PaymentChannel;
  /** The notify_url to order with: the account's own, so its keys verify the notify. */
  notifyUrl: string;
}

export interface ChannelResolver {
  readonly defaultChannel: PaymentChannel;
  /** The channel of an account id (null = default). Throws NOT_FOUND for an unknown id. */
  forAccount(accountId: string | null): Promise<PaymentChannel>;
  /** The merchant's current account (cached for a short while: accounts are added, not changed). */
  forMerchant(merchantId: string): Promise<ResolvedChannel>;
  /** The account a checkout was paid through (its paid channel order), else its merchant's. */
  forCheckout(checkoutId: string): Promise<{ accountId: string | null; channel: PaymentChannel }>;
  /** Number of account channels built (bench: memory per cached account). */
  cachedAccounts(): number;
  /**
   * An account (acct_…) or service provider (sp_…) changed (`account update`, `sp update`): drop what is
   * cached for it here and tell every other instance (Redis pub/sub), so the next call rebuilds it.
   */
  invalidate(ref: string): Promise<void>;
  close?(): Promise<void>;
}

/** Pub/sub channel of invalidate(): the message is the changed account or service provider id. */
export const CHANNEL_ACCOUNT_CHANGED = 'gw:channel-account-changed';

export interface ResolverOptions {
  prisma: PrismaClient;
  config: Config;
  logger?: pino.Logger;
  defaultChannel: PaymentChannel;
  /** Tests: where an account's WeChat lives (e.g. a second simulator). Production: the configured hosts. */
  endpointsFor?: (account: { id: string; mchid: string }) => Partial<Pick<WechatPayConfig, 'baseUrl' | 'oauthBaseUrl' | 'apiBaseUrl'>>;
  /** How long a merchant → account answer is reused (default 30 s). */
  merchantTtlMs?: number;
  /** Listens for CHANNEL_ACCOUNT_CHANGED (and publishes on invalidate); without it, invalidation is local. */
  redis?: Redis;
  /** Metrics of every channel call of every account. */
  onCall?: ChannelCallObserver;
}

export function createChannelResolver(o: ResolverOptions): ChannelResolver {
  const accounts = new Map<string, Promise<PaymentChannel>>();
  const spKeys = new Map<string, Promise<{ keys: WechatPayKeys; secrets: SigningSecrets }>>();
  const merchants = new Map<string, { at: number; accountId: string | null }>();
  const ttl = o.merchantTtlMs ?? 30_000;
  const base = (id: string, mchid: string) => ({
    baseUrl: o.config.WECHATPAY_BASE_URL,
    oauthBaseUrl: o.config.WECHAT_OAUTH_BASE_URL,
    apiBaseUrl: o.config.WECHAT_API_BASE_URL,
    timeoutMs: o.config.WECHATPAY_HTTP_TIMEOUT_MS,
    onCall: o.onCall,
    ...o.endpointsFor?.({ id, mchid }),
  });

  async function serviceProvider(spId: string) {
    let p = spKeys.get(spId);
    if (!p) {
      p = (async () => {
        const sp = await o.prisma.serviceProvider.findUniqueOrThrow({ where: { id: spId } });
        const secrets = decryptSecret<SigningSecrets>(masterKeysOf(o.config), sp.id, sp.secrets);
        return { keys: loadWechatPayKeys(secrets), secrets };
      })();
      spKeys.set(spId, p);
      p.catch(() => spKeys.delete(spId));
    }
    return p;
  }

  async function build(accountId: string): Promise<PaymentChannel> {
    const a = await o.prisma.channelAccount.findUnique({ where: { id: accountId }, include: { serviceProvider: true } });
    if (!a) throw new AppError('NOT_FOUND', `No channel account ${accountId}`);
    const mk = masterKeysOf(o.config);
    if (a.kind === 'direct') {
      const s = decryptSecret<SigningSecrets>(mk, a.id, a.secrets!);
      return createWechatPayChannel(
        {
          ...base(a.id, a.mchid!),
          mchid: a.mchid!,
          appid: a.appid!,
          appSecret: s.appSecret,
          merchantPrivateKeyPem: s.merchantPrivateKeyPem,
          merchantCertSerial: a.merchantCertSerial!,
          apiv3Key: s.apiv3Key,
          platformKeys: s.platformKeys,
        },
        o.logger,
      );
    }
    const sp = a.serviceProvider!;
    const { keys, secrets } = await serviceProvider(sp.id);
    const own = a.secrets ? decryptSecret<PartnerSecrets>(mk, a.id, a.secrets) : {};
    return createWechatPayChannel(
      {
        ...base(a.id, sp.spMchid),
        mchid: sp.spMchid,
        appid: sp.spAppid,
        appSecret: secrets.appSecret,
        merchantPrivateKeyPem: secrets.merchantPrivateKeyPem,
        merchantCertSerial: sp.merchantCertSerial,
        apiv3Key: secrets.apiv3Key,
        platformKeys: secrets.platformKeys,
        partner: { subMchid: a.subMchid!, ...(a.subAppid ? { subAppid: a.subAppid, subAppSecret: own.subAppSecret } : {}) },
      },
      o.logger,
      keys,
    );
  }

  // An SP's keys are inside every channel of its sub-merchants: an SP change drops them all (rare).
  const drop = (ref: string) => {
    if (spKeys.delete(ref) || ref.startsWith('sp_')) accounts.clear();
    else accounts.delete(ref);
  };
  // As the merchant-key cache (http/merchant-cache.ts): every (re)subscribe and every disconnect clears
  // everything, since a message may have been missed meanwhile.
  const sub = o.redis?.duplicate();
  if (sub) {
    const clear = () => {
      accounts.clear();
      spKeys.clear();
    };
    sub.on('error', () => undefined);
    sub.on('message', (_c: string, ref: string) => drop(ref));
    sub.on('ready', () => {
      clear();
      sub.subscribe(CHANNEL_ACCOUNT_CHANGED).catch((err: unknown) => o.logger?.warn({ err }, 'channel resolver: subscribe failed'));
    });
    sub.on('close', clear);
  }

  async function forAccount(accountId: string | null): Promise<PaymentChannel> {
    if (accountId === null) return o.defaultChannel;
    let p = accounts.get(accountId);
    if (!p) {
      p = build(accountId);
      accounts.set(accountId, p);
      p.catch(() => accounts.delete(accountId)); // a failed build (e.g. master key missing) is retried next time
    }
    return p;
  }

  async function accountOfMerchant(merchantId: string): Promise<string | null> {
    const hit = merchants.get(merchantId);
    const now = Date.now();
    if (hit && now - hit.at < ttl) return hit.accountId;
    const a = await o.prisma.channelAccount.findUnique({ where: { merchantId }, select: { id: true } });
    merchants.set(merchantId, { at: now, accountId: a?.id ?? null });
    return a?.id ?? null;
  }

  return {
    defaultChannel: o.defaultChannel,
    forAccount,
    async forMerchant(merchantId) {
      const accountId = await accountOfMerchant(merchantId);
      return {
        accountId,
        channel: await forAccount(accountId),
        notifyUrl: accountId === null ? o.config.notifyUrl : accountNotifyUrl(o.config, accountId),
      };
    },
    async forCheckout(checkoutId) {
      const paid = await o.prisma.channelOrder.findFirst({ where: { checkoutId, status: 'paid' }, orderBy: { updatedAt: 'asc' }, select: { accountId: true } });
      if (paid) return { accountId: paid.accountId, channel: await forAccount(paid.accountId) };
      const c = await o.prisma.checkout.findUnique({ where: { id: checkoutId }, select: { merchantId: true } });
      if (!c) return { accountId: null, channel: o.defaultChannel };
      const { accountId, channel } = await this.forMerchant(c.merchantId);
      return { accountId, channel };
    },
    cachedAccounts: () => accounts.size,
    async invalidate(ref) {
      drop(ref);
      await o.redis?.publish(CHANNEL_ACCOUNT_CHANGED, ref);
    },
    async close() {
      await sub?.quit().catch(() => undefined);
    },
  };
}

const fallbacks = new WeakMap<PaymentChannel, ChannelResolver>();

/**
 * The resolver of these deps: `deps.channels` when the gateway built one, else one made once per
 * default channel (deps objects built elsewhere, e.g. by tests, keep working unchanged).
 */
export function channelsOf(deps: { channels?: ChannelResolver; channel: PaymentChannel; prisma: PrismaClient; config?: Config; logger?: pino.Logger; metrics?: Partial<Pick<Metrics, 'channelCalls'>> }): ChannelResolver {
  if (deps.channels) return deps.channels;
  let r = fallbacks.get(deps.channel);
  if (!r) {
    if (!deps.config) {
      const only = deps.channel;
      return {
        defaultChannel: only,
        forAccount: async (id) => {
          if (id === null) return only;
          throw new Error(`channel account ${id} needs a resolver (deps.channels)`);
        },
        forMerchant: async () => ({ accountId: null, channel: only, notifyUrl: '' }),
        forCheckout: async () => ({ accountId: null, channel: only }),
        cachedAccounts: () => 0,
        invalidate: async () => undefined,
      };
    }
    r = createChannelResolver({ prisma: deps.prisma, config: deps.config, logger: deps.logger, defaultChannel: deps.channel, ...(deps.metrics?.channelCalls ? { onCall: channelCallObserver({ channelCalls: deps.metrics.channelCalls }) } : {}) });
    fallbacks.set(deps.channel, r);
  }
  return r;
}

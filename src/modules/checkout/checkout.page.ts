import { pooledRandomBytes } from '../../lib/random';
import type { JsapiParams, PaymentChannel } from '../../channels/channel';
import type { Config } from '../../config/config';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { PrismaClient } from '../../lib/prisma';
import { makeOAuthState, readOAuthState } from '../../lib/signed';
import { ensureChannelOrder } from '../payments/channel-order.service';
import { channelsOf, type ChannelResolver } from '../merchants/channel-resolver';
import { syncCheckoutWithChannel } from '../payments/payment.sync';
import { detectBrowser, payMethodFor, type BrowserEnv } from './browser.detect';
import type { Checkout } from '../../generated/prisma/client';
import { effectiveStatus } from './checkout.service';
import { loadPageCheckout } from './checkout.page-load';

const TRADE_TYPE = { jsapi: 'JSAPI', h5: 'H5', native: 'NATIVE' } as const;

export interface PageDeps {
  prisma: PrismaClient;
  channel: PaymentChannel;
  channels?: ChannelResolver;
  config: Config;
  logger: Logger;
  now: () => Date;
}

/** What a shopper's page shows: the checkout and its merchant's name, in one query. */
export type PageCheckout = Checkout & { merchant: { name: string } };
const withMerchant = { merchant: { select: { name: true } } } as const;

export type PageDecision =
  | { kind: 'not_found' }
  | { kind: 'status'; status: 'paid' | 'expired' | 'closed'; checkout: PageCheckout }
  | { kind: 'oauth'; checkout: PageCheckout; redirect: string; browserNonce: string }
  | { kind: 'jsapi'; checkout: PageCheckout; jsapiParams: JsapiParams }
  | { kind: 'h5'; checkout: PageCheckout; h5Url: string }
  | { kind: 'native'; checkout: PageCheckout; codeUrl: string }
  | { kind: 'unsupported'; checkout: PageCheckout; env: BrowserEnv };

export interface Visitor {
  userAgent: string | undefined;
  ip: string;
  /** openid from our signed cookie (set after OAuth), if any. */
  openid: string | null;
  /** Reads the openid cookie for the appid the checkout's account pays with (cookies are bound to an appid). */
  openidFor?: (appid: string) => string | null;
}

export function resultUrl(config: Config, checkoutId: string): string {
  return new URL(`/checkout/${checkoutId}/result`, config.PUBLIC_BASE_URL).toString();
}

export function oauthCallbackUrl(config: Config, checkoutId: string): string {
  return new URL(`/checkout/${checkoutId}/oauth/callback`, config.PUBLIC_BASE_URL).toString();
}

/** Decides what a shopper opening /checkout/{id} gets, creating or reusing the channel order. */
export async function decideCheckoutPage(deps: PageDeps, checkoutId: string, visitor: Visitor): Promise<PageDecision> {
  const env = detectBrowser(visitor.userAgent).env;
  const method = payMethodFor(env);
  const loaded = await loadPageCheckout(deps.prisma, checkoutId, method === 'unsupported' ? null : TRADE_TYPE[method]);
  if (!loaded) return { kind: 'not_found' };
  const { checkout, orders } = loaded;
  const status = effectiveStatus(checkout, deps.now());
  if (status !== 'open') return { kind: 'status', status, checkout };
  // The order this payer already has, if any (null: none yet), so ensureChannelOrder need not look.
  const known = (payerKey: string) => orders.find((o) => o.payerKey === payerKey) ?? null;
  // The merchant's own account (or the default one): orders, OAuth and paySign all use it.
  const { channel, accountId, notifyUrl } = await channelsOf(deps).forMerchant(checkout.merchantId);
  const orderDeps = { prisma: deps.prisma, channel, config: deps.config, now: deps.now, account: { id: accountId, notifyUrl } };
  try {
    switch (method) {
      case 'unsupported':
        return { kind: 'unsupported', checkout, env };
      case 'jsapi': {
        const openid = checkout.payerOpenid ?? (visitor.openidFor ? visitor.openidFor(channel.oauthAppid ?? channel.appid) : visitor.openid);
        if (!openid) {
          const browserNonce = pooledRandomBytes(8).toString('hex');
          const state = makeOAuthState(deps.config.STATE_SECRET, checkout.id, deps.now().getTime() + 10 * 60_000, browserNonce);
          return { kind: 'oauth', checkout, browserNonce, redirect: channel.oauthAuthorizeUrl(oauthCallbackUrl(deps.config, checkout.id), state) };
        }
        const order = await ensureChannelOrder(orderDeps, checkout, 'JSAPI', { openid }, known(openid));
        return { kind: 'jsapi', checkout, jsapiParams: channel.jsapiParams(order.prepayId!) };
      }
      case 'h5': {
        const order = await ensureChannelOrder(orderDeps, checkout, 'H5', { clientIp: visitor.ip }, known(visitor.ip));
        // redirect_url brings the shopper back to our result page (WeChat requires it on the H5 domain).
        const h5Url = `${order.h5Url!}&redirect_url=${encodeURIComponent(resultUrl(deps.config, checkout.id))}`;
        return { kind: 'h5', checkout, h5Url };
      }
      case 'native': {
        const order = await ensureChannelOrder(orderDeps, checkout, 'NATIVE', {}, known(''));
        return { kind: 'native', checkout, codeUrl: order.codeUrl! };
      }
    }
  } catch (err) {
    // Paid (or closed) between our read and the channel call: show the state, not an error. WeChat
    // answering ORDER_PAID (or ORDERPAID) to a re-order means the notify is late: record the payment by a query now.
    if (err instanceof AppError && err.code === 'CHECKOUT_NOT_OPEN') {
      await syncCheckoutWithChannel(deps, checkoutId).catch(() => false);
      const again = await deps.prisma.checkout.findUniqueOrThrow({ where: { id: checkoutId }, include: withMerchant });
      const s = effectiveStatus(again, deps.now());
      if (s !== 'open') return { kind: 'status', status: s, checkout: again };
    }
    throw err;
  }
}

/** OAuth callback: checks the state, trades the code for an openid. */
export async function completeOAuth(
  deps: PageDeps,
  checkoutId: string,
  query: { code?: string; state?: string; browserNonce?: string },
): Promise<{ openid: string; appid: string }> {
  const st = query.state ? readOAuthState(deps.config.STATE_SECRET, query.state, deps.now().getTime(), query.browserNonce) : null;
  if (!st || st.checkoutId !== checkoutId) throw new AppError('VALIDATION_FAILED', 'Invalid or expired OAuth state', { field: 'state' });
  // No code means the user refused or WeChat did not authorise the domain.
  if (!query.code) throw new AppError('VALIDATION_FAILED', 'WeChat did not return an authorisation code', { field: 'code' });
  const c = await deps.prisma.checkout.findUnique({ where: { id: checkoutId }, select: { merchantId: true } });
  if (!c) throw new AppError('NOT_FOUND', `No checkout ${checkoutId}`);
  const { channel } = await channelsOf(deps).forMerchant(c.merchantId);
  const { openid } = await channel.oauthExchangeCode(query.code);
  return { openid, appid: channel.oauthAppid ?? channel.appid };
}

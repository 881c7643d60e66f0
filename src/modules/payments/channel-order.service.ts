import type { CreateOrderResult, PaymentChannel, TradeType } from '../../channels/channel';
import type { Config } from '../../config/config';
import { AppError, ChannelError } from '../../lib/errors';
import { isUniqueViolation, Prisma, sqlUtc as utc, type PrismaClient } from '../../lib/prisma';
import { orderFromJson } from '../checkout/checkout.page-load';
import type { ChannelOrder, Checkout } from '../../generated/prisma/client';
import { pooledRandomBytes } from '../../lib/random';
import { rawQuery } from '../../lib/raw-sql';

/**
 * How long a channel credential may be reused before ordering again (with the same out_trade_no and
 * identical body, which WeChat treats as the same order). prepay_id and code_url live 2 h, h5_url 5 min;
 * we keep a margin so the shopper still has time to use it.
 */
const CREDENTIAL_REUSE_MS: Record<TradeType, number> = {
  JSAPI: 110 * 60_000,
  NATIVE: 110 * 60_000,
  H5: 4 * 60_000,
};


const TYPE_LETTER: Record<TradeType, string> = { JSAPI: 'J', H5: 'H', NATIVE: 'N' };

/** 26 chars of [0-9a-z_]: within WeChat's 6–32 [0-9A-Za-z_-|*]. */
function newOutTradeNo(checkoutId: string, type: TradeType): string {
  return `${checkoutId.slice(3)}_${TYPE_LETTER[type]}${pooledRandomBytes(3).toString('hex').slice(0, 4)}`;
}

export interface PayerBinding {
  openid?: string; // JSAPI
  clientIp?: string; // H5: WeChat requires the real shopper IP and checks it when the h5_url is opened
}

/**
 * One channel order per (checkout, trade type, payer): WeChat refuses an out_trade_no reused with
 * another trade type, and binds JSAPI orders to an openid and H5 orders to the client IP. Reloading
 * reuses the order; a stale credential is refreshed by ordering again with the identical body.
 */
export async function ensureChannelOrder(
  deps: {
    prisma: PrismaClient;
    channel: PaymentChannel;
    config: Config;
    now: () => Date;
    /** The merchant's channel account `channel` belongs to (absent/null = the default account). */
    account?: { id: string | null; notifyUrl: string };
  },
  checkout: Checkout,
  tradeType: TradeType,
  payer: PayerBinding,
  /** The order of this (checkout, type, payer) if the caller already read it; null = it has none. */
  known?: ChannelOrder | null,
): Promise<ChannelOrder> {
  const { prisma, channel } = deps;
  const payerKey = tradeType === 'JSAPI' ? payer.openid ?? '' : tradeType === 'H5' ? payer.clientIp ?? '' : '';
  if (tradeType !== 'NATIVE' && !payerKey) throw new Error(`ensureChannelOrder: ${tradeType} needs a payer binding`);

  const key = { checkoutId_tradeType_payerKey: { checkoutId: checkout.id, tradeType, payerKey } };
  let order = known !== undefined ? known : await prisma.channelOrder.findUnique({ where: key });
  if (!order) {
    try {
      // Raw SQL on the page's hot path: the typed create and update cost ~0.5 ms of CPU each in the client (docs/performance.md).
      const wall = new Date().toISOString();
      // Only while the checkout is open, holding a share lock on its row until this commits: a close,
      // an expiry or a payment (which update the row) then either waits for this order, and finds it
      // when it closes the checkout's orders, or commits first, and no order is made. An order can
      // never appear on an ended checkout, however long this page took since it read the checkout.
      const [row] = await rawQuery<{ row: Record<string, unknown> }>(prisma, Prisma.sql`
        INSERT INTO channel_orders AS o (id, checkout_id, channel, trade_type, out_trade_no, payer_key, appid, mchid, account_id, sub_mchid, sub_appid, created_at, updated_at)
        SELECT ${`chor_${pooledRandomBytes(10).toString('hex')}`}, c.id, ${channel.name}, ${tradeType}::"TradeType", ${newOutTradeNo(checkout.id, tradeType)},
          ${payerKey}, ${channel.appid}, ${channel.mchid}, ${deps.account?.id ?? null}, ${channel.partner?.subMchid ?? null}, ${channel.partner?.subAppid ?? null},
          ${utc(wall)}, ${utc(wall)}
          FROM checkouts c WHERE c.id = ${checkout.id} AND c.status = 'open'
          FOR SHARE OF c
        RETURNING to_jsonb(o) AS row`);
      if (!row) throw new AppError('CHECKOUT_NOT_OPEN', `Checkout ${checkout.id} is no longer open`);
      order = orderFromJson(row.row);
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      order = await prisma.channelOrder.findUniqueOrThrow({ where: key }); // a concurrent load created it
    }
  }
  // Orders are re-sent through the account they were placed with, never another one.
  if ((order.accountId ?? null) !== (deps.account?.id ?? null)) throw new AppError('CHECKOUT_NOT_OPEN', `channel order ${order.outTradeNo} belongs to another channel account`);
  if (order.status !== 'created') throw new AppError('CHECKOUT_NOT_OPEN', `channel order ${order.outTradeNo} is ${order.status}`);

  const fresh = order.credentialAt && deps.now().getTime() - order.credentialAt.getTime() < CREDENTIAL_REUSE_MS[tradeType];
  if (fresh) return order;

  let result: CreateOrderResult;
  try {
    result = await channel.createOrder({
      tradeType,
      outTradeNo: order.outTradeNo,
      description: checkout.description,
      amountFen: checkout.amountFen,
      expiresAt: checkout.expiresAt,
      attach: checkout.attach ?? undefined,
      notifyUrl: deps.account?.notifyUrl || deps.config.notifyUrl,
      profitSharing: checkout.profitSharing !== 'none',
      payerOpenid: payer.openid,
      payerClientIp: payer.clientIp,
    });
  } catch (err) {
    // ORDER_PAID (v3; the adapter maps the v2 name ORDERPAID to it too): a late notify, the page records it by a query.
    if (err instanceof ChannelError && err.code === 'ORDER_PAID') throw new AppError('CHECKOUT_NOT_OPEN', 'Checkout is already paid', { cause: err });
    throw err;
  }
  const credential = (t: TradeType) => (result.tradeType === t ? (result.tradeType === 'JSAPI' ? result.prepayId : result.tradeType === 'H5' ? result.h5Url : result.codeUrl) : null);
  const [row] = await rawQuery<{ row: Record<string, unknown> }>(prisma, Prisma.sql`
    UPDATE channel_orders AS o SET credential_at = ${utc(deps.now().toISOString())},
      prepay_id = COALESCE(${credential('JSAPI')}, prepay_id), h5_url = COALESCE(${credential('H5')}, h5_url), code_url = COALESCE(${credential('NATIVE')}, code_url),
      updated_at = ${utc(new Date().toISOString())}
    WHERE id = ${order.id} AND status = 'created'
    RETURNING to_jsonb(o) AS row`);
  if (!row) {
    // Closed (or paid) while we were ordering: a close that reached WeChat before our order did was
    // answered "not found" and taken as closed, and the order we just made is live. Close it now.
    await channel.closeOrder(order.outTradeNo).catch(() => undefined); // refused (paid meanwhile): its notify records it
    throw new AppError('CHECKOUT_NOT_OPEN', `channel order ${order.outTradeNo} was closed while it was being ordered`);
  }
  return orderFromJson(row.row);
}

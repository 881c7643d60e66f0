import type { TradeType } from '../../channels/channel';
import type { ChannelOrder } from '../../generated/prisma/client';
import { Prisma, type PrismaClient } from '../../lib/prisma';
import type { PageCheckout } from './checkout.page';

/**
 * The shopper's page in one round trip: the checkout, its merchant's name and its channel orders of
 * the trade type the browser gets (the typed client would make three: checkout, merchant, order).
 * Raw SQL on purpose, measured in test/integration/round-trips.test.ts; columns are listed so the
 * result has exactly the typed client's shape.
 */
export async function loadPageCheckout(
  prisma: PrismaClient,
  id: string,
  tradeType: TradeType | null,
): Promise<{ checkout: PageCheckout; orders: ChannelOrder[] } | null> {
  const rows = await prisma.$queryRaw<(PageCheckout & { merchantName: string; orders: Record<string, unknown>[] | null })[]>(Prisma.sql`
    SELECT c.id, c.merchant_id AS "merchantId", c.out_trade_no AS "outTradeNo", c.amount_fen AS "amountFen", c.currency,
      c.description, c.attach, c.return_url AS "returnUrl", c.payer_openid AS "payerOpenid", c.status::text AS status,
      c.expires_at AS "expiresAt", c.channel, c.transaction_id AS "transactionId", c.paid_at AS "paidAt",
      c.paid_total_fen AS "paidTotalFen", c.payer_total_fen AS "payerTotalFen", c.returned_at AS "returnedAt",
      c.idempotency_key AS "idempotencyKey", c.profit_sharing::text AS "profitSharing", c.split_plan AS "splitPlan",
      c.created_at AS "createdAt", c.updated_at AS "updatedAt", c.split_reserved_fen AS "splitReservedFen",
      c.split_requests AS "splitRequests", c.split_seq AS "splitSeq", c.split_finished_at AS "splitFinishedAt",
      m.name AS "merchantName",
      (SELECT json_agg(o ORDER BY o.created_at) FROM channel_orders o
        WHERE o.checkout_id = c.id AND o.trade_type::text = ${tradeType ?? ''}) AS orders
    FROM checkouts c JOIN merchants m ON m.id = c.merchant_id
    WHERE c.id = ${id}`);
  const row = rows[0];
  if (!row) return null;
  const { merchantName, orders, ...checkout } = row;
  return { checkout: { ...checkout, merchant: { name: merchantName } }, orders: (orders ?? []).map(orderFromJson) };
}

/** json_agg gives snake_case keys and timestamps without a zone (the columns hold UTC). */
function orderFromJson(o: Record<string, unknown>): ChannelOrder {
  const date = (v: unknown) => (typeof v === 'string' ? new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`) : null);
  return {
    id: o.id as string,
    checkoutId: o.checkout_id as string,
    channel: o.channel as string,
    tradeType: o.trade_type as ChannelOrder['tradeType'],
    outTradeNo: o.out_trade_no as string,
    payerKey: o.payer_key as string,
    appid: o.appid as string,
    mchid: o.mchid as string,
    status: o.status as ChannelOrder['status'],
    prepayId: (o.prepay_id as string | null) ?? null,
    h5Url: (o.h5_url as string | null) ?? null,
    codeUrl: (o.code_url as string | null) ?? null,
    credentialAt: date(o.credential_at),
    transactionId: (o.transaction_id as string | null) ?? null,
    createdAt: date(o.created_at)!,
    updatedAt: date(o.updated_at)!,
  };
}

import type { TradeType } from '../../channels/channel';
import type { ChannelOrder, Checkout } from '../../generated/prisma/client';
import { Prisma, type PrismaClient } from '../../lib/prisma';
import type { PageCheckout } from './checkout.page';
import { rawQuery } from '../../lib/raw-sql';

/**
 * The shopper's page in one round trip: the checkout, its merchant's name and its channel orders of
 * the trade type the browser gets (the typed client would make three: checkout, merchant, order).
 * Raw SQL on purpose, measured in test/integration/round-trips.test.ts.
 */
export async function loadPageCheckout(
  prisma: PrismaClient,
  id: string,
  tradeType: TradeType | null,
): Promise<{ checkout: PageCheckout; orders: ChannelOrder[] } | null> {
  // to_jsonb(c): every column, so a column added later cannot go missing here while the types say it is present.
  const rows = await rawQuery<{ checkout: Record<string, unknown>; merchantName: string; orders: Record<string, unknown>[] | null }>(prisma, Prisma.sql`
    SELECT to_jsonb(c) AS checkout, m.name AS "merchantName",
      (SELECT json_agg(o ORDER BY o.created_at) FROM channel_orders o
        WHERE o.checkout_id = c.id AND o.trade_type::text = ${tradeType ?? ''}) AS orders
    FROM checkouts c JOIN merchants m ON m.id = c.merchant_id
    WHERE c.id = ${id}`);
  const row = rows[0];
  if (!row) return null;
  const checkout = fromColumns(row.checkout) as unknown as Checkout;
  return { checkout: { ...checkout, merchant: { name: row.merchantName } }, orders: (row.orders ?? []).map(orderFromJson) };
}

/** Column names → the client's field names (snake_case → camelCase; every @map here follows that rule); *_at → Date. */
export function fromColumns(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in o) {
    const v = o[k];
    const key = fieldOf(k);
    out[key] = typeof v === 'string' && key.endsWith('At') ? jsonDate(v) : v;
  }
  return out;
}

/** Keys are our tables' column names, a few dozen: each is converted once (a regex replace per column per request cost 2% of a create). */
const FIELDS = new Map<string, string>();
const fieldOf = (column: string) => {
  let f = FIELDS.get(column);
  if (f === undefined) FIELDS.set(column, (f = column.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())));
  return f;
};

const jsonDate = (v: string) => new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);

/** json_agg gives snake_case keys and timestamps without a zone (the columns hold UTC). */
export function orderFromJson(o: Record<string, unknown>): ChannelOrder {
  const date = (v: unknown) => (typeof v === 'string' ? jsonDate(v) : null);
  return {
    id: o.id as string,
    checkoutId: o.checkout_id as string,
    channel: o.channel as string,
    tradeType: o.trade_type as ChannelOrder['tradeType'],
    outTradeNo: o.out_trade_no as string,
    payerKey: o.payer_key as string,
    appid: o.appid as string,
    mchid: o.mchid as string,
    accountId: (o.account_id as string | null) ?? null,
    subMchid: (o.sub_mchid as string | null) ?? null,
    subAppid: (o.sub_appid as string | null) ?? null,
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

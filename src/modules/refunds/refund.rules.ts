import { AppError } from '../../lib/errors';

/** Split money a receiver still holds from one split batch (received minus returned). */
export interface Holding {
  account: string;
  type: string;
  outOrderNo: string;
  keptFen: number;
}

export interface PlannedReturn {
  account: string;
  outOrderNo: string;
  amountFen: number;
}

/**
 * split_return "proportional": every MERCHANT_ID receiver returns its share of the refund,
 * kept × refund / paid. The total is that sum rounded half up ONCE, and the fen the per-receiver
 * floors leave over go to the largest remainders (ties: first receiver), so the parts add up exactly.
 * Personal receivers cannot return (WeChat: only MERCHANT_ID); the merchant's balance covers their share.
 */
export function proportionalReturns(refundFen: number, paidFen: number, holdings: Holding[]): PlannedReturn[] {
  const perAccount = new Map<string, number>();
  for (const h of holdings) if (h.type === 'MERCHANT_ID' && h.keptFen > 0) perAccount.set(h.account, (perAccount.get(h.account) ?? 0) + h.keptFen);
  if (perAccount.size === 0 || paidFen <= 0) return [];
  const n = BigInt(refundFen);
  const p = BigInt(paidFen);
  const keptTotal = [...perAccount.values()].reduce((a, b) => a + b, 0);
  const target = Number((n * BigInt(keptTotal) * 2n + p) / (2n * p));
  const parts = [...perAccount.entries()].map(([account, kept], i) => {
    const num = n * BigInt(kept);
    return { account, kept, i, share: Number(num / p), rem: num % p };
  });
  let left = target - parts.reduce((s, x) => s + x.share, 0);
  for (const x of [...parts].sort((a, b) => (a.rem === b.rem ? a.i - b.i : a.rem > b.rem ? -1 : 1))) {
    if (left <= 0) break;
    if (x.share < x.kept) {
      x.share += 1;
      left -= 1;
    }
  }
  return spread(parts.filter((x) => x.share > 0).map((x) => ({ account: x.account, amount: x.share })), holdings);
}

/** split_return [{account, amount}]: each account must be a merchant receiver still holding that much. */
export function explicitReturns(list: Array<{ account: string; amount: number }>, refundFen: number, holdings: Holding[]): PlannedReturn[] {
  const total = list.reduce((s, r) => s + r.amount, 0);
  if (total > refundFen)
    throw new AppError('VALIDATION_FAILED', `split_return takes back ${total} fen, more than the refund of ${refundFen} fen`, { field: 'split_return' });
  for (const r of list) {
    const mine = holdings.filter((h) => h.account === r.account);
    if (mine.length === 0) throw new AppError('RETURN_NOT_POSSIBLE', `${r.account} received no split money from this payment`, { field: 'split_return' });
    if (mine.every((h) => h.type !== 'MERCHANT_ID'))
      throw new AppError('RETURN_NOT_POSSIBLE', `${r.account} is a PERSONAL_OPENID receiver: WeChat returns split money only from MERCHANT_ID receivers`, { field: 'split_return' });
    const kept = mine.filter((h) => h.type === 'MERCHANT_ID').reduce((s, h) => s + h.keptFen, 0);
    if (kept < r.amount) throw new AppError('RETURN_NOT_POSSIBLE', `${r.account} holds ${kept} fen of this payment's split money, less than ${r.amount} fen`, { field: 'split_return' });
  }
  return spread(list, holdings);
}

/** One return order per (account, split batch): an account's amount is taken from its oldest batches first. */
function spread(shares: Array<{ account: string; amount: number }>, holdings: Holding[]): PlannedReturn[] {
  const out: PlannedReturn[] = [];
  for (const s of shares) {
    let left = s.amount;
    for (const h of holdings) {
      if (left === 0) break;
      if (h.account !== s.account || h.type !== 'MERCHANT_ID' || h.keptFen <= 0) continue;
      const take = Math.min(left, h.keptFen);
      out.push({ account: s.account, outOrderNo: h.outOrderNo, amountFen: take });
      left -= take;
    }
  }
  return out;
}

/** out_return_no: the refund id + position, then -{attempt} for a retry after a FAILED return (a new request). */
export function outReturnNo(refundId: string, position: number, attempt: number): string {
  return attempt === 0 ? `${refundId}-r${position}` : `${refundId}-r${position}-${attempt}`;
}

export function backoffMs(n: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.min(n, 16));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** Money is integer fen (1 CNY = 100 fen) everywhere; yuan strings exist only in views. */
export type Fen = number;

export function assertFen(n: number, what = 'amount'): Fen {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative integer number of fen`);
  return n;
}

/** 12345 -> "123.45" (display only). */
export function fenToYuan(fen: Fen): string {
  const sign = fen < 0 ? '-' : '';
  const abs = Math.abs(fen);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** floor(amount * ratio) without float drift: the ratio is taken to 1/10000ths. */
export function fenTimesRatio(fen: Fen, ratio: number): Fen {
  const bp = Math.round(ratio * 10_000);
  return Math.floor((fen * bp) / 10_000);
}

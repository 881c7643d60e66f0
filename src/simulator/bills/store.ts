/**
 * Per-simulator state of the bill stand-in: issued download tokens and the bill fault controls.
 * One store per SimContext (WeakMap), like the profit-sharing and refund stores.
 */
import type { SimContext } from '../context';

export type BillKind = 'trade' | 'profitsharing';

/**
 * A fault control on the next bills served (FACTS-partner-bills Part 3 rule 13: alter or drop lines
 * before hashing = a clean hash and a reconciliation mismatch; a wrong hash_value = a refused bill).
 *   drop     the line keyed `ref` (out_trade_no / out_refund_no / out_order_no) is left out
 *   amount   its amount is changed by `deltaFen` (default +1)
 *   state    its state column is set to `state` (default REVOKED / CLOSED / CLOSED)
 *   extra    a payment line the merchant never ordered (out_trade_no `ref`) is added
 *   bad_hash hash_value does not match the file
 *   not_ready the bill is "still being generated"
 */
export type BillFaultAction = 'drop' | 'amount' | 'state' | 'extra' | 'bad_hash' | 'not_ready';

export interface BillFault {
  bill: BillKind;
  action: BillFaultAction;
  ref?: string;
  deltaFen?: number;
  state?: string;
  /** Bills it still applies to; line faults default to every bill until cleared, bad_hash/not_ready to one. */
  remaining: number;
}

export interface IssuedBill {
  mchid: string;
  /** The uncompressed bill bytes (hash_value is their SHA1). */
  content: Buffer;
  gzip: boolean;
  expiresAtMs: number;
}

export interface BillStore {
  tokens: Map<string, IssuedBill>;
  faults: BillFault[];
}

const stores = new WeakMap<SimContext, BillStore>();

export function getBillStore(ctx: SimContext): BillStore {
  let s = stores.get(ctx);
  if (!s) stores.set(ctx, (s = { tokens: new Map(), faults: [] }));
  return s;
}

export function resetBillStore(ctx: SimContext): void {
  stores.delete(ctx);
}

/** Faults of this bill with this action that still apply; each returned one is used up once. */
export function takeFaults(store: BillStore, bill: BillKind, action: BillFaultAction): BillFault[] {
  const hit = store.faults.filter((f) => f.bill === bill && f.action === action && f.remaining > 0);
  for (const f of hit) f.remaining -= 1;
  store.faults = store.faults.filter((f) => f.remaining > 0);
  return hit;
}

export interface BillControl {
  /** Adds a fault to the next bills (see BillFaultAction); `times` defaults per action. */
  fault(f: { bill: BillKind; action: BillFaultAction; ref?: string; deltaFen?: number; state?: string; times?: number }): void;
  clear(): void;
  readonly faults: BillFault[];
}

export function billControl(ctx: SimContext): BillControl {
  return {
    fault(f) {
      const once = f.action === 'bad_hash' || f.action === 'not_ready';
      getBillStore(ctx).faults.push({ bill: f.bill, action: f.action, ref: f.ref, deltaFen: f.deltaFen, state: f.state, remaining: f.times ?? (once ? 1 : Infinity) });
    },
    clear: () => void (getBillStore(ctx).faults = []),
    get faults() {
      return getBillStore(ctx).faults;
    },
  };
}

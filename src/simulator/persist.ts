/**
 * The simulator's state in a file, for the sandbox: WeChat keeps its orders across our restarts,
 * and so must its stand-in, or a restarted sandbox finds its database and the "channel" out of step
 * (splits unknown to the channel, old QR codes refused). Written atomically (temp file + rename)
 * shortly after every request that changed something, and at close. Controls, faults, call logs,
 * rate windows and undelivered notifies are not kept: they are test instruments, not WeChat's data.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { SimTransaction } from './context';
import { getStore, type ProfitSharingOrder, type Relation, type ReturnOrder } from './profitsharing/store';
import type { SimH5Ticket, SimOrderExtra, SimRuntime } from './runtime';

const VERSION = 1;

interface SimSnapshot {
  version: number;
  userSecret: string;
  transactions: SimTransaction[];
  extras: Array<[string, SimOrderExtra]>;
  prepayIndex: Array<[string, string]>;
  codeIndex: Array<[string, string]>;
  h5Tickets: Array<[string, SimH5Ticket]>;
  openidApps: Array<[string, string]>;
  profitSharing: {
    relations: Array<[string, Relation]>;
    orders: Array<[string, ProfitSharingOrder]>;
    returns: Array<[string, ReturnOrder]>;
    seq: number;
  };
}

function snapshot(rt: SimRuntime): SimSnapshot {
  const ps = getStore(rt);
  return {
    version: VERSION,
    userSecret: rt.userSecret,
    transactions: [...rt.transactions.byOutTradeNo.values()],
    extras: [...rt.extras],
    prepayIndex: [...rt.prepayIndex],
    codeIndex: [...rt.codeIndex],
    h5Tickets: [...rt.h5Tickets],
    openidApps: [...rt.openidApps],
    profitSharing: { relations: [...ps.relations], orders: [...ps.orders], returns: [...ps.returns], seq: ps.seq },
  };
}

function restore(rt: SimRuntime, s: SimSnapshot): void {
  rt.userSecret = s.userSecret;
  for (const tx of s.transactions) {
    rt.transactions.byOutTradeNo.set(tx.outTradeNo, tx);
    if (tx.transactionId) rt.transactions.byTransactionId.set(tx.transactionId, tx);
  }
  for (const [k, v] of s.extras) rt.extras.set(k, v);
  for (const [k, v] of s.prepayIndex) rt.prepayIndex.set(k, v);
  for (const [k, v] of s.codeIndex) rt.codeIndex.set(k, v);
  for (const [k, v] of s.h5Tickets) rt.h5Tickets.set(k, v);
  for (const [k, v] of s.openidApps) rt.openidApps.set(k, v);
  const ps = getStore(rt);
  for (const [k, v] of s.profitSharing.relations) ps.relations.set(k, v);
  for (const [k, v] of s.profitSharing.orders) ps.orders.set(k, v);
  for (const [k, v] of s.profitSharing.returns) ps.returns.set(k, v);
  ps.seq = s.profitSharing.seq;
}

export interface StateFile {
  /** Orders loaded at start. */
  loaded: number;
  /** Writes the state now if it changed since the last write. */
  flush(): void;
  /** Writes soon (coalesces bursts of requests into one write). */
  schedule(): void;
  stop(): void;
}

/** Loads `path` into the simulator (when it exists) and keeps it written. */
export function attachStateFile(rt: SimRuntime, path: string, delayMs = 200): StateFile {
  let loaded = 0;
  if (existsSync(path)) {
    const s = JSON.parse(readFileSync(path, 'utf8')) as SimSnapshot;
    if (s.version !== VERSION) throw new Error(`${path}: simulator state version ${s.version}, expected ${VERSION} (delete the file to start empty)`);
    restore(rt, s);
    loaded = s.transactions.length;
  }
  let last = JSON.stringify(snapshot(rt));
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const text = JSON.stringify(snapshot(rt));
    if (text === last) return;
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, path);
    last = text;
  };
  return {
    loaded,
    flush,
    schedule: () => {
      timer ??= setTimeout(() => {
        try {
          flush();
        } catch (e) {
          // Kept in memory; the next change or the close tries again.
          process.stderr.write(`simulator: could not write ${path}: ${(e as Error).message}\n`);
        }
      }, delayMs);
      timer.unref();
    },
    stop: () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}

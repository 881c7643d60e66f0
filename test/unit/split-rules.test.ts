import {
  backoffMs,
  batchCount,
  batchOutOrderNo,
  checkSplit,
  finalBatchState,
  OUT_ORDER_NO_PATTERN,
  planBatches,
  splitBudget,
  splitStatus,
  unfreezeOutOrderNo,
} from '../../src/modules/splits/split.rules';
import { batchSourcesOf, batchTransitions, receiverSourcesOf, unfreezeSourcesOf } from '../../src/modules/splits/split.states';

const limits = { receiverLimit: 5, maxRatio: 0.3, maxRequests: 50 };
const receivers = (n: number, amount = 10) =>
  Array.from({ length: n }, (_, i) => ({ type: 'MERCHANT_ID' as const, account: `19000000${i}`, name: `Co ${i}`, amount, description: 'd' }));

describe('batch planning', () => {
  it('When 30 receivers meet a limit of 5, then there are 6 batches of 5 in the given order', () => {
    const b = planBatches(receivers(30), 5);
    expect(b).toHaveLength(6);
    expect(b.every((x) => x.length === 5)).toBe(true);
    expect(b.flat().map((r) => r.account)).toEqual(receivers(30).map((r) => r.account));
    expect(batchCount(30, 5)).toBe(6);
  });
  it('When the count is not a multiple of the limit, then the last batch holds the rest', () => {
    expect(planBatches(receivers(7), 5).map((b) => b.length)).toEqual([5, 2]);
    expect(planBatches(receivers(50), 50)).toHaveLength(1);
  });
  it('When the limit is not a positive integer, then it throws', () => {
    expect(() => planBatches(receivers(3), 0)).toThrow(RangeError);
  });
});

describe('out_order_no', () => {
  const co = 'co_abcdefghij0123456789';
  it('is deterministic, distinct per batch and split, and in WeChat\'s charset and length', () => {
    const a = batchOutOrderNo(co, 1, 1);
    expect(batchOutOrderNo(co, 1, 1)).toBe(a);
    const all = new Set([a, batchOutOrderNo(co, 1, 2), batchOutOrderNo(co, 2, 1), batchOutOrderNo(co, 11, 1), batchOutOrderNo(co, 1, 11), unfreezeOutOrderNo(co)]);
    expect(all.size).toBe(6);
    for (const no of all) {
      expect(no).toMatch(OUT_ORDER_NO_PATTERN);
      expect(no.length).toBeLessThanOrEqual(64);
    }
    expect(batchOutOrderNo(co, 50, 50).length).toBeLessThanOrEqual(64);
  });
  it('refuses characters WeChat refuses', () => {
    expect(() => batchOutOrderNo('co.bad', 1, 1)).toThrow(RangeError);
  });
});

describe('budget', () => {
  it('is floor(paid × ratio) in integer fen', () => {
    expect(splitBudget(1001, limits)).toBe(300);
    expect(splitBudget(10_000, limits)).toBe(3000);
  });
  it('When a split fits exactly, then it passes; one fen more is SPLIT_BUDGET_EXCEEDED', () => {
    expect(checkSplit(receivers(3, 100), { paidFen: 1000, alreadyReservedFen: 0, requestsUsed: 0 }, limits).totalFen).toBe(300);
    expect(() => checkSplit(receivers(3, 100), { paidFen: 1000, alreadyReservedFen: 1, requestsUsed: 0 }, limits)).toThrow(
      expect.objectContaining({ code: 'SPLIT_BUDGET_EXCEEDED' }),
    );
  });
  it('When the split needs more requests than remain, then SPLIT_REQUEST_LIMIT', () => {
    expect(() => checkSplit(receivers(6, 1), { paidFen: 1000, alreadyReservedFen: 0, requestsUsed: 49 }, limits)).toThrow(
      expect.objectContaining({ code: 'SPLIT_REQUEST_LIMIT' }),
    );
  });
});

describe('backoff', () => {
  it('grows exponentially, stays within [exp/2, exp] and under the cap', () => {
    expect(backoffMs(1, 100, 10_000, () => 0)).toBe(50);
    expect(backoffMs(1, 100, 10_000, () => 1)).toBe(100);
    expect(backoffMs(4, 100, 10_000, () => 1)).toBe(800);
    expect(backoffMs(30, 100, 10_000, () => 1)).toBe(10_000);
    for (let i = 0; i < 100; i++) {
      const v = backoffMs(3, 100, 10_000);
      expect(v).toBeGreaterThanOrEqual(200);
      expect(v).toBeLessThanOrEqual(400);
    }
  });
});

describe('states', () => {
  it('a batch becomes final only from processing, failed also from pending', () => {
    expect(batchSourcesOf('processing')).toEqual(['pending']);
    expect(batchSourcesOf('succeeded')).toEqual(['processing']);
    expect(batchSourcesOf('failed').sort()).toEqual(['pending', 'processing']);
    expect(batchTransitions.succeeded).toEqual([]);
    expect(receiverSourcesOf('CLOSED')).toEqual(['PENDING']);
    expect(unfreezeSourcesOf('processing')).toEqual(['pending']);
  });
  it('final batch state reads every receiver', () => {
    expect(finalBatchState([{ state: 'SUCCESS' }, { state: 'PENDING' }])).toBeNull();
    expect(finalBatchState([{ state: 'SUCCESS' }, { state: 'SUCCESS' }])).toBe('succeeded');
    expect(finalBatchState([{ state: 'SUCCESS' }, { state: 'CLOSED' }])).toBe('partially_failed');
    expect(finalBatchState([{ state: 'CLOSED' }])).toBe('failed');
  });
  it('split status summarises batches and the unfreeze', () => {
    const ok = { state: 'succeeded' as const, receivers: [{ state: 'SUCCESS' as const }] };
    const bad = { state: 'failed' as const, receivers: [{ state: 'CLOSED' as const }] };
    expect(splitStatus({ planWaiting: false, batches: [] })).toBe('none');
    expect(splitStatus({ planWaiting: true, batches: [] })).toBe('pending');
    expect(splitStatus({ planWaiting: false, batches: [{ state: 'pending', receivers: [{ state: 'PENDING' }] }] })).toBe('pending');
    expect(splitStatus({ planWaiting: false, batches: [ok, { state: 'pending', receivers: [{ state: 'PENDING' }] }] })).toBe('processing');
    expect(splitStatus({ planWaiting: false, batches: [ok], unfreezeState: 'processing' })).toBe('processing');
    expect(splitStatus({ planWaiting: false, batches: [ok, ok], unfreezeState: 'succeeded' })).toBe('succeeded');
    expect(splitStatus({ planWaiting: false, batches: [ok, bad] })).toBe('partially_failed');
    expect(splitStatus({ planWaiting: false, batches: [bad] })).toBe('failed');
  });
});

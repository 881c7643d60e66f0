-- On large tables, create these indexes beforehand with CREATE INDEX CONCURRENTLY (same names):
-- this migration then skips them instead of blocking writes while they build (README, Known limits).
-- A day's reconciliation read every paid checkout, sent refund, sent split batch and succeeded return
-- of the account's whole history to find the day's (reconcile.records.ts): these hold them by day.

-- CreateIndex
CREATE INDEX IF NOT EXISTS "checkouts_paid_at_idx" ON "checkouts"("paid_at") WHERE (paid_at IS NOT NULL);

-- CreateIndex
CREATE INDEX IF NOT EXISTS "refunds_sent_at_idx" ON "refunds"("sent_at") WHERE (sent_at IS NOT NULL);

-- CreateIndex
CREATE INDEX IF NOT EXISTS "split_batches_sent_at_idx" ON "split_batches"("sent_at") WHERE (sent_at IS NOT NULL);

-- CreateIndex
CREATE INDEX IF NOT EXISTS "refund_returns_succeeded_at_idx" ON "refund_returns"("finished_at") WHERE (state = 'succeeded');

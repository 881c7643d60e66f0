-- On large tables, create these indexes beforehand with CREATE INDEX CONCURRENTLY (same names):
-- this migration then skips them instead of blocking writes while they build (README, Known limits).
-- The stalled-split check (every minute, on every process) read every unfreeze and every
-- profit-sharing payment ever made to find the few still open: these hold only the open ones.

-- CreateIndex
CREATE INDEX IF NOT EXISTS "checkouts_unsplit_plans_idx" ON "checkouts"("paid_at") WHERE (profit_sharing = 'planned' AND split_seq = 0 AND status = 'paid');

-- CreateIndex
CREATE INDEX IF NOT EXISTS "split_unfreezes_open_idx" ON "split_unfreezes"("updated_at") WHERE (state = 'pending' OR state = 'processing');

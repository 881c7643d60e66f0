-- On large tables, create this index beforehand with CREATE INDEX CONCURRENTLY (same name):
-- this migration then skips it instead of blocking writes while it builds (README, Known limits).

-- CreateIndex
CREATE INDEX IF NOT EXISTS "checkouts_profit_sharing_paid_at_idx" ON "checkouts"("paid_at") WHERE (profit_sharing <> 'none');

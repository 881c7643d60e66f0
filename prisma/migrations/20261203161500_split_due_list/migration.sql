-- On large tables, create this index beforehand with CREATE INDEX CONCURRENTLY (same name):
-- this migration then skips it instead of blocking writes while it builds (README, Known limits).
-- The index it replaces held a NULL entry for every checkout ever created (each create and each paid
-- update without profit sharing wrote one), this one holds only the payments whose split work is due.

-- CreateIndex
CREATE INDEX IF NOT EXISTS "checkouts_split_due_idx" ON "checkouts"("split_due_at") WHERE (split_due_at IS NOT NULL);

-- DropIndex
DROP INDEX IF EXISTS "checkouts_split_due_at_idx";

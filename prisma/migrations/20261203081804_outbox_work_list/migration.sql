-- On large tables, create this index beforehand with CREATE INDEX CONCURRENTLY (same name):
-- this migration then skips it instead of blocking writes while it builds (README, Known limits).

-- DropIndex
DROP INDEX IF EXISTS "outbox_events_processed_at_available_at_idx";

-- CreateIndex
CREATE INDEX IF NOT EXISTS "outbox_events_unprocessed_idx" ON "outbox_events"("id") WHERE (processed_at IS NULL);

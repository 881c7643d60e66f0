-- On a large notify_logs, create this index beforehand with CREATE INDEX CONCURRENTLY (same name):
-- this migration then skips it instead of blocking writes while it builds (README, Known limits).
-- The hourly purge of rejected notifies (7 days) read every verified notify of the 180-day
-- retention to find them: this holds only the notifies never decrypted (no event id).

-- CreateIndex
CREATE INDEX IF NOT EXISTS "notify_logs_unverified_received_at_idx" ON "notify_logs"("received_at") WHERE (event_id IS NULL);

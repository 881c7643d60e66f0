-- On large tables, create these indexes beforehand with CREATE INDEX CONCURRENTLY (same names):
-- this migration then skips them instead of blocking writes while they build (README, Known limits).

-- DropIndex
DROP INDEX IF EXISTS "merchant_events_rendered_at_idx";

-- DropIndex
DROP INDEX IF EXISTS "webhook_deliveries_endpoint_id_checkout_id_event_seq_idx";

-- DropIndex
DROP INDEX IF EXISTS "webhook_deliveries_status_next_attempt_at_idx";

-- CreateIndex
CREATE INDEX IF NOT EXISTS "merchant_events_seq_idx" ON "merchant_events"("seq") WHERE (rendered_at IS NULL);

-- CreateIndex
CREATE INDEX IF NOT EXISTS "webhook_deliveries_endpoint_id_next_attempt_at_event_seq_idx" ON "webhook_deliveries"("endpoint_id", "next_attempt_at", "event_seq") WHERE (status = 'pending');

-- CreateIndex
CREATE INDEX IF NOT EXISTS "webhook_deliveries_pending_checkout_idx" ON "webhook_deliveries"("endpoint_id", "checkout_id", "event_seq") WHERE (status = 'pending');

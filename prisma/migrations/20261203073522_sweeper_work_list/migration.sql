-- On large tables, create this index beforehand with CREATE INDEX CONCURRENTLY (same name):
-- this migration then skips it instead of blocking writes while it builds (README, Known limits).

-- AlterTable
ALTER TABLE "checkouts" ADD COLUMN     "orders_closed_at" TIMESTAMP(3);

-- Ended checkouts whose orders are all closed, and ended more than a minute ago, are done for the
-- sweeper, the others stay on its list until it has seen them.
UPDATE "checkouts" c SET "orders_closed_at" = (now() AT TIME ZONE 'UTC')
 WHERE c."status" IN ('expired', 'closed')
   AND c."expires_at" < (now() AT TIME ZONE 'UTC') - interval '1 minute'
   AND NOT EXISTS (SELECT 1 FROM "channel_orders" o WHERE o."checkout_id" = c."id" AND o."status" = 'created');

-- CreateIndex
CREATE INDEX IF NOT EXISTS "checkouts_orders_to_close_idx" ON "checkouts"("expires_at") WHERE ((status = 'expired' OR status = 'closed') AND orders_closed_at IS NULL);

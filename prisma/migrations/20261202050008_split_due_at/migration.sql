-- AlterTable
ALTER TABLE "checkouts" ADD COLUMN     "split_due_at" TIMESTAMP(3);

-- CreateIndex
CREATE INDEX "checkouts_split_due_at_idx" ON "checkouts"("split_due_at");

-- Backfill: payments with split work still open are due now (the due scan picks them up).
UPDATE "checkouts" c SET "split_due_at" = now() AT TIME ZONE 'UTC'
 WHERE c."status" = 'paid' AND c."profit_sharing" <> 'none'
   AND ((c."profit_sharing" = 'planned' AND c."split_seq" = 0)
     OR EXISTS (SELECT 1 FROM "split_batches" b WHERE b."checkout_id" = c."id" AND b."state" IN ('pending', 'processing'))
     OR EXISTS (SELECT 1 FROM "split_unfreezes" u WHERE u."checkout_id" = c."id" AND u."state" IN ('pending', 'processing')));

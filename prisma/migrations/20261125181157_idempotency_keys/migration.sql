-- AlterTable
ALTER TABLE "checkouts" ADD COLUMN     "idempotency_key" TEXT;

-- AlterTable
ALTER TABLE "splits" ADD COLUMN     "idempotency_key" TEXT;

-- CreateIndex
CREATE UNIQUE INDEX "checkouts_merchant_id_idempotency_key_key" ON "checkouts"("merchant_id", "idempotency_key");

-- CreateIndex
CREATE UNIQUE INDEX "splits_checkout_id_idempotency_key_key" ON "splits"("checkout_id", "idempotency_key");

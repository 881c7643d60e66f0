-- AlterTable
ALTER TABLE "checkouts" ADD COLUMN     "merchant_funded_fen" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "split_cap_fen" INTEGER,
ADD COLUMN     "split_last_request_at" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "split_batches" ADD COLUMN     "sensitive_key_id" TEXT;

-- AlterTable
ALTER TABLE "split_receivers" ADD COLUMN     "name_ciphertext" TEXT;

-- AlterTable
ALTER TABLE "split_unfreezes" ADD COLUMN     "unsplit_before_fen" INTEGER;

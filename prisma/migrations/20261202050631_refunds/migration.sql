-- CreateEnum
CREATE TYPE "RefundStatus" AS ENUM ('pending', 'returning', 'processing', 'succeeded', 'failed', 'abnormal', 'closed');

-- CreateEnum
CREATE TYPE "SplitReturnMode" AS ENUM ('none', 'proportional', 'explicit');

-- CreateEnum
CREATE TYPE "RefundReturnState" AS ENUM ('pending', 'succeeded', 'failed', 'cancelled');

-- AlterTable
ALTER TABLE "checkouts" ADD COLUMN     "refund_seq" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "refunded_fen" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "split_returned_fen" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "refunds" (
    "id" TEXT NOT NULL,
    "checkout_id" TEXT NOT NULL,
    "merchant_id" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "amount_fen" INTEGER NOT NULL,
    "reason" TEXT,
    "out_refund_no" TEXT NOT NULL,
    "channel_refund_no" TEXT NOT NULL,
    "split_return" "SplitReturnMode" NOT NULL DEFAULT 'none',
    "status" "RefundStatus" NOT NULL DEFAULT 'pending',
    "idempotency_key" TEXT,
    "channel_refund_id" TEXT,
    "failure_code" TEXT,
    "failure_reason" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "polls" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "next_attempt_at" TIMESTAMP(3),
    "lease_until" TIMESTAMP(3),
    "sent_at" TIMESTAMP(3),
    "succeeded_at" TIMESTAMP(3),
    "finished_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "refunds_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "refund_returns" (
    "id" TEXT NOT NULL,
    "refund_id" TEXT NOT NULL,
    "checkout_id" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "account" TEXT NOT NULL,
    "out_order_no" TEXT NOT NULL,
    "amount_fen" INTEGER NOT NULL,
    "out_return_no" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL DEFAULT 0,
    "state" "RefundReturnState" NOT NULL DEFAULT 'pending',
    "fail_reason" TEXT,
    "return_id" TEXT,
    "last_error" TEXT,
    "finished_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "refund_returns_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "refunds_channel_refund_no_key" ON "refunds"("channel_refund_no");

-- CreateIndex
CREATE INDEX "refunds_status_next_attempt_at_idx" ON "refunds"("status", "next_attempt_at");

-- CreateIndex
CREATE UNIQUE INDEX "refunds_checkout_id_seq_key" ON "refunds"("checkout_id", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "refunds_merchant_id_out_refund_no_key" ON "refunds"("merchant_id", "out_refund_no");

-- CreateIndex
CREATE UNIQUE INDEX "refunds_checkout_id_idempotency_key_key" ON "refunds"("checkout_id", "idempotency_key");

-- CreateIndex
CREATE UNIQUE INDEX "refund_returns_out_return_no_key" ON "refund_returns"("out_return_no");

-- CreateIndex
CREATE INDEX "refund_returns_checkout_id_idx" ON "refund_returns"("checkout_id");

-- CreateIndex
CREATE UNIQUE INDEX "refund_returns_refund_id_position_key" ON "refund_returns"("refund_id", "position");

-- AddForeignKey
ALTER TABLE "refunds" ADD CONSTRAINT "refunds_checkout_id_fkey" FOREIGN KEY ("checkout_id") REFERENCES "checkouts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "refund_returns" ADD CONSTRAINT "refund_returns_refund_id_fkey" FOREIGN KEY ("refund_id") REFERENCES "refunds"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

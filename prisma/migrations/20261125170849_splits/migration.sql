-- CreateEnum
CREATE TYPE "SplitKind" AS ENUM ('planned', 'on_demand');

-- CreateEnum
CREATE TYPE "SplitBatchState" AS ENUM ('pending', 'processing', 'succeeded', 'partially_failed', 'failed');

-- CreateEnum
CREATE TYPE "SplitReceiverState" AS ENUM ('PENDING', 'SUCCESS', 'CLOSED');

-- CreateEnum
CREATE TYPE "SplitUnfreezeMethod" AS ENUM ('last_batch', 'explicit');

-- CreateEnum
CREATE TYPE "SplitUnfreezeState" AS ENUM ('pending', 'processing', 'succeeded', 'failed');

-- AlterTable
ALTER TABLE "checkouts" ADD COLUMN     "split_finished_at" TIMESTAMP(3),
ADD COLUMN     "split_requests" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "split_reserved_fen" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "split_seq" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "splits" (
    "id" TEXT NOT NULL,
    "checkout_id" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "kind" "SplitKind" NOT NULL,
    "total_fen" INTEGER NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "splits_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "split_batches" (
    "id" TEXT NOT NULL,
    "split_id" TEXT NOT NULL,
    "checkout_id" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "out_order_no" TEXT NOT NULL,
    "state" "SplitBatchState" NOT NULL DEFAULT 'pending',
    "unfreeze_unsplit" BOOLEAN NOT NULL DEFAULT false,
    "amount_fen" INTEGER NOT NULL,
    "order_id" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "polls" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "fail_code" TEXT,
    "fail_message" TEXT,
    "sent_at" TIMESTAMP(3),
    "finished_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "split_batches_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "split_receivers" (
    "id" TEXT NOT NULL,
    "batch_id" TEXT NOT NULL,
    "checkout_id" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "type" TEXT NOT NULL,
    "account" TEXT NOT NULL,
    "name" TEXT,
    "amount_fen" INTEGER NOT NULL,
    "description" TEXT NOT NULL,
    "state" "SplitReceiverState" NOT NULL DEFAULT 'PENDING',
    "fail_reason" TEXT,
    "detail_id" TEXT,
    "finished_at" TIMESTAMP(3),
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "split_receivers_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "split_unfreezes" (
    "id" TEXT NOT NULL,
    "checkout_id" TEXT NOT NULL,
    "method" "SplitUnfreezeMethod" NOT NULL,
    "out_order_no" TEXT NOT NULL,
    "state" "SplitUnfreezeState" NOT NULL DEFAULT 'pending',
    "amount_fen" INTEGER,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "polls" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "fail_code" TEXT,
    "fail_message" TEXT,
    "sent_at" TIMESTAMP(3),
    "finished_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "split_unfreezes_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "channel_receivers" (
    "id" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "mchid" TEXT NOT NULL,
    "appid" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "account" TEXT NOT NULL,
    "added_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "channel_receivers_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "split_mismatches" (
    "id" TEXT NOT NULL,
    "checkout_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "ref" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "detail" JSONB,
    "occurrences" INTEGER NOT NULL DEFAULT 1,
    "first_seen_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_seen_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "split_mismatches_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "split_alerts" (
    "id" TEXT NOT NULL,
    "checkout_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "split_alerts_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "splits_checkout_id_seq_key" ON "splits"("checkout_id", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "split_batches_out_order_no_key" ON "split_batches"("out_order_no");

-- CreateIndex
CREATE INDEX "split_batches_checkout_id_idx" ON "split_batches"("checkout_id");

-- CreateIndex
CREATE INDEX "split_batches_state_idx" ON "split_batches"("state");

-- CreateIndex
CREATE UNIQUE INDEX "split_batches_split_id_seq_key" ON "split_batches"("split_id", "seq");

-- CreateIndex
CREATE INDEX "split_receivers_checkout_id_idx" ON "split_receivers"("checkout_id");

-- CreateIndex
CREATE UNIQUE INDEX "split_receivers_batch_id_position_key" ON "split_receivers"("batch_id", "position");

-- CreateIndex
CREATE UNIQUE INDEX "split_unfreezes_checkout_id_key" ON "split_unfreezes"("checkout_id");

-- CreateIndex
CREATE UNIQUE INDEX "split_unfreezes_out_order_no_key" ON "split_unfreezes"("out_order_no");

-- CreateIndex
CREATE UNIQUE INDEX "channel_receivers_channel_mchid_appid_type_account_key" ON "channel_receivers"("channel", "mchid", "appid", "type", "account");

-- CreateIndex
CREATE INDEX "split_mismatches_last_seen_at_idx" ON "split_mismatches"("last_seen_at");

-- CreateIndex
CREATE UNIQUE INDEX "split_mismatches_checkout_id_kind_ref_key" ON "split_mismatches"("checkout_id", "kind", "ref");

-- CreateIndex
CREATE UNIQUE INDEX "split_alerts_checkout_id_kind_key" ON "split_alerts"("checkout_id", "kind");

-- AddForeignKey
ALTER TABLE "splits" ADD CONSTRAINT "splits_checkout_id_fkey" FOREIGN KEY ("checkout_id") REFERENCES "checkouts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "split_batches" ADD CONSTRAINT "split_batches_split_id_fkey" FOREIGN KEY ("split_id") REFERENCES "splits"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "split_receivers" ADD CONSTRAINT "split_receivers_batch_id_fkey" FOREIGN KEY ("batch_id") REFERENCES "split_batches"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "split_unfreezes" ADD CONSTRAINT "split_unfreezes_checkout_id_fkey" FOREIGN KEY ("checkout_id") REFERENCES "checkouts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "split_mismatches" ADD CONSTRAINT "split_mismatches_checkout_id_fkey" FOREIGN KEY ("checkout_id") REFERENCES "checkouts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "split_alerts" ADD CONSTRAINT "split_alerts_checkout_id_fkey" FOREIGN KEY ("checkout_id") REFERENCES "checkouts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

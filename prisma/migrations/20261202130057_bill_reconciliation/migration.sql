-- CreateEnum
CREATE TYPE "ReconciliationRunStatus" AS ENUM ('pending', 'succeeded', 'retrying', 'failed');

-- CreateEnum
CREATE TYPE "BillMismatchStatus" AS ENUM ('open', 'resolved');

-- CreateTable
CREATE TABLE "reconciliation_runs" (
    "id" TEXT NOT NULL,
    "account_key" TEXT NOT NULL,
    "account_id" TEXT,
    "bill_date" TEXT NOT NULL,
    "status" "ReconciliationRunStatus" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lease_until" TIMESTAMP(3),
    "last_error" TEXT,
    "payments" INTEGER NOT NULL DEFAULT 0,
    "refunds" INTEGER NOT NULL DEFAULT 0,
    "paid_fen" INTEGER NOT NULL DEFAULT 0,
    "refunded_fen" INTEGER NOT NULL DEFAULT 0,
    "fees_fen" INTEGER NOT NULL DEFAULT 0,
    "split_fen" INTEGER NOT NULL DEFAULT 0,
    "returned_fen" INTEGER NOT NULL DEFAULT 0,
    "recovered" INTEGER NOT NULL DEFAULT 0,
    "finished_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "reconciliation_runs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "bill_mismatches" (
    "id" TEXT NOT NULL,
    "run_id" TEXT NOT NULL,
    "bill_date" TEXT NOT NULL,
    "bill" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "ref" TEXT NOT NULL,
    "ours" TEXT,
    "theirs" TEXT,
    "detail" TEXT NOT NULL,
    "merchant_id" TEXT,
    "checkout_id" TEXT,
    "status" "BillMismatchStatus" NOT NULL DEFAULT 'open',
    "resolved_at" TIMESTAMP(3),
    "resolved_by" TEXT,
    "note" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "bill_mismatches_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "reconciliation_runs_status_next_attempt_at_idx" ON "reconciliation_runs"("status", "next_attempt_at");

-- CreateIndex
CREATE INDEX "reconciliation_runs_bill_date_idx" ON "reconciliation_runs"("bill_date");

-- CreateIndex
CREATE UNIQUE INDEX "reconciliation_runs_account_key_bill_date_key" ON "reconciliation_runs"("account_key", "bill_date");

-- CreateIndex
CREATE INDEX "bill_mismatches_status_idx" ON "bill_mismatches"("status");

-- CreateIndex
CREATE INDEX "bill_mismatches_merchant_id_status_idx" ON "bill_mismatches"("merchant_id", "status");

-- CreateIndex
CREATE UNIQUE INDEX "bill_mismatches_run_id_bill_kind_ref_key" ON "bill_mismatches"("run_id", "bill", "kind", "ref");

-- AddForeignKey
ALTER TABLE "bill_mismatches" ADD CONSTRAINT "bill_mismatches_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "reconciliation_runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

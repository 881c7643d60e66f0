-- AlterTable
ALTER TABLE "notify_logs" ADD COLUMN     "body_bytes" INTEGER,
ADD COLUMN     "source_ip" TEXT;

-- CreateIndex
CREATE INDEX "notify_logs_received_at_idx" ON "notify_logs"("received_at");

-- CreateIndex
CREATE INDEX "split_batches_updated_at_idx" ON "split_batches"("updated_at");

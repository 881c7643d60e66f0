-- AlterTable
ALTER TABLE "split_receivers" ADD COLUMN     "custom_relation" TEXT,
ADD COLUMN     "relation_type" TEXT NOT NULL DEFAULT 'PARTNER';

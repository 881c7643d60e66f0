-- AlterTable
ALTER TABLE "channel_accounts" ADD COLUMN     "max_ratio_at" TIMESTAMP(3);

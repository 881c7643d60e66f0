-- CreateEnum
CREATE TYPE "ChannelAccountKind" AS ENUM ('direct', 'partner');

-- AlterTable
ALTER TABLE "channel_orders" ADD COLUMN     "account_id" TEXT,
ADD COLUMN     "sub_appid" TEXT,
ADD COLUMN     "sub_mchid" TEXT;

-- AlterTable
ALTER TABLE "merchants" ALTER COLUMN "api_key_hash" DROP NOT NULL;

-- CreateTable
CREATE TABLE "merchant_api_keys" (
    "id" TEXT NOT NULL,
    "merchant_id" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "key_hash" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMP(3),
    "revoked_at" TIMESTAMP(3),

    CONSTRAINT "merchant_api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "service_providers" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "sp_mchid" TEXT NOT NULL,
    "sp_appid" TEXT NOT NULL,
    "merchant_cert_serial" TEXT NOT NULL,
    "platform_key_ids" TEXT[],
    "secrets" TEXT NOT NULL,
    "secrets_key_id" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "service_providers_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "channel_accounts" (
    "id" TEXT NOT NULL,
    "merchant_id" TEXT NOT NULL,
    "channel" TEXT NOT NULL DEFAULT 'wechatpay',
    "kind" "ChannelAccountKind" NOT NULL,
    "mchid" TEXT,
    "appid" TEXT,
    "merchant_cert_serial" TEXT,
    "platform_key_ids" TEXT[],
    "service_provider_id" TEXT,
    "sub_mchid" TEXT,
    "sub_appid" TEXT,
    "secrets" TEXT,
    "secrets_key_id" TEXT,
    "max_ratio_bp" INTEGER,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "channel_accounts_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "merchant_api_keys_key_hash_key" ON "merchant_api_keys"("key_hash");

-- CreateIndex
CREATE INDEX "merchant_api_keys_merchant_id_idx" ON "merchant_api_keys"("merchant_id");

-- CreateIndex
CREATE UNIQUE INDEX "service_providers_sp_mchid_key" ON "service_providers"("sp_mchid");

-- CreateIndex
CREATE UNIQUE INDEX "channel_accounts_merchant_id_key" ON "channel_accounts"("merchant_id");

-- CreateIndex
CREATE UNIQUE INDEX "channel_accounts_service_provider_id_sub_mchid_key" ON "channel_accounts"("service_provider_id", "sub_mchid");

-- AddForeignKey
ALTER TABLE "merchant_api_keys" ADD CONSTRAINT "merchant_api_keys_merchant_id_fkey" FOREIGN KEY ("merchant_id") REFERENCES "merchants"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "channel_accounts" ADD CONSTRAINT "channel_accounts_merchant_id_fkey" FOREIGN KEY ("merchant_id") REFERENCES "merchants"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "channel_accounts" ADD CONSTRAINT "channel_accounts_service_provider_id_fkey" FOREIGN KEY ("service_provider_id") REFERENCES "service_providers"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- Data: every existing merchant keeps its key, now as its first row in merchant_api_keys
-- (id derived from the merchant id so the migration is deterministic, the key itself being unknown here).
INSERT INTO "merchant_api_keys" ("id", "merchant_id", "prefix", "key_hash", "created_at")
SELECT 'key_' || substr(md5("id"), 1, 20), "id", 'sk_(migrated)', "api_key_hash", "created_at"
FROM "merchants" WHERE "api_key_hash" IS NOT NULL
ON CONFLICT DO NOTHING;

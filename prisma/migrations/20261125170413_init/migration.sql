-- CreateEnum
CREATE TYPE "CheckoutStatus" AS ENUM ('open', 'paid', 'expired', 'closed');

-- CreateEnum
CREATE TYPE "ProfitSharingMode" AS ENUM ('none', 'planned', 'on_demand');

-- CreateEnum
CREATE TYPE "TradeType" AS ENUM ('JSAPI', 'H5', 'NATIVE');

-- CreateEnum
CREATE TYPE "ChannelOrderStatus" AS ENUM ('created', 'paid', 'closed');

-- CreateTable
CREATE TABLE "merchants" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "api_key_hash" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "merchants_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "checkouts" (
    "id" TEXT NOT NULL,
    "merchant_id" TEXT NOT NULL,
    "out_trade_no" TEXT NOT NULL,
    "amount_fen" INTEGER NOT NULL,
    "currency" TEXT NOT NULL DEFAULT 'CNY',
    "description" TEXT NOT NULL,
    "attach" TEXT,
    "return_url" TEXT,
    "payer_openid" TEXT,
    "status" "CheckoutStatus" NOT NULL DEFAULT 'open',
    "expires_at" TIMESTAMP(3) NOT NULL,
    "channel" TEXT,
    "transaction_id" TEXT,
    "paid_at" TIMESTAMP(3),
    "paid_total_fen" INTEGER,
    "payer_total_fen" INTEGER,
    "returned_at" TIMESTAMP(3),
    "profit_sharing" "ProfitSharingMode" NOT NULL DEFAULT 'none',
    "split_plan" JSONB,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "checkouts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "channel_orders" (
    "id" TEXT NOT NULL,
    "checkout_id" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "trade_type" "TradeType" NOT NULL,
    "out_trade_no" TEXT NOT NULL,
    "payer_key" TEXT NOT NULL DEFAULT '',
    "appid" TEXT NOT NULL,
    "mchid" TEXT NOT NULL,
    "status" "ChannelOrderStatus" NOT NULL DEFAULT 'created',
    "prepay_id" TEXT,
    "h5_url" TEXT,
    "code_url" TEXT,
    "credential_at" TIMESTAMP(3),
    "transaction_id" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "channel_orders_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "idempotency_records" (
    "id" TEXT NOT NULL,
    "merchant_id" TEXT NOT NULL,
    "scope" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "request_hash" TEXT NOT NULL,
    "response_code" INTEGER,
    "response_body" JSONB,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "idempotency_records_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "notify_logs" (
    "id" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "received_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "headers" JSONB NOT NULL,
    "body" TEXT NOT NULL,
    "outcome" TEXT NOT NULL,
    "error" TEXT,
    "event_id" TEXT,
    "out_trade_no" TEXT,

    CONSTRAINT "notify_logs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "outbox_events" (
    "id" BIGSERIAL NOT NULL,
    "type" TEXT NOT NULL,
    "aggregate_id" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "processed_at" TIMESTAMP(3),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "available_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "outbox_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "merchants_api_key_hash_key" ON "merchants"("api_key_hash");

-- CreateIndex
CREATE UNIQUE INDEX "checkouts_transaction_id_key" ON "checkouts"("transaction_id");

-- CreateIndex
CREATE INDEX "checkouts_status_expires_at_idx" ON "checkouts"("status", "expires_at");

-- CreateIndex
CREATE UNIQUE INDEX "checkouts_merchant_id_out_trade_no_key" ON "checkouts"("merchant_id", "out_trade_no");

-- CreateIndex
CREATE UNIQUE INDEX "channel_orders_out_trade_no_key" ON "channel_orders"("out_trade_no");

-- CreateIndex
CREATE UNIQUE INDEX "channel_orders_checkout_id_trade_type_payer_key_key" ON "channel_orders"("checkout_id", "trade_type", "payer_key");

-- CreateIndex
CREATE UNIQUE INDEX "idempotency_records_merchant_id_scope_key_key" ON "idempotency_records"("merchant_id", "scope", "key");

-- CreateIndex
CREATE INDEX "notify_logs_out_trade_no_idx" ON "notify_logs"("out_trade_no");

-- CreateIndex
CREATE INDEX "outbox_events_processed_at_available_at_idx" ON "outbox_events"("processed_at", "available_at");

-- CreateIndex
CREATE UNIQUE INDEX "outbox_events_type_aggregate_id_key" ON "outbox_events"("type", "aggregate_id");

-- AddForeignKey
ALTER TABLE "checkouts" ADD CONSTRAINT "checkouts_merchant_id_fkey" FOREIGN KEY ("merchant_id") REFERENCES "merchants"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "channel_orders" ADD CONSTRAINT "channel_orders_checkout_id_fkey" FOREIGN KEY ("checkout_id") REFERENCES "checkouts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

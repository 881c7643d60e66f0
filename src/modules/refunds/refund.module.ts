import type { AppModule } from '../../app.types';
import { startLoop } from '../../jobs/loop';
import { refundRouter } from './refund.routes';
import { settleRefundKicks, syncRefundsOnce } from './refund.runner';
import { checkoutRefundsJson, loadRefundJson } from './refund.service';

/**
 * Refunds (issue 9 §1). Plugs into the core through AppModule:
 *   apiRoutes     POST /v1/checkouts/{id}/refunds, GET /v1/refunds/{id}, POST /v1/refunds/{id}/retry,
 *                 POST /notify/wechatpay/refunds
 *   checkoutJson  refunded_amount, refundable_amount, refunds[] of GET /v1/checkouts/{id}
 *   eventObjects  the refund JSON of refund.* merchant events
 *   startWorkers  the sync loop (REFUND_SYNC_INTERVAL_MS): retries, the query fallback, crashed runs
 */
export const refundsModule: AppModule = {
  apiRoutes: (deps) => refundRouter(deps),
  checkoutJson: (deps) => (c) => checkoutRefundsJson(deps.prisma, c),
  eventObjects: (deps) => ({ refund: (id: string) => loadRefundJson(deps.prisma, id) }),
  startWorkers: async (deps) => {
    const loop = startLoop('refunds', deps.config.REFUND_SYNC_INTERVAL_MS, () => syncRefundsOnce(deps), deps.logger);
    return {
      async stop() {
        await loop.stop();
        await settleRefundKicks(deps);
      },
    };
  },
};

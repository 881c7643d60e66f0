import express from 'express';
import path from 'node:path';
import pinoHttp from 'pino-http';
import { errorHandler, notFoundHandler } from './http/error-handler';
import { merchantAuth } from './http/merchant-auth';
import { buildOpenApi } from './http/openapi';
import { requestId } from './http/request-id';
import { healthRouter } from './http/health.routes';
import { httpMetrics, metricsRouter } from './http/metrics.routes';
import { registerCoreGauges } from './jobs/metrics.gauges';
import { checkoutApiRouter } from './modules/checkout/checkout.api';
import { checkoutPagesRouter } from './modules/checkout/checkout.pages';
import { demoRouter } from './modules/demo/demo.routes';
import { paymentNotifyRouter } from './modules/payments/payment.routes';
import type { AppDeps, AppModule } from './app.types';

export type { AppDeps, AppModule } from './app.types';

export function parseTrustProxy(v: string): boolean | number | string {
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (/^\d+$/.test(v)) return Number(v);
  return v;
}

/** Builds the Express app; no listen here (tests drive it with supertest). */
export function createApp(deps: AppDeps, modules: AppModule[] = []): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', parseTrustProxy(deps.config.TRUST_PROXY));
  app.set('view engine', 'ejs');
  app.set('views', path.resolve(__dirname, '../views'));

  app.use(requestId);
  app.use(httpMetrics(deps.metrics));
  app.use(pinoHttp({ logger: deps.logger, genReqId: (_req, res) => String(res.locals?.requestId ?? ''), autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' || req.url === '/metrics' } }));

  app.use(healthRouter(deps));
  app.use(metricsRouter(deps.metrics, deps.config.METRICS_TOKEN));
  registerCoreGauges(deps);

  const openapi = buildOpenApi(deps.config.PUBLIC_BASE_URL);
  app.get('/openapi.json', (_req, res) => res.json(openapi));

  // Raw bytes for the notify signature: mounted before any JSON parser.
  app.use(paymentNotifyRouter(deps));

  app.use('/v1', express.json({ limit: '100kb' }), merchantAuth(deps.prisma));
  app.use(checkoutApiRouter(deps, modules.flatMap((m) => (m.checkoutJson ? [m.checkoutJson(deps)] : []))));
  for (const m of modules) if (m.apiRoutes) app.use(m.apiRoutes(deps));
  app.use(checkoutPagesRouter(deps));
  for (const m of modules) if (m.pageRoutes) app.use(m.pageRoutes(deps));
  if (deps.config.sandbox) app.use(demoRouter(deps));

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}

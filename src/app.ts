import ejs from 'ejs';
import express from 'express';
import { existsSync } from 'node:fs';
import path from 'node:path';
import pinoHttp from 'pino-http';
import { browserNotFound, errorHandler, noFavicon, notFoundHandler } from './http/error-handler';
import { merchantAuth } from './http/merchant-auth';
import { buildOpenApi } from './http/openapi';
import { requestId } from './http/request-id';
import { redactUrl } from './lib/logger';
import { securityHeaders } from './http/security-headers';
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

/** views/ at the project root, from src/ (tsx) or from dist/src/ (the compiled build). */
function viewsDir(): string {
  for (const up of ['../views', '../../views']) {
    const dir = path.resolve(__dirname, up);
    if (existsSync(path.join(dir, 'checkout'))) return dir;
  }
  return path.resolve(process.cwd(), 'views');
}

/** Builds the Express app; no listen here (tests drive it with supertest). */
export function createApp(deps: AppDeps, modules: AppModule[] = []): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', parseTrustProxy(deps.config.TRUST_PROXY));
  const views = viewsDir();
  // Compiled templates cached outside the sandbox (where they are edited), whatever NODE_ENV says:
  // Express turns the cache on only for NODE_ENV=production, and an uncached page recompiles every
  // EJS file it includes on each render.
  const viewCache = !deps.config.sandbox;
  // Templates include by absolute path from views/ (`include('/partials/head')`): EJS looks a
  // relative include up on disk (existsSync) on every render, cache or not.
  app.engine('ejs', (file, data, cb) => ejs.renderFile(file, data as ejs.Data, { root: views, cache: viewCache }, cb));
  app.set('view engine', 'ejs');
  app.set('views', views);
  app.set('view cache', viewCache);

  app.use(requestId);
  app.use(securityHeaders(deps.config));
  app.use(httpMetrics(deps.metrics));
  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (_req, res) => String(res.locals?.requestId ?? ''),
      autoLogging: { ignore: (req) => ['/healthz', '/readyz', '/metrics', '/favicon.ico'].includes(req.url) },
      // What a request line needs, nothing personal: no cookies, no IP, no OAuth code or openid.
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: redactUrl(req.url) }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customSuccessMessage: (req, res, ms) => `${req.method} ${redactUrl(req.originalUrl ?? req.url ?? '')} ${res.statusCode} ${Math.round(ms)} ms`,
      customErrorMessage: (req, res, err) => `${req.method} ${redactUrl(req.originalUrl ?? req.url ?? '')} ${res.statusCode} ${err.message}`,
    }),
  );

  app.use(healthRouter(deps));
  app.use(metricsRouter(deps.metrics, deps.config.METRICS_TOKEN));
  registerCoreGauges(deps);
  for (const m of modules) m.registerMetrics?.(deps);

  const openapi = buildOpenApi(deps.config.PUBLIC_BASE_URL);
  app.get('/openapi.json', (_req, res) => res.json(openapi));

  // Raw bytes for the notify signature: mounted before any JSON parser.
  app.use(paymentNotifyRouter(deps));

  // inflate: false: a compressed body is refused with 415 rather than inflated (no zip bombs, no 500s).
  app.use('/v1', express.json({ limit: '100kb', inflate: false }), merchantAuth(deps.prisma, deps.merchantCache));
  app.use(checkoutApiRouter(deps, modules.flatMap((m) => (m.checkoutJson ? [m.checkoutJson(deps)] : []))));
  for (const m of modules) if (m.apiRoutes) app.use(m.apiRoutes(deps));
  app.use(checkoutPagesRouter(deps));
  for (const m of modules) if (m.pageRoutes) app.use(m.pageRoutes(deps));
  if (deps.config.sandbox) app.use(demoRouter(deps));

  app.get('/favicon.ico', noFavicon);
  app.use(browserNotFound(deps.config.sandbox));
  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}

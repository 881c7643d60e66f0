/**
 * GET /metrics (Prometheus text) only with `Authorization: Bearer $METRICS_TOKEN`, compared in
 * constant time; without a configured token the route does not exist (404). Also the HTTP histogram
 * middleware, labelled by the matched route pattern (never the raw URL: ids would explode the series).
 */
import type { RequestHandler, Router } from 'express';
import express from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { AppError } from '../lib/errors';
import type { Metrics } from '../lib/metrics';

export function httpMetrics(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const end = metrics.http.startTimer();
    res.on('finish', () => {
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : res.statusCode === 404 ? 'unmatched' : req.baseUrl || 'middleware';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  };
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function metricsRouter(metrics: Metrics, token: string | undefined): Router {
  const r = express.Router();
  r.get('/metrics', async (req, res) => {
    if (!token) throw new AppError('NOT_FOUND', 'No such route');
    const m = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
    if (!m || !timingSafeEqual(digest(m[1]!), digest(token))) throw new AppError('UNAUTHENTICATED', 'metrics need Authorization: Bearer <METRICS_TOKEN>');
    res.type(metrics.registry.contentType).send(await metrics.text());
  });
  return r;
}

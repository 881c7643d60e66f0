import { createHash, timingSafeEqual } from 'node:crypto';
import express, { Router, type RequestHandler } from 'express';
import type { AppDeps } from '../../app.types';
import { AppError } from '../../lib/errors';
import { createMerchantSchema } from './account.schemas';
import { addAccount, addServiceProvider, listAccounts, listServiceProviders, rotateSecrets, updateAccount, updateServiceProvider } from './account.service';
import { channelsOf } from './channel-resolver';
import { createApiKey, listApiKeys, listMerchants, onboardMerchant, revokeApiKey, type KeyMode } from './merchant.service';

/** Constant-time: both sides hashed to 32 bytes first, so neither length nor content leaks through timing. */
export function tokenMatches(expected: string, given: string): boolean {
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(given, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/**
 * `Authorization: Bearer <ADMIN_TOKEN>`. Without ADMIN_TOKEN configured the admin API does not exist
 * (404 like any unknown path), so an unconfigured production gateway exposes nothing.
 */
function adminAuth(token: string | undefined): RequestHandler {
  return (req, _res, next) => {
    if (!token) throw new AppError('NOT_FOUND', 'Not found');
    const m = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
    if (!m || !tokenMatches(token, m[1]!)) throw new AppError('UNAUTHENTICATED', 'Missing or wrong admin token');
    next();
  };
}

/**
 * The admin API: the same operations as the CLI (`npm run admin`), each one call into the merchant
 * services. Secrets go in (account add, sp add) and never come back out.
 */
export function adminRouter(deps: AppDeps): Router {
  const r = Router();
  const mode: KeyMode = deps.config.sandbox ? 'test' : 'live';
  r.use('/admin/api', adminAuth(deps.config.ADMIN_TOKEN), express.json({ limit: '256kb' }));

  r.post('/admin/api/merchants', async (req, res) => {
    const { name } = createMerchantSchema.parse(req.body ?? {});
    const out = await onboardMerchant(deps.prisma, { name, mode });
    res.status(201).json({ ...out.merchant, api_key: { ...out.key, secret: out.secret } });
  });
  r.get('/admin/api/merchants', async (_req, res) => {
    res.json({ object: 'list', data: await listMerchants(deps.prisma) });
  });
  r.post('/admin/api/merchants/:id/keys', async (req, res) => {
    const out = await createApiKey(deps.prisma, String(req.params.id), mode);
    res.status(201).json({ ...out.key, secret: out.secret });
  });
  r.get('/admin/api/merchants/:id/keys', async (req, res) => {
    res.json({ object: 'list', data: await listApiKeys(deps.prisma, String(req.params.id)) });
  });
  r.post('/admin/api/keys/:id/revoke', async (req, res) => {
    res.json(await revokeApiKey(deps.prisma, String(req.params.id), deps.now(), async (h) => deps.merchantCache?.invalidate(h)));
  });
  r.post('/admin/api/service-providers', async (req, res) => {
    res.status(201).json(await addServiceProvider(deps, req.body ?? {}));
  });
  // Key rotation in place; the cached channel is rebuilt here and on every instance (resolver.invalidate).
  r.patch('/admin/api/service-providers/:id', async (req, res) => {
    res.json(await updateServiceProvider(deps, String(req.params.id), req.body ?? {}, (ref) => channelsOf(deps).invalidate(ref)));
  });
  r.get('/admin/api/service-providers', async (_req, res) => {
    res.json({ object: 'list', data: await listServiceProviders(deps.prisma) });
  });
  r.post('/admin/api/accounts', async (req, res) => {
    res.status(201).json(await addAccount(deps, req.body ?? {}));
  });
  r.patch('/admin/api/accounts/:id', async (req, res) => {
    res.json(await updateAccount(deps, String(req.params.id), req.body ?? {}, (ref) => channelsOf(deps).invalidate(ref)));
  });
  r.get('/admin/api/accounts', async (req, res) => {
    const merchantId = typeof req.query.merchant_id === 'string' ? req.query.merchant_id : undefined;
    res.json({ object: 'list', data: await listAccounts(deps, merchantId) });
  });
  r.post('/admin/api/secrets/rotate', async (_req, res) => {
    res.json(await rotateSecrets(deps));
  });
  return r;
}

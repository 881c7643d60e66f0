import type { RequestHandler } from 'express';
import { AppError } from '../lib/errors';
import type { PrismaClient } from '../lib/prisma';
import { findMerchantByApiKey, hashApiKey, type MerchantRef } from '../modules/merchants/merchant.service';
import type { MerchantCache } from './merchant-cache';

/** `Authorization: Bearer <api key>`; puts the merchant on res.locals.merchant. */
export function merchantAuth(prisma: PrismaClient, cache?: MerchantCache): RequestHandler {
  return async (req, res, next) => {
    const header = req.get('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new AppError('UNAUTHENTICATED', 'Missing or malformed Authorization: Bearer <api key>');
    const key = m[1]!;
    const merchant = cache ? await cache.get(hashApiKey(key), () => findMerchantByApiKey(prisma, key)) : await findMerchantByApiKey(prisma, key);
    if (!merchant) throw new AppError('UNAUTHENTICATED', 'Unknown or revoked API key');
    res.locals.merchant = merchant;
    next();
  };
}

export function currentMerchant(res: { locals: Record<string, unknown> }): MerchantRef {
  return res.locals.merchant as MerchantRef;
}

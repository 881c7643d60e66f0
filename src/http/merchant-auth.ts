import type { RequestHandler } from 'express';
import { AppError } from '../lib/errors';
import type { PrismaClient } from '../lib/prisma';
import { findMerchantByApiKey, type MerchantRef } from '../modules/merchants/merchant.service';

/** `Authorization: Bearer <api key>`; puts the merchant on res.locals.merchant. */
export function merchantAuth(prisma: PrismaClient): RequestHandler {
  return async (req, res, next) => {
    const header = req.get('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new AppError('UNAUTHENTICATED', 'Missing or malformed Authorization: Bearer <api key>');
    const merchant = await findMerchantByApiKey(prisma, m[1]!);
    if (!merchant) throw new AppError('UNAUTHENTICATED', 'Unknown or revoked API key');
    res.locals.merchant = merchant;
    next();
  };
}

export function currentMerchant(res: { locals: Record<string, unknown> }): MerchantRef {
  return res.locals.merchant as MerchantRef;
}

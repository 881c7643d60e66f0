import { z } from 'zod';

/** A receiver of a split, as merchants send it (amount in fen). */
export const receiverSchema = z
  .object({
    type: z.enum(['MERCHANT_ID', 'PERSONAL_OPENID']),
    account: z.string().min(1).max(64),
    name: z.string().min(1).max(1024).optional(),
    amount: z.number().int('must be an integer number of fen').min(1, 'must be at least 1 fen'),
    description: z.string().min(1).max(80),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.type === 'MERCHANT_ID' && !r.name)
      ctx.addIssue({ code: 'custom', path: ['name'], message: 'name (the merchant\'s legal name) is required for MERCHANT_ID receivers' });
  });

export type ReceiverInput = z.infer<typeof receiverSchema>;

/** Receivers of one split: no receiver twice. */
export const receiverListSchema = z
  .array(receiverSchema)
  .min(1, 'at least one receiver')
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((r, i) => {
      const k = `${r.type}:${r.account}`;
      if (seen.has(k)) ctx.addIssue({ code: 'custom', path: [i, 'account'], message: `receiver ${r.account} appears twice` });
      seen.add(k);
    });
  });

export const createCheckoutSchema = z
  .object({
    out_trade_no: z.string().min(1).max(64).regex(/^[0-9A-Za-z_\-|*@.]+$/, 'letters, digits and _-|*@. only'),
    amount: z.number().int('must be an integer number of fen').min(1, 'must be at least 1 fen').max(10_000_000_000),
    currency: z.literal('CNY').default('CNY'),
    description: z.string().trim().min(1).max(127),
    return_url: z.url({ protocol: /^https?$/ }).max(1024).optional(),
    expires_in: z.number().int().min(60).max(7 * 24 * 3600).optional(),
    payer: z.object({ openid: z.string().min(1).max(128) }).strict().optional(),
    attach: z.string().max(128).optional(),
    profit_sharing: z
      .object({
        mode: z.enum(['planned', 'on_demand']).optional(),
        receivers: receiverListSchema.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type CreateCheckoutInput = z.infer<typeof createCheckoutSchema>;

export const checkoutIdSchema = z.string().regex(/^co_[0-9a-z]{20}$/, 'not a checkout id');

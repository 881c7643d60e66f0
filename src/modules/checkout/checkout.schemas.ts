import { z } from 'zod';
import { maxUtf8Bytes, WECHAT_BYTE_LIMITS } from '../../lib/utf8';
import { amountFen, noControlChars, text } from '../../lib/validation';

/** relation_type values of /v3/profitsharing/receivers/add (FACTS §5). */
export const RELATION_TYPES = ['SERVICE_PROVIDER', 'STORE', 'STAFF', 'STORE_OWNER', 'PARTNER', 'HEADQUARTER', 'BRAND', 'DISTRIBUTOR', 'USER', 'SUPPLIER', 'CUSTOM'] as const;

/** A receiver of a split, as merchants send it (amount in fen). */
export const receiverSchema = z
  .object({
    type: z.enum(['MERCHANT_ID', 'PERSONAL_OPENID']),
    account: text().min(1).max(64),
    name: text().min(1).max(1024).optional(),
    amount: amountFen(),
    description: maxUtf8Bytes(text().min(1).max(80), WECHAT_BYTE_LIMITS.receiverDescription),
    /** WeChat's relation of the receiver to the merchant, declared when it is added (receivers/add). */
    relation_type: z.enum(RELATION_TYPES).default('PARTNER'),
    custom_relation: text().min(1).max(10).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.type === 'MERCHANT_ID' && !r.name)
      ctx.addIssue({ code: 'custom', path: ['name'], message: 'name (the merchant\'s legal name) is required for MERCHANT_ID receivers' });
    if ((r.relation_type === 'CUSTOM') !== (r.custom_relation !== undefined))
      ctx.addIssue({ code: 'custom', path: ['custom_relation'], message: 'custom_relation is required with relation_type CUSTOM, and only then' });
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
    out_trade_no: text().min(1).max(64).regex(/^[0-9A-Za-z_\-|*@.]+$/, 'letters, digits and _-|*@. only'),
    amount: amountFen(),
    currency: z.literal('CNY').default('CNY'),
    description: maxUtf8Bytes(text().trim().min(1).max(127), WECHAT_BYTE_LIMITS.description),
    return_url: z.url({ protocol: /^https?$/ }).max(1024).refine(...noControlChars).optional(),
    expires_in: z.number().int().min(60).max(7 * 24 * 3600).optional(),
    payer: z.object({ openid: text().min(1).max(128) }).strict().optional(),
    attach: maxUtf8Bytes(text().max(128), WECHAT_BYTE_LIMITS.attach).optional(),
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

/** GET /v1/checkouts: newest first, cursor-paged; find one by the merchant's own order number. */
export const listCheckoutsSchema = z
  .object({
    out_trade_no: text().min(1).max(64).optional(),
    status: z.enum(['open', 'paid', 'expired', 'closed']).optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    starting_after: z.string().regex(/^co_[0-9a-z]{20}$/, 'not a checkout id').optional(),
  })
  .strict();

export const checkoutIdSchema = z.string().regex(/^co_[0-9a-z]{20}$/, 'not a checkout id');

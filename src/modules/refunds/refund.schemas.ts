import { z } from 'zod';
import { amountFen, text } from '../../lib/validation';

export const refundIdSchema = z.string().regex(/^re_[0-9a-z]{20}$/);

/** Where split money already paid to receivers comes back from (see refund.rules.ts). */
export const splitReturnSchema = z.union([
  z.enum(['none', 'proportional']),
  z
    .array(z.object({ account: z.string().min(1).max(64), amount: z.number().int().min(1) }).strict())
    .min(1)
    .max(50)
    .refine((l) => new Set(l.map((r) => r.account)).size === l.length, 'an account may appear only once'),
]);
export type SplitReturnInput = z.infer<typeof splitReturnSchema>;

/** POST /v1/checkouts/{id}/refunds */
export const createRefundSchema = z
  .object({
    // Like every amount: the columns are PostgreSQL integer (a larger one was a 500 in the reservation).
    amount: amountFen(),
    // Printable text: PostgreSQL refuses NUL (a 500), and WeChat's reason is a one-line string.
    reason: text().min(1).max(80).optional(),
    /** Your own refund number (unique per merchant); defaults to the refund id. */
    out_refund_no: z.string().regex(/^[0-9A-Za-z_\-|*@]{1,64}$/, 'out_refund_no: 1–64 of [0-9A-Za-z_-|*@]').optional(),
    split_return: splitReturnSchema.optional(),
  })
  .strict();
export type CreateRefundInput = z.infer<typeof createRefundSchema>;

/** POST /v1/refunds/{id}/retry (body optional) */
export const retryRefundSchema = z.object({}).strict();

import { z } from 'zod';
import { maxUtf8Bytes, WECHAT_BYTE_LIMITS } from '../../lib/utf8';
import { text } from '../../lib/validation';
import { checkoutIdSchema, receiverListSchema } from '../checkout/checkout.schemas';

/** POST /v1/checkouts/{id}/splits */
export const createSplitSchema = z.object({ receivers: receiverListSchema }).strict();
export type CreateSplitInput = z.infer<typeof createSplitSchema>;

/** PUT /v1/checkouts/{id}/split-plan */
export const splitPlanSchema = z.object({ receivers: receiverListSchema }).strict();

/** POST /v1/checkouts/{id}/splits/finish (body optional) */
export const finishSplitSchema = z.object({ description: maxUtf8Bytes(text().min(1).max(80), WECHAT_BYTE_LIMITS.unfreezeDescription).optional() }).strict();

/** Job payload of the split queue, re-checked in the worker. */
export const driveJobSchema = z.object({ checkoutId: checkoutIdSchema }).strict();
export type DriveJob = z.infer<typeof driveJobSchema>;

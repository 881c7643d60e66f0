/**
 * Request bodies of /v3/profitsharing/*, strict like WeChat: unknown fields, wrong types, too-long strings
 * and out-of-range numbers are 400 PARAM_ERROR. Field lengths from the official pages as mirrored by
 * wechatpay-im/website (openapi/v3/profitsharing/*) and the official GO samples in wechatpay-skills.
 */
import { z } from 'zod';

const OUT_NO = /^[0-9A-Za-z_\-|*@]+$/;

export const receiverTypeSchema = z.enum(['MERCHANT_ID', 'PERSONAL_OPENID']);

export const RELATION_TYPES = [
  'SERVICE_PROVIDER',
  'STORE',
  'STAFF',
  'STORE_OWNER',
  'PARTNER',
  'HEADQUARTER',
  'BRAND',
  'DISTRIBUTOR',
  'USER',
  'SUPPLIER',
  'CUSTOM',
] as const;

const outNo = z.string().min(1).max(64).regex(OUT_NO);
/** Service-provider mode (FACTS-partner-bills §1.8): the same bodies plus the sub-merchant (and its appid). */
const subMchid = z.string().min(1).max(32).optional();
const subAppid = z.string().min(1).max(32).optional();
const transactionId = z.string().min(1).max(32);
const appid = z.string().min(1).max(32);
const account = z.string().min(1).max(64);
const amount = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/** string(80) counts UTF-8 bytes at WeChat (its validator: "字节数 N，大于最大值 80"), not characters. */
const description = z
  .string()
  .min(1)
  .refine((v) => Buffer.byteLength(v, 'utf8') <= 80, { error: (i) => `字节数 ${Buffer.byteLength(String(i.input), 'utf8')}，大于最大值 80` });

export const createOrderSchema = z.strictObject({
  sub_mchid: subMchid,
  appid: appid.optional(),
  sub_appid: subAppid,
  transaction_id: transactionId,
  out_order_no: outNo,
  receivers: z
    .array(
      z.strictObject({
        type: receiverTypeSchema,
        account,
        name: z.string().min(1).max(1024).optional(),
        amount,
        description,
      }),
    )
    .min(1),
  unfreeze_unsplit: z.boolean(),
});
export type CreateOrderBody = z.infer<typeof createOrderSchema>;

export const unfreezeSchema = z.strictObject({
  sub_mchid: subMchid,
  transaction_id: transactionId,
  out_order_no: outNo,
  description,
});
export type UnfreezeBody = z.infer<typeof unfreezeSchema>;

export const addReceiverSchema = z.strictObject({
  sub_mchid: subMchid,
  appid,
  sub_appid: subAppid,
  type: receiverTypeSchema,
  account,
  name: z.string().min(1).max(1024).optional(),
  relation_type: z.enum(RELATION_TYPES),
  custom_relation: z.string().min(1).max(10).optional(),
});
export type AddReceiverBody = z.infer<typeof addReceiverSchema>;

export const deleteReceiverSchema = z.strictObject({ sub_mchid: subMchid, appid, sub_appid: subAppid, type: receiverTypeSchema, account });
export type DeleteReceiverBody = z.infer<typeof deleteReceiverSchema>;

export const returnOrderSchema = z.strictObject({
  sub_mchid: subMchid,
  order_id: z.string().min(1).max(64).optional(),
  out_order_no: outNo.optional(),
  out_return_no: outNo,
  return_mchid: z.string().min(1).max(32),
  amount,
  description,
});
export type ReturnOrderBody = z.infer<typeof returnOrderSchema>;

export interface ParamProblem {
  message: string;
  detail: { location: string; value: string };
}

/** Turns a zod failure into WeChat's PARAM_ERROR message and detail. */
export function describeIssue(error: z.ZodError, location = 'body'): ParamProblem {
  const issue = error.issues[0];
  const path = `/${location}/${issue?.path.join('/') ?? ''}`;
  if (issue?.code === 'unrecognized_keys') {
    // Verified wording: developers.weixin.qq.com ("请求中含有未在API文档中定义的参数").
    const keys = issue.keys.map((k) => `${path.replace(/\/$/, '')}/${k}`);
    return { message: '请求中含有未在API文档中定义的参数', detail: { location, value: keys.join(',') } };
  }
  return { message: `输入源"${path}"校验失败：${issue?.message ?? '参数错误'}`, detail: { location, value: path } };
}

import { z } from 'zod';

/** Inputs of `account add` / `sp add` (CLI and admin API). PEMs are text here; the CLI reads them from files. */

const MCHID = /^\d{8,32}$/;
const APPID = /^wx[0-9a-zA-Z]{16}$/;
const SERIAL = /^[0-9A-Fa-f]{8,40}$/;

const apiv3Key = z.string().superRefine((v, ctx) => {
  if ([...v].length !== 32) ctx.addIssue({ code: 'custom', message: `must be exactly 32 characters (got ${[...v].length})` });
});

/** What every WeChat Pay merchant that signs requests has: its API key pair, the APIv3 key, WeChat's keys. */
const signingIdentity = {
  app_secret: z.string().min(1).max(128),
  merchant_private_key: z.string().min(1).max(16_384),
  merchant_cert_serial: z.string().regex(SERIAL, 'must be the hex serial of the merchant API certificate'),
  apiv3_key: apiv3Key,
  /** id (PUB_KEY_ID_… or certificate serial) → PEM public key or PEM certificate */
  platform_keys: z
    .record(z.string().min(1).max(64), z.string().min(1).max(16_384))
    .refine((r) => Object.keys(r).length > 0, 'at least one platform public key or certificate'),
};

export const directAccountSchema = z
  .object({
    merchant_id: z.string().min(1).max(64),
    kind: z.literal('direct'),
    mchid: z.string().regex(MCHID, 'must be the numeric merchant id'),
    appid: z.string().regex(APPID, 'must look like wx + 16 characters'),
    ...signingIdentity,
  })
  .strict();

export const partnerAccountSchema = z
  .object({
    merchant_id: z.string().min(1).max(64),
    kind: z.literal('partner'),
    /** the service provider's id (sp_…) or its sp_mchid */
    service_provider: z.string().min(1).max(64),
    sub_mchid: z.string().regex(MCHID, 'must be the numeric sub-merchant id'),
    /** The sub-merchant's own official account (optional): openids then come from it (sub_openid). */
    sub_appid: z.string().regex(APPID, 'must look like wx + 16 characters').optional(),
    sub_app_secret: z.string().min(1).max(128).optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if ((v.sub_appid === undefined) !== (v.sub_app_secret === undefined))
      ctx.addIssue({ code: 'custom', path: ['sub_app_secret'], message: 'sub_appid and sub_app_secret go together (OAuth under sub_appid needs its secret)' });
  });

export const addAccountSchema = z.discriminatedUnion('kind', [directAccountSchema, partnerAccountSchema]);

export const serviceProviderSchema = z
  .object({
    name: z.string().trim().min(1).max(128),
    sp_mchid: z.string().regex(MCHID, 'must be the numeric service-provider merchant id'),
    sp_appid: z.string().regex(APPID, 'must look like wx + 16 characters'),
    ...signingIdentity,
  })
  .strict();

/**
 * `account update` / `sp update`: key rotation without a new account. A new private key comes with its
 * certificate's serial; platform keys are replaced as a set (`platform_keys`) or added/replaced by id
 * (`add_platform_keys`, e.g. WeChat's new public key while the old one is still in use).
 */
export const updateSigningSchema = z
  .object({
    app_secret: signingIdentity.app_secret.optional(),
    merchant_private_key: signingIdentity.merchant_private_key.optional(),
    merchant_cert_serial: signingIdentity.merchant_cert_serial.optional(),
    apiv3_key: apiv3Key.optional(),
    platform_keys: signingIdentity.platform_keys.optional(),
    add_platform_keys: signingIdentity.platform_keys.optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if ((v.merchant_private_key === undefined) !== (v.merchant_cert_serial === undefined))
      ctx.addIssue({ code: 'custom', path: ['merchant_cert_serial'], message: 'merchant_private_key and merchant_cert_serial go together (a new key comes with its certificate\'s serial)' });
    if (v.platform_keys !== undefined && v.add_platform_keys !== undefined)
      ctx.addIssue({ code: 'custom', path: ['add_platform_keys'], message: 'give platform_keys (replace all) or add_platform_keys (add by id), not both' });
    if (Object.values(v).every((x) => x === undefined)) ctx.addIssue({ code: 'custom', message: 'nothing to update' });
  });

/** A partner account's own fields: its sub_appid (null = none) with that app's secret. */
export const updatePartnerAccountSchema = z
  .object({
    sub_appid: z.string().regex(APPID, 'must look like wx + 16 characters').nullable().optional(),
    sub_app_secret: z.string().min(1).max(128).optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.sub_appid === undefined && v.sub_app_secret === undefined) ctx.addIssue({ code: 'custom', message: 'nothing to update (a partner account\'s keys are its service provider\'s: use sp update)' });
    else if (typeof v.sub_appid === 'string' !== (v.sub_app_secret !== undefined))
      ctx.addIssue({ code: 'custom', path: ['sub_app_secret'], message: 'sub_appid and sub_app_secret go together (OAuth under sub_appid needs its secret); sub_appid null removes both' });
  });

export type UpdateSigningInput = z.infer<typeof updateSigningSchema>;
export type AddAccountInput = z.infer<typeof addAccountSchema>;
export type ServiceProviderInput = z.infer<typeof serviceProviderSchema>;

export const createMerchantSchema = z.object({ name: z.string().trim().min(1).max(128) }).strict();

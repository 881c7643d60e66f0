import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/config';
import { SANDBOX_APP_SECRET, SANDBOX_APPID, SANDBOX_MCHID } from '../../config/sandbox';
import type { PrismaClient } from '../../lib/prisma';
import { addAccount, addServiceProvider } from './account.service';
import { createMerchant, SANDBOX_MERCHANT_ID } from './merchant.service';

export const SANDBOX_PARTNER_MERCHANT_ID = 'mch_sandbox_partner';
/** The demo sub-merchant; the sandbox simulator binds it to its merchant acting as service provider. */
export const SANDBOX_SUB_MCHID = '1900000209';

/**
 * The sandbox's two demo merchants: a direct one on the default (env) account (SANDBOX_API_KEY), and a
 * sub-merchant of a demo service provider (SANDBOX_PARTNER_API_KEY). The simulator has one key set, so
 * the demo service provider is the simulator's merchant itself (sp_mchid = the sandbox mchid). Idempotent.
 */
export async function seedSandboxMerchants(deps: { prisma: PrismaClient; config: Config }, keysDir: string): Promise<void> {
  const { prisma, config } = deps;
  await createMerchant(prisma, { id: SANDBOX_MERCHANT_ID, name: '演示商户 Sandbox Shop', apiKey: config.SANDBOX_API_KEY });
  await createMerchant(prisma, { id: SANDBOX_PARTNER_MERCHANT_ID, name: '演示特约商户 Sandbox Sub-merchant', apiKey: config.SANDBOX_PARTNER_API_KEY });
  const read = (f: string) => readFileSync(join(keysDir, f), 'utf8');
  let sp = await prisma.serviceProvider.findUnique({ where: { spMchid: SANDBOX_MCHID }, select: { id: true } });
  sp ??= await addServiceProvider(deps, {
    name: '演示服务商 Sandbox Service Provider',
    sp_mchid: SANDBOX_MCHID,
    sp_appid: SANDBOX_APPID,
    app_secret: SANDBOX_APP_SECRET,
    merchant_private_key: read('merchant_private_key.pem'),
    merchant_cert_serial: read('merchant_cert_serial').trim(),
    apiv3_key: read('apiv3_key').trim(),
    platform_keys: { [read('platform_public_key_id').trim()]: read('platform_public_key.pem') },
  });
  if (!(await prisma.channelAccount.findUnique({ where: { merchantId: SANDBOX_PARTNER_MERCHANT_ID }, select: { id: true } })))
    await addAccount(deps, { merchant_id: SANDBOX_PARTNER_MERCHANT_ID, kind: 'partner', service_provider: sp.id, sub_mchid: SANDBOX_SUB_MCHID });
}

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/config';

/**
 * What `npm run admin` needs to reach a sandbox started from the same folder: written by
 * scripts/sandbox.ts to .data/sandbox.json (git-ignored, owner-only) when the gateway is up.
 */
export function writeSandboxInfo(dataDir: string, config: Config, gatewayEnv?: Record<string, string | undefined>): void {
  const info = {
    APP_MODE: 'sandbox',
    DATABASE_URL: config.DATABASE_URL,
    REDIS_URL: config.REDIS_URL,
    PUBLIC_BASE_URL: config.PUBLIC_BASE_URL,
    SECRETS_MASTER_KEY: config.SECRETS_MASTER_KEY,
    ADMIN_TOKEN: config.ADMIN_TOKEN,
    // `admin reconcile` talks to WeChat (here: the simulator) as the gateway does: it needs the whole env.
    ...(gatewayEnv ? { GATEWAY_ENV: gatewayEnv } : {}),
  };
  writeFileSync(join(dataDir, 'sandbox.json'), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
}

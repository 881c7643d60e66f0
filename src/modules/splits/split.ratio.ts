import type { PaymentChannel } from '../../channels/channel';
import type { Config } from '../../config/config';
import { AppError, ChannelError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { PrismaClient } from '../../lib/prisma';
import { splitLimitsOf, type SplitLimits } from './split.rules';

/**
 * The split budget of a partner account is capped by the ratio its sub-merchant authorised to the service
 * provider (分账授权, FACTS-partner-bills §1.9), not only by PROFIT_SHARING_MAX_RATIO: the budget uses the
 * smaller of the two, so a split WeChat would refuse ("分账金额超出最大分账比例") is refused by us first,
 * before any channel request.
 *
 * Refresh policy. The ratio lives in channel_accounts.max_ratio_bp with the time it was read
 * (max_ratio_at). It is read from the channel (GET /v3/profitsharing/merchant-configs/{sub_mchid}) when
 * unknown or older than RATIO_MAX_AGE_MS — a sub-merchant changes it by hand on the merchant platform, so
 * a day-old value is normally right, and WeChat still refuses a split above a lowered ratio (the driver
 * then records that refusal and clears max_ratio_at, so the next split reads it again). When the channel cannot answer, a remembered value is used however old;
 * with none, the split cannot be checked and is refused as retryable (CHANNEL_UNAVAILABLE, nothing written).
 * NO_AUTH from the channel (no 分账授权) is remembered as 0 and read again on the next split.
 * Direct accounts have no such grant: the configured ratio alone.
 */
export const RATIO_MAX_AGE_MS = 24 * 3600_000;

type Deps = { prisma: PrismaClient; config: Config; logger: Logger; now: () => Date };
export type PaymentAccount = { accountId: string | null; channel: PaymentChannel };

/** The limits a split of this account's payment is checked against. */
export async function splitLimitsFor(d: Deps, account: PaymentAccount): Promise<SplitLimits> {
  return withAuthorisedRatio(splitLimitsOf(d.config), await authorisedRatioBp(d, account));
}

/** min(configured ratio, authorised ratio); authorisedRatioBp is set only when the grant is what binds. */
export function withAuthorisedRatio(limits: SplitLimits, bp: number | null): SplitLimits {
  if (bp === null || bp / 10_000 >= limits.maxRatio) return limits;
  return { ...limits, maxRatio: bp / 10_000, authorisedRatioBp: bp };
}

/** The sub-merchant's authorised ratio in basis points, or null for a direct account. */
export async function authorisedRatioBp(d: Deps, { accountId, channel }: PaymentAccount): Promise<number | null> {
  if (accountId === null || !channel.queryMaxRatio) return null;
  const row = await d.prisma.channelAccount.findUnique({ where: { id: accountId }, select: { maxRatioBp: true, maxRatioAt: true } });
  const now = d.now();
  // 0 (no grant) is read again every time: the split should work as soon as the sub-merchant grants one.
  if (row?.maxRatioBp && row.maxRatioAt && now.getTime() - row.maxRatioAt.getTime() < RATIO_MAX_AGE_MS) return row.maxRatioBp;
  try {
    const { maxRatioBp } = await channel.queryMaxRatio();
    await d.prisma.channelAccount.update({ where: { id: accountId }, data: { maxRatioBp, maxRatioAt: now } });
    return maxRatioBp;
  } catch (err) {
    if (!(err instanceof ChannelError)) throw err;
    // 403 NO_AUTH "子商户未开通分账功能" / "非服务商下的签约子商户": no grant at all; forget any old one.
    if (err.code === 'NO_AUTH') {
      await d.prisma.channelAccount.update({ where: { id: accountId }, data: { maxRatioBp: 0, maxRatioAt: now } });
      return 0;
    }
    if (row?.maxRatioBp != null) {
      d.logger.warn({ accountId, code: err.code, maxRatioBp: row.maxRatioBp }, 'authorised split ratio not refreshed; using the remembered one');
      return row.maxRatioBp;
    }
    throw new AppError('CHANNEL_UNAVAILABLE', 'The authorised profit-sharing ratio of this sub-merchant could not be read from WeChat Pay; try again', { cause: err, internal: `${err.code}: ${err.message}` });
  }
}

import { createRedis } from '../../src/lib/redis';
import { createRedisRateLimiter, limitKeyOf, type LimitKey } from '../../src/modules/splits/split.limiter';
import { testQueuePrefix, testRedisUrl } from '../support/redis';

/**
 * The split limiter against the run's real Redis: per direct mchid, and in partner mode per service
 * provider and per sub-merchant at once. `sleep` throws instead of waiting, so a call that would have to
 * wait is seen as refused; a long window keeps the counts stable however slow the machine is.
 */
const redis = createRedis(testRedisUrl());
afterAll(() => redis.quit());

const WAIT = new Error('would wait');
function limiter(keyPrefix = `{${testQueuePrefix('lim')}}`) {
  return createRedisRateLimiter(redis, { keyPrefix, limitPerSecond: 3, spLimitPerSecond: 5, inFlightMs: 1000, windowMs: 60_000, sleep: () => Promise.reject(WAIT) });
}
const goes = (l: ReturnType<typeof limiter>, key: LimitKey) => l.run(key, async () => true).catch((e) => (e === WAIT ? false : Promise.reject(e)));

it('When a service provider splits for two sub-merchants, then each sub-merchant gets its own limit and the SP its total, both at once', async () => {
  const l = limiter();
  const SP = '1900000701';
  const seen: boolean[] = [];
  for (const sub of ['1900000801', '1900000801', '1900000801', '1900000801']) seen.push(await goes(l, { mchid: SP, subMchid: sub }));
  // The 4th request of sub 801 is over its 3 per window, although the SP has room (3 of 5).
  expect(seen).toEqual([true, true, true, false]);
  seen.length = 0;
  for (const sub of ['1900000802', '1900000802', '1900000802', '1900000803']) seen.push(await goes(l, { mchid: SP, subMchid: sub }));
  // 802's first two bring the SP to 5: its 3rd (2 of its own 3) and a fresh sub-merchant are over the SP's total.
  expect(seen).toEqual([true, true, false, false]);
  // A direct merchant's key is its mchid alone: counted apart from the SP's partner keys.
  expect([await goes(l, { mchid: SP }), await goes(l, { mchid: SP }), await goes(l, { mchid: SP }), await goes(l, { mchid: SP })]).toEqual([true, true, true, false]);
});

it('When the prefix carries no hash tag, then the two partner keys still share the SP\'s tag (one Redis Cluster slot) and both count', async () => {
  const prefix = testQueuePrefix('notag');
  const l = limiter(prefix);
  expect(await goes(l, { mchid: '1900000701', subMchid: '1900000801' })).toBe(true);
  const keys = (await redis.keys(`${prefix}:split-rate:*`)).sort();
  expect(keys).toEqual([`${prefix}:split-rate:{1900000701}:sp`, `${prefix}:split-rate:{1900000701}:sub:1900000801`]);
  expect(await Promise.all(keys.map((k) => redis.zcard(k)))).toEqual([1, 1]);
});

it('When the channel is a partner account, then its limit key names the SP and the sub-merchant; a direct one only its mchid', () => {
  expect(limitKeyOf({ mchid: '1900000701', partner: { subMchid: '1900000801' } })).toEqual({ mchid: '1900000701', subMchid: '1900000801' });
  expect(limitKeyOf({ mchid: '1900000109' })).toEqual({ mchid: '1900000109' });
});

import { ChannelError } from '../../src/lib/errors';
import { isNotFound, mapHttpError, networkError, retryAfterMsOf, timeoutError } from '../../src/channels/wechatpay/wechatpay.errors';

/** The retryable table (FACTS §5): what the split worker and checkout rely on. */
describe('mapHttpError', () => {
  test.each<[number, { code?: string; message?: string } | undefined, string, boolean]>([
    [500, { code: 'SYSTEM_ERROR', message: '系统异常，请稍后重试' }, 'SYSTEM_ERROR', true],
    [503, undefined, 'HTTP_503', true],
    [502, { code: 'SYSTEM_ERROR' }, 'SYSTEM_ERROR', true],
    [429, { code: 'FREQUENCY_LIMITED', message: '频率超限' }, 'FREQUENCY_LIMITED', true],
    [429, undefined, 'FREQUENCY_LIMITED', true],
    [403, { code: 'FREQUENCY_LIMITED', message: '频率超限' }, 'FREQUENCY_LIMITED', true],
    [400, { code: 'SYSTEM_ERROR', message: '系统异常' }, 'SYSTEM_ERROR', true],
    [408, undefined, 'HTTP_408', true],
    [400, { code: 'INVALID_REQUEST', message: '订单处理中，请稍后重试' }, 'NOT_READY', true],
    [403, { code: 'INVALID_REQUEST', message: '订单处理中，请稍后重试' }, 'NOT_READY', true],
    [400, { code: 'PARAM_ERROR', message: '参数错误' }, 'PARAM_ERROR', false],
    [400, { code: 'INVALID_REQUEST', message: '非分账订单不支持分账' }, 'INVALID_REQUEST', false],
    [400, { code: 'INVALID_REQUEST', message: '请在到达结算周期之后再请求分账' }, 'SETTLEMENT_CYCLE_NOT_REACHED', false],
    [401, { code: 'SIGN_ERROR', message: '签名错误' }, 'SIGN_ERROR', false],
    [403, { code: 'NOT_ENOUGH', message: '分账金额不足' }, 'NOT_ENOUGH', false],
    [403, { code: 'NO_AUTH', message: '无分账权限' }, 'NO_AUTH', false],
    [404, { code: 'RESOURCE_NOT_EXISTS', message: '记录不存在' }, 'RESOURCE_NOT_EXISTS', false],
    [404, { code: 'ORDER_NOT_EXIST', message: '订单不存在' }, 'ORDER_NOT_EXIST', false],
    [400, { code: 'ORDERPAID', message: '订单已支付' }, 'ORDER_PAID', false],
    [400, { code: 'ORDER_PAID', message: '订单已支付' }, 'ORDER_PAID', false],
    [403, { code: 'ORDERPAID', message: '订单已支付，不能关单' }, 'ORDER_PAID', false],
    // WeChat's real text contains 订单处理中 too (issue 7 §4; SKILLS 分账常见问题.md).
    [400, { code: 'INVALID_REQUEST', message: '订单处理中，请在到达结算周期之后再请求分账' }, 'SETTLEMENT_CYCLE_NOT_REACHED', false],
    // wechatpay-go profitsharing error table: 429 RATELIMIT_EXCEED 对同笔订单分账频率过高 — retry later.
    [429, { code: 'RATELIMIT_EXCEED', message: '对同笔订单分账频率过高' }, 'RATELIMIT_EXCEED', true],
    [400, { code: 'RATELIMIT_EXCEED', message: '对同笔订单分账频率过高' }, 'RATELIMIT_EXCEED', true],
    [403, { code: 'RULE_LIMIT', message: '业务规则限制' }, 'RULE_LIMIT', false],
    [418, undefined, 'HTTP_418', false],
  ])('When HTTP %i %j, then %s retryable=%s', (status, body, code, retryable) => {
    const e = mapHttpError(status, body, { requestId: 'R-1', verified: true });
    expect(e).toBeInstanceOf(ChannelError);
    expect([e.code, e.retryable, e.opts.httpStatus]).toEqual([code, retryable, status]);
    expect(retryAfterMsOf(e) !== undefined).toBe(retryable);
  });

  test('When WeChat says not-ready, then the hint is ≥ 1 minute and the original code is kept in detail', () => {
    const e = mapHttpError(400, { code: 'INVALID_REQUEST', message: '订单处理中，请稍后重试' });
    expect(retryAfterMsOf(e)).toBeGreaterThanOrEqual(60_000);
    expect(e.opts.detail).toMatchObject({ channelCode: 'INVALID_REQUEST' });
  });

  test('Network errors and timeouts are retryable; only coded 404s are "not found"', () => {
    expect(networkError(new Error('ECONNRESET'), 'x').retryable).toBe(true);
    expect(timeoutError(100, 'x').retryable).toBe(true);
    expect(isNotFound(mapHttpError(404, { code: 'ORDER_NOT_EXIST' }))).toBe(true);
    expect(isNotFound(mapHttpError(404, undefined))).toBe(false);
    expect(isNotFound(mapHttpError(500, { code: 'ORDER_NOT_EXIST' }))).toBe(false);
  });
});

import { endpointLabel } from '../../src/channels/wechatpay/wechatpay.client';

describe('endpointLabel (metrics label of a WeChat Pay call)', () => {
  it.each([
    ['POST', '/v3/pay/transactions/native', 'POST /v3/pay/transactions/native'],
    ['GET', '/v3/pay/transactions/out-trade-no/T1764666000123', 'GET /v3/pay/transactions/out-trade-no/{id}'],
    ['POST', '/v3/pay/partner/transactions/out-trade-no/abc_DEF-1/close', 'POST /v3/pay/partner/transactions/out-trade-no/{id}/close'],
    ['GET', '/v3/profitsharing/orders/co_x-s1-b2', 'GET /v3/profitsharing/orders/{id}'],
    ['GET', '/v3/profitsharing/transactions/4200000001/amounts', 'GET /v3/profitsharing/transactions/{id}/amounts'],
    ['GET', '/v3/refund/domestic/refunds/rf_1', 'GET /v3/refund/domestic/refunds/{id}'],
    ['GET', '/v3/bill/tradebill', 'GET /v3/bill/tradebill'],
  ])('When %s %s is called, then its label is a template without ids', (method, path, label) => {
    expect(endpointLabel(method, path)).toBe(label);
  });

  it('When an id happens to be all letters, then it still becomes {id} (only known path words are kept)', () => {
    expect(endpointLabel('GET', '/v3/profitsharing/orders/abcdef')).toBe('GET /v3/profitsharing/orders/{id}');
  });
});

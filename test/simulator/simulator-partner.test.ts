import { createSimulator } from '../../src/simulator/app';
import { api, APPID, MCHID, nativeOrder, testKeys, verifyWechatpaySignature } from './sim-helpers';

/** The simulator as a service provider (its mchid = sp_mchid) with two bound sub-merchants. */
const keys = testKeys();
const { app, control } = createSimulator({
  keys,
  notifyUrlPolicy: 'any-no-query',
  partner: { subMerchants: { '1900000801': { subAppids: ['wx00000000000000e5'], maxRatioBp: 2000 }, '1900000802': {} } },
});
const PARTNER_NATIVE = '/v3/pay/partner/transactions/native';
const order = (no: string, extra: Record<string, unknown> = {}) => {
  const { appid, mchid, ...rest } = nativeOrder(no);
  return { sp_appid: appid, sp_mchid: mchid, sub_mchid: '1900000801', ...rest, ...extra };
};

describe('simulator partner (服务商) mode', () => {
  it('When a bound sub-merchant orders, then the order is kept with sp/sub ids and the query answers sp_ and sub_ fields', async () => {
    const r = await api(app, 'POST', PARTNER_NATIVE, order('P00000000001'));
    expect(r.status).toBe(200);
    expect(r.json.code_url).toMatch(/^weixin:\/\//);
    expect(verifyWechatpaySignature(r.headers, r.text, keys.platformPublicKey)).toBe(true);
    expect(control.transaction('P00000000001')).toMatchObject({ mchid: MCHID, appid: APPID, partner: { subMchid: '1900000801' } });
    control.pay('P00000000001');
    const q = await api(app, 'GET', `/v3/pay/partner/transactions/out-trade-no/P00000000001?sp_mchid=${MCHID}&sub_mchid=1900000801`);
    expect(q.json).toMatchObject({ sp_mchid: MCHID, sp_appid: APPID, sub_mchid: '1900000801', trade_state: 'SUCCESS' });
    expect(q.json.mchid).toBeUndefined();
    const n = control.notifyRecords.find((x) => x.ref === 'P00000000001' || JSON.stringify(x).includes('P00000000001'));
    expect(JSON.stringify(n)).toContain('"sub_mchid":"1900000801"');
  });

  test.each([
    ['a sub_mchid not bound to this sp_mchid', { sub_mchid: '1900000999' }, 403, 'NO_AUTH', '受理关系不存在'],
    ['no sub_mchid', { sub_mchid: undefined }, 400, 'PARAM_ERROR', '受理机构必须传入sub_mch_id'],
    ['sub_mchid = sp_mchid', { sub_mchid: MCHID }, 400, 'PARAM_ERROR', '子商户mchid不能与自身mchid相同'],
    ['a sp_appid not bound to the sp', { sp_appid: 'wx99999999999999z9' }, 400, 'APPID_MCHID_NOT_MATCH', 'appid和mch_id不匹配,请检查后再试'],
    ['a sub_appid not bound to the sub-merchant', { sub_appid: 'wx99999999999999z9' }, 400, 'PARAM_ERROR', 'sub_mch_id与sub_appid不匹配'],
    ['a payer.openid (direct field)', { payer: { openid: 'o_x' } }, 400, 'PARAM_ERROR', '参数中含有非法的额外参数'],
  ])('When the body has %s, then WeChat\'s refusal', async (_n, extra, status, code, message) => {
    const r = await api(app, 'POST', PARTNER_NATIVE, order(`P${Date.now()}`, extra));
    expect({ status: r.status, code: r.json?.code, message: r.json?.message }).toEqual({ status, code, message });
  });

  it('When a direct endpoint is called with partner fields, then it is refused', async () => {
    const r = await api(app, 'POST', '/v3/pay/transactions/native', { ...nativeOrder('D00000000001'), sub_mchid: '1900000801' });
    expect({ status: r.status, code: r.json?.code }).toEqual({ status: 400, code: 'PARAM_ERROR' });
  });

  it('When another sub-merchant queries or closes the order, then 子商户号和订单信息不匹配; out_trade_no is unique across the sp', async () => {
    await api(app, 'POST', PARTNER_NATIVE, order('P00000000002'));
    const q = await api(app, 'GET', `/v3/pay/partner/transactions/out-trade-no/P00000000002?sp_mchid=${MCHID}&sub_mchid=1900000802`);
    expect(q.json?.message).toBe('子商户号和订单信息不匹配');
    const c = await api(app, 'POST', '/v3/pay/partner/transactions/out-trade-no/P00000000002/close', { sp_mchid: MCHID, sub_mchid: '1900000802' });
    expect(c.status).toBe(400);
    // The same out_trade_no from the other sub-merchant is a different order body: refused.
    const dup = await api(app, 'POST', PARTNER_NATIVE, order('P00000000002', { sub_mchid: '1900000802' }));
    expect(dup.json?.code).toBe('OUT_TRADE_NO_USED');
    const ok = await api(app, 'POST', '/v3/pay/partner/transactions/out-trade-no/P00000000002/close', { sp_mchid: MCHID, sub_mchid: '1900000801' });
    expect(ok.status).toBe(204);
  });
});

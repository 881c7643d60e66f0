import request from 'supertest';
import { startSimulator, createSimulator } from '../../src/simulator/app';
import { api, authorization, jsapiOrder, MCHID, testKeys, verifyWechatpaySignature } from './sim-helpers';

const keys = testKeys();
const mk = () => createSimulator({ keys, notifyUrlPolicy: 'any-no-query' });
const JSAPI = '/v3/pay/transactions/jsapi';

describe('simulator faults', () => {
  test('When failNext(2) is set for a prefix, then the next 2 matching calls get a signed 500 SYSTEM_ERROR', async () => {
    const { app, control } = mk();
    control.faults.failNext(2, { pathPrefix: '/v3/pay/transactions/jsapi' });
    const q = await api(app, 'GET', `/v3/pay/transactions/out-trade-no/F_00001?mchid=${MCHID}`);
    expect(q.status).toBe(404);
    for (let i = 0; i < 2; i++) {
      const r = await api(app, 'POST', JSAPI, jsapiOrder('F_00001'));
      expect([r.status, r.json.code]).toEqual([500, 'SYSTEM_ERROR']);
      expect(verifyWechatpaySignature(r.headers, r.text, keys.platformPublicKey)).toBe(true);
    }
    expect((await api(app, 'POST', JSAPI, jsapiOrder('F_00001'))).status).toBe(200);
  });

  test('When a fault is set over HTTP with afterProcessing, then the order exists although the answer failed', async () => {
    const { app, control } = mk();
    await request(app).post('/_sim/faults').send({ failNext: { n: 1, status: 503, code: 'SYSTEM_ERROR', afterProcessing: true } });
    const r = await api(app, 'POST', JSAPI, jsapiOrder('F_00002'));
    expect(r.status).toBe(503);
    expect(control.transaction('F_00002')).toBeDefined();
    const again = await api(app, 'POST', JSAPI, jsapiOrder('F_00002'));
    expect(again.json.prepay_id).toMatch(/^wx/);
  });

  test('When failures are injected, then auth still runs first (a bad signature is 401, not 500)', async () => {
    const { app, control } = mk();
    control.faults.failNext(1);
    expect((await api(app, 'GET', `/v3/pay/transactions/out-trade-no/F_00003?mchid=${MCHID}`, undefined, { serial: 'AB'.repeat(20) })).status).toBe(401);
    expect((await api(app, 'GET', `/v3/pay/transactions/out-trade-no/F_00003?mchid=${MCHID}`)).status).toBe(500);
  });

  test('When timeoutNext(1) and latency are set, then the first call hangs and the next is delayed', async () => {
    const sim = await startSimulator({ keys, notifyUrlPolicy: 'any-no-query' });
    try {
      sim.control.faults.timeoutNext(1);
      const url = `/v3/pay/transactions/out-trade-no/F_00004?mchid=${MCHID}`;
      const call = () => fetch(sim.url + url, { headers: { Authorization: authorization(keys, { method: 'GET', url }), Accept: 'application/json' }, signal: AbortSignal.timeout(300) });
      await expect(call()).rejects.toThrow();
      sim.control.faults.latency(150);
      const t0 = Date.now();
      const r = await call().catch(() => fetch(sim.url + url, { headers: { Authorization: authorization(keys, { method: 'GET', url }) } }));
      expect(r.status).toBe(404);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    } finally {
      await sim.close();
    }
  });

  test('When /_sim/calls and /_sim/reset are used, then calls are listed and then cleared with orders', async () => {
    const { app } = mk();
    await api(app, 'POST', JSAPI, jsapiOrder('F_00005'));
    const calls = await request(app).get('/_sim/calls');
    expect(calls.body).toHaveLength(1);
    expect(calls.body[0]).toMatchObject({ method: 'POST', path: JSAPI, status: 200, body: { out_trade_no: 'F_00005' } });
    expect((await request(app).post('/_sim/reset')).status).toBe(204);
    expect((await request(app).get('/_sim/calls')).body).toHaveLength(0);
    expect((await api(app, 'GET', `/v3/pay/transactions/out-trade-no/F_00005?mchid=${MCHID}`)).status).toBe(404);
  });

  test('When an unknown /v3 path is called, then a signed 404', async () => {
    const { app } = mk();
    const r = await api(app, 'GET', '/v3/nothing/here');
    expect(r.status).toBe(404);
    expect(verifyWechatpaySignature(r.headers, r.text, keys.platformPublicKey)).toBe(true);
  });
});

import { X509Certificate } from 'node:crypto';
import request from 'supertest';
import { createSimulator } from '../../src/simulator/app';
import { api, authorization, decryptResource, jsapiOrder, testKeys, verifyWechatpaySignature } from './sim-helpers';

const keys = testKeys();
const mk = () => createSimulator({ keys, notifyUrlPolicy: 'any-no-query' });
const Q = '/v3/pay/transactions/out-trade-no/AUTH_0001?mchid=1900000109';

describe('simulator APIv3 authentication', () => {
  test('When the request is signed correctly, then it passes and the answer verifies with the platform public key', async () => {
    const { app } = mk();
    const r = await api(app, 'GET', Q);
    expect(r.status).toBe(404);
    expect(r.json.code).toBe('ORDER_NOT_EXIST');
    expect(r.headers['wechatpay-serial']).toBe(keys.platformPublicKeyId);
    expect(r.headers['wechatpay-signature-type']).toBe('WECHATPAY2-SHA256-RSA2048');
    expect(r.headers['request-id']).toMatch(/-\d+$/);
    expect(verifyWechatpaySignature(r.headers, r.text, keys.platformPublicKey)).toBe(true);
    expect(verifyWechatpaySignature(r.headers, r.text + ' ', keys.platformPublicKey)).toBe(false);
  });

  test('When Authorization is missing or malformed, then 401 SIGN_ERROR (signed)', async () => {
    const { app } = mk();
    for (const header of [undefined, 'Bearer x', 'WECHATPAY2-SHA256-RSA2048 mchid="1900000109"']) {
      let req = request(app).get(Q);
      if (header) req = req.set('Authorization', header);
      const res = await req;
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('SIGN_ERROR');
      expect(verifyWechatpaySignature(res.headers, res.text, keys.platformPublicKey)).toBe(true);
    }
  });

  test('When the signature covers other bytes (re-serialised body, missing query, other key), then 401', async () => {
    const { app } = mk();
    const body = JSON.stringify(jsapiOrder('AUTH_0002'));
    const pretty = JSON.stringify(jsapiOrder('AUTH_0002'), null, 2);
    // Signed compact, sent pretty: same JSON, different bytes.
    const res1 = await request(app)
      .post('/v3/pay/transactions/jsapi')
      .set('Authorization', authorization(keys, { method: 'POST', url: '/v3/pay/transactions/jsapi', body }))
      .set('Content-Type', 'application/json')
      .send(pretty);
    expect(res1.status).toBe(401);
    // Query string left out of the signed URL.
    const res2 = await request(app).get(Q).set('Authorization', authorization(keys, { method: 'GET', url: Q.split('?')[0]! }));
    expect(res2.status).toBe(401);
    // Signed with the platform key instead of the merchant key.
    const res3 = await api(app, 'GET', Q, undefined, { key: keys.platformPrivateKey });
    expect(res3.status).toBe(401);
  });

  test('When serial_no or mchid is wrong, then 401', async () => {
    const { app } = mk();
    expect((await api(app, 'GET', Q, undefined, { serial: '0'.repeat(40) })).status).toBe(401);
    expect((await api(app, 'GET', Q, undefined, { mchid: '1900000110' })).status).toBe(401);
  });

  test('When the timestamp is 300 s off, then 401; 299 s is accepted', async () => {
    const { app } = mk();
    const now = Math.floor(Date.now() / 1000);
    expect((await api(app, 'GET', Q, undefined, { timestamp: now - 300 })).status).toBe(401);
    expect((await api(app, 'GET', Q, undefined, { timestamp: now + 301 })).status).toBe(401);
    expect((await api(app, 'GET', Q, undefined, { timestamp: now - 290 })).status).toBe(404);
  });

  test('When the body is not JSON or not application/json, then 400 PARAM_ERROR after a valid signature', async () => {
    const { app } = mk();
    expect((await api(app, 'POST', '/v3/pay/transactions/jsapi', '{not json')).json.code).toBe('PARAM_ERROR');
    const body = JSON.stringify(jsapiOrder('AUTH_0003'));
    const res = await request(app)
      .post('/v3/pay/transactions/jsapi')
      .set('Authorization', authorization(keys, { method: 'POST', url: '/v3/pay/transactions/jsapi', body }))
      .set('Content-Type', 'text/plain')
      .send(body);
    expect(res.status).toBe(400);
  });

  test('When the simulator is switched to certificate mode, then answers carry the cert serial and verify with the cert key', async () => {
    const { app, control } = mk();
    control.setSigningMode('certificate');
    const r = await api(app, 'GET', Q);
    const pc = keys.platformCertificate;
    expect(r.headers['wechatpay-serial']).toBe(pc.serial);
    expect(verifyWechatpaySignature(r.headers, r.text, pc.publicKey)).toBe(true);
    expect(verifyWechatpaySignature(r.headers, r.text, keys.platformPublicKey)).toBe(false);
    // The same switch over HTTP.
    const back = await request(app).post('/_sim/signing').send({ mode: 'public-key' });
    expect(back.body.serial).toBe(keys.platformPublicKeyId);
  });

  test('When /v3/certificates is called, then the decrypted certificate has the advertised serial', async () => {
    const { app } = mk();
    const r = await api(app, 'GET', '/v3/certificates');
    expect(r.status).toBe(200);
    const pem = decryptResource(keys.apiv3Key, r.json.data[0].encrypt_certificate);
    const x = new X509Certificate(pem);
    expect(x.serialNumber.toUpperCase()).toBe(r.json.data[0].serial_no);
    expect(x.publicKey.export({ type: 'spki', format: 'pem' })).toBe(keys.platformCertificate.publicKey.export({ type: 'spki', format: 'pem' }));
  });

  test('When a call is made, then ctx.calls records method, path with query, body and status', async () => {
    const { app, ctx } = mk();
    await api(app, 'GET', Q);
    expect(ctx.calls).toHaveLength(1);
    expect(ctx.calls[0]).toMatchObject({ method: 'GET', path: Q, status: 404 });
  });
});

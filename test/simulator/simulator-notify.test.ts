import { createSimulator } from '../../src/simulator/app';
import { api, decryptResource, jsapiOrder, MCHID, notifyReceiver, testKeys, verifyWechatpaySignature } from './sim-helpers';

const keys = testKeys();
const sims: Array<ReturnType<typeof createSimulator>> = [];
const mk = (schedule = [30, 30, 30]) => {
  const s = createSimulator({ keys, notifyUrlPolicy: 'any-no-query', notifyRetryScheduleMs: schedule });
  sims.push(s);
  return s;
};
afterAll(() => sims.forEach((s) => s.control.stop()));

async function paidOrder(sim: ReturnType<typeof mk>, no: string, url: string) {
  const r = await api(sim.app, 'POST', '/v3/pay/transactions/jsapi', jsapiOrder(no, { notify_url: url, attach: 'cart=7', settle_info: { profit_sharing: true } }));
  expect(r.status).toBe(200);
  expect(sim.control.pay(no).ok).toBe(true);
}

describe('simulator payment notify', () => {
  test('When an order is paid, then TRANSACTION.SUCCESS is signed, and decrypts to the transaction', async () => {
    const rx = await notifyReceiver();
    const sim = mk();
    await paidOrder(sim, 'NTF_0001', rx.url);
    await sim.control.waitFor(() => rx.received.length === 1);
    const n = rx.received[0]!;
    expect(n.headers['wechatpay-serial']).toBe(keys.platformPublicKeyId);
    expect(verifyWechatpaySignature(n.headers, n.body, keys.platformPublicKey)).toBe(true);
    const body = JSON.parse(n.body);
    expect(body).toMatchObject({ event_type: 'TRANSACTION.SUCCESS', resource_type: 'encrypt-resource', summary: '支付成功' });
    expect(body.resource).toMatchObject({ original_type: 'transaction', algorithm: 'AEAD_AES_256_GCM', associated_data: 'transaction' });
    expect(body.resource.nonce).toHaveLength(12);
    const tx = JSON.parse(decryptResource(keys.apiv3Key, body.resource));
    expect(tx).toMatchObject({
      mchid: MCHID,
      out_trade_no: 'NTF_0001',
      trade_state: 'SUCCESS',
      trade_type: 'JSAPI',
      attach: 'cart=7',
      amount: { total: 100, payer_total: 100, currency: 'CNY', payer_currency: 'CNY' },
      payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
    });
    expect(tx.transaction_id).toBe(sim.control.transaction('NTF_0001')!.transactionId);
    expect(() => decryptResource('x'.repeat(32), body.resource)).toThrow();
    await sim.control.waitFor(() => sim.control.notifies.length === 1);
    expect(sim.control.notifyRecords[0]!.delivered).toBe(true);
    await rx.close();
  });

  test('When the merchant fails (500, then 201), then retries follow the schedule until 200', async () => {
    const rx = await notifyReceiver((n) => (n === 1 ? 500 : n === 2 ? 201 : 200));
    const sim = mk([40, 80, 80]);
    await paidOrder(sim, 'NTF_0002', rx.url);
    await sim.control.waitFor(() => rx.received.length === 3, 3000);
    await sim.control.waitFor(() => sim.control.notifyRecords[0]!.delivered);
    expect(sim.control.notifies.map((a) => [a.attempt, a.status, a.ok])).toEqual([
      [1, 500, false],
      [2, 201, false],
      [3, 200, true],
    ]);
    const gaps = rx.received.slice(1).map((r, i) => r.at - rx.received[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(35);
    expect(gaps[1]).toBeGreaterThanOrEqual(75);
    // Same event id on each retry.
    expect(new Set(rx.received.map((r) => JSON.parse(r.body).id)).size).toBe(1);
    await new Promise((r) => setTimeout(r, 150));
    expect(rx.received).toHaveLength(3);
    await rx.close();
  });

  test('When the merchant never succeeds, then attempts stop after 1 + schedule length', async () => {
    const rx = await notifyReceiver(() => 503);
    const sim = mk([10, 10]);
    await paidOrder(sim, 'NTF_0003', rx.url);
    await sim.control.waitFor(() => rx.received.length === 3);
    await new Promise((r) => setTimeout(r, 100));
    expect(rx.received).toHaveLength(3);
    expect(sim.control.notifyRecords[0]!.delivered).toBe(false);
    await rx.close();
  });

  test('When duplicates and a SIGNTEST probe are requested, then the probe fails verification and copies arrive concurrently', async () => {
    const rx = await notifyReceiver();
    const sim = mk();
    sim.control.notifyFaults({ duplicate: 2, signTestFirst: true });
    await paidOrder(sim, 'NTF_0004', rx.url);
    // The simulator records an attempt when its answer arrives, which can be after the receiver saw it.
    await sim.control.waitFor(() => rx.received.length === 4 && sim.control.notifies.filter((a) => a.kind === 'real').length === 3);
    const [probe, ...copies] = rx.received;
    expect(String(probe!.headers['wechatpay-signature'])).toMatch(/^WECHATPAY\/SIGNTEST\//);
    expect(verifyWechatpaySignature(probe!.headers, probe!.body, keys.platformPublicKey)).toBe(false);
    for (const c of copies) expect(verifyWechatpaySignature(c.headers, c.body, keys.platformPublicKey)).toBe(true);
    expect(sim.control.notifies.filter((a) => a.kind === 'real').map((a) => a.copy).sort()).toEqual([0, 1, 2]);
    await rx.close();
  });

  test('When notifies are held and released in reverse, then they arrive out of order; a delay postpones the first attempt', async () => {
    const rx = await notifyReceiver();
    const sim = mk();
    sim.control.notifyFaults({ hold: true });
    await paidOrder(sim, 'NTF_0005', rx.url);
    await paidOrder(sim, 'NTF_0006', rx.url);
    await new Promise((r) => setTimeout(r, 50));
    expect(rx.received).toHaveLength(0);
    expect(sim.control.releaseNotifies({ reverse: true })).toBe(2);
    await sim.control.waitFor(() => rx.received.length === 2);
    const order = rx.received.map((r) => JSON.parse(decryptResource(keys.apiv3Key, JSON.parse(r.body).resource)).out_trade_no);
    expect(order).toEqual(['NTF_0006', 'NTF_0005']);

    sim.control.notifyFaults({ hold: false, delayMs: 120 });
    const t0 = Date.now();
    await paidOrder(sim, 'NTF_0007', rx.url);
    await sim.control.waitFor(() => rx.received.length === 3);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(110);
    await rx.close();
  });

  test('When reset, then pending retries are cancelled', async () => {
    const rx = await notifyReceiver(() => 500);
    const sim = mk([60, 60]);
    await paidOrder(sim, 'NTF_0008', rx.url);
    await sim.control.waitFor(() => rx.received.length === 1);
    sim.control.reset();
    await new Promise((r) => setTimeout(r, 200));
    expect(rx.received).toHaveLength(1);
    await rx.close();
  });
});

import { createCipheriv, randomBytes, sign, type KeyObject } from 'node:crypto';
import { checkoutBody, UA, type Harness } from './harness';

/**
 * Notifies built the way WeChat builds them (FACTS §3–§4), independent of src/channels:
 * resource AEAD_AES_256_GCM under the APIv3 key, body signed `ts\nnonce\nbody\n` with the platform key.
 */
export function buildNotify(h: Harness, tx: Record<string, unknown>, o: {
  key?: KeyObject; serial?: string; ts?: number; tamper?: boolean; signature?: string; eventType?: string;
} = {}) {
  const nonce = randomBytes(6).toString('hex'); // 12 chars
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(h.keys.apiv3Key, 'utf8'), Buffer.from(nonce, 'utf8'));
  cipher.setAAD(Buffer.from('transaction', 'utf8'));
  const ct = Buffer.concat([cipher.update(JSON.stringify(tx), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  if (o.tamper) ct[3] ^= 0x01;
  const body = JSON.stringify({
    id: `EV-${randomBytes(8).toString('hex')}`,
    create_time: '2026-11-25T18:00:00+08:00',
    resource_type: 'encrypt-resource',
    event_type: o.eventType ?? 'TRANSACTION.SUCCESS',
    summary: '支付成功',
    resource: { original_type: 'transaction', algorithm: 'AEAD_AES_256_GCM', ciphertext: ct.toString('base64'), associated_data: 'transaction', nonce },
  });
  const ts = String(o.ts ?? Math.floor(Date.now() / 1000));
  const hnonce = randomBytes(16).toString('hex');
  const signature = o.signature ?? sign('sha256', Buffer.from(`${ts}\n${hnonce}\n${body}\n`), o.key ?? h.keys.platformPrivateKey).toString('base64');
  return {
    body,
    headers: {
      'Content-Type': 'application/json',
      'Wechatpay-Timestamp': ts,
      'Wechatpay-Nonce': hnonce,
      'Wechatpay-Signature': signature,
      'Wechatpay-Serial': o.serial ?? h.keys.platformPublicKeyId,
      'Wechatpay-Signature-Type': 'WECHATPAY2-SHA256-RSA2048',
    },
  };
}


/** A checkout with a Native channel order, as a desktop shopper leaves it, and the transaction WeChat would notify. */
export async function openNativeCheckout(h: Harness, amount = 1999) {
  const c = await h.api('post', '/v1/checkouts').send(checkoutBody({ amount })).expect(201);
  await h.http().get(`/checkout/${c.body.id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
  const order = await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: c.body.id } });
  const tx = {
    mchid: h.config.WECHATPAY_MCHID, appid: h.config.WECHATPAY_APPID, out_trade_no: order.outTradeNo,
    transaction_id: `4200${Date.now()}${Math.floor(Math.random() * 1e6)}`, trade_type: 'NATIVE', trade_state: 'SUCCESS',
    trade_state_desc: '支付成功', bank_type: 'OTHERS', attach: '', success_time: '2026-11-25T18:00:00+08:00',
    payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' }, amount: { total: amount, payer_total: amount, currency: 'CNY', payer_currency: 'CNY' },
  };
  return { id: c.body.id as string, order, tx };
}

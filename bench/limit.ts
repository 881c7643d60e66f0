/**
 * The "limit" of `npm run bench`: a bare node:http process doing only the work a path cannot avoid,
 * on the same PostgreSQL as the gateway, so the gateway's figure can be read as a share of it. The
 * issue's two definitions (checkout, notify) and, built from the same parts, one per scenario:
 *   POST /create         1 insert (the checkout)
 *   GET  /page-h5/{id}   1 RSA-2048 sign (the order request) + 1 verify (WeChat's answer) + 1 insert (the channel order)
 *   GET  /page-jsapi/{id} the same + 1 sign (paySign)
 *   POST /checkout       one full checkout = create + JSAPI page: 2 signs + 1 verify + 2 inserts
 *   POST /notify         one notify: 1 verify + AES-256-GCM decrypt + the raw notify stored + one
 *                        statement that moves the checkout open -> paid and inserts its outbox row
 *                        (into limit_outbox_events, outbox_events' twin, which no worker reads)
 *                        (a replayed notify does the same work; its update moves nothing)
 * Not in the limit, as in the issue's definition: reading the checkout for a page, the HTTP call to
 * WeChat (the simulator's side), rendering HTML. So page ratios are conservative.
 * Env: DATABASE_URL, KEYS_DIR, MERCHANT_ID. Prints the URL on its first line.
 */
import { createDecipheriv, createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Pool } from 'pg';

const env = process.env;
const dir = env.KEYS_DIR!;
const merchantId = env.MERCHANT_ID!;
const merchantKey = createPrivateKey(readFileSync(join(dir, 'merchant_private_key.pem')));
const platformPub = createPublicKey(readFileSync(join(dir, 'platform_public_key.pem')));
const apiv3 = Buffer.from(readFileSync(join(dir, 'apiv3_key'), 'utf8').trim(), 'utf8');
// A signed answer as WeChat sends it, verified once per checkout like the gateway verifies every answer.
const answer = Buffer.from(`${Math.floor(Date.now() / 1000)}\n${randomBytes(16).toString('hex')}\n{"prepay_id":"wx201410272009395522657a690389285100"}\n`);
const answerSig = sign('sha256', answer, createPrivateKey(readFileSync(join(dir, 'platform_private_key.pem'))));
const pool = new Pool({ connectionString: env.DATABASE_URL, max: 10 });
const id = (p: string) => `${p}_${randomBytes(10).toString('hex')}`;
// The outbox row goes to a table of the same shape (indexes, defaults) that no worker reads: rows in
// outbox_events would be handled by the gateway's outbox worker during its next scenarios.
const ready = pool.query('CREATE TABLE IF NOT EXISTS limit_outbox_events (LIKE outbox_events INCLUDING ALL)');

const readBody = (req: IncomingMessage) =>
  new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
  });

async function create(input: { out_trade_no: string; amount: number; description: string; payer?: { openid: string } }): Promise<string> {
  const coId = id('co');
  await pool.query({
    name: 'ins_co',
    text: `INSERT INTO checkouts (id, merchant_id, out_trade_no, amount_fen, description, payer_openid, expires_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, now() + interval '2 hours', now())`,
    values: [coId, merchantId, input.out_trade_no, input.amount, input.description, input.payer?.openid ?? null],
  });
  return coId;
}

/** A page's unavoidable work: the order signed for WeChat, its answer verified, the order stored (+ paySign for JSAPI). */
async function page(coId: string, tradeType: 'H5' | 'JSAPI', openid = ''): Promise<{ auth: number; paySign?: string }> {
  const orderBody = JSON.stringify({ appid: 'wx', mchid: '1', description: 'bench', out_trade_no: coId, amount: { total: 100 }, ...(openid ? { payer: { openid } } : {}) });
  const auth = sign('sha256', Buffer.from(`POST\n/v3/pay/transactions/${tradeType.toLowerCase()}\n${Math.floor(Date.now() / 1000)}\n${randomBytes(16).toString('hex')}\n${orderBody}\n`), merchantKey);
  if (!verify('sha256', answer, platformPub, answerSig)) throw new Error('answer signature');
  const paySign = tradeType === 'JSAPI' ? sign('sha256', Buffer.from(`wx\n${Date.now()}\n${randomBytes(16).toString('hex')}\nprepay_id=wx2014\n`), merchantKey) : undefined;
  await pool.query({
    name: 'ins_ord',
    text: `INSERT INTO channel_orders (id, checkout_id, channel, trade_type, out_trade_no, payer_key, appid, mchid, prepay_id, credential_at, updated_at)
           VALUES ($1, $2, 'wechatpay', $3, $4, $5, 'wx', '1', 'wx2014', now(), now())`,
    values: [id('chor'), coId, tradeType, `${coId.slice(3)}_${tradeType[0]}`, openid],
  });
  return { auth: auth.length, paySign: paySign?.toString('base64') };
}

async function notify(req: IncomingMessage, body: Buffer): Promise<void> {
  const h = (n: string) => String(req.headers[n] ?? '');
  const ok = verify('sha256', Buffer.from(`${h('wechatpay-timestamp')}\n${h('wechatpay-nonce')}\n${body.toString('utf8')}\n`), platformPub, Buffer.from(h('wechatpay-signature'), 'base64'));
  if (!ok) throw new Error('bad signature');
  const r = (JSON.parse(body.toString('utf8')) as { resource: { ciphertext: string; nonce: string; associated_data: string } }).resource;
  const ct = Buffer.from(r.ciphertext, 'base64');
  const d = createDecipheriv('aes-256-gcm', apiv3, Buffer.from(r.nonce, 'utf8'));
  d.setAAD(Buffer.from(r.associated_data, 'utf8'));
  d.setAuthTag(ct.subarray(ct.length - 16));
  const tx = JSON.parse(Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]).toString('utf8')) as { out_trade_no: string; transaction_id: string };
  await pool.query({
    name: 'ins_ntf',
    text: `INSERT INTO notify_logs (id, channel, kind, headers, body, outcome) VALUES ($1, 'wechatpay', 'payment', $2, $3, 'received')`,
    values: [id('ntf'), JSON.stringify({ 'wechatpay-serial': h('wechatpay-serial') }), body.toString('utf8')],
  });
  await pool.query({
    name: 'apply',
    text: `WITH moved AS (
             UPDATE checkouts SET status = 'paid', transaction_id = $3, paid_at = now(), updated_at = now()
             WHERE merchant_id = $1 AND out_trade_no = $2 AND status = 'open' RETURNING id)
           INSERT INTO limit_outbox_events (type, aggregate_id, payload) SELECT 'payment.succeeded', id, '{}'::jsonb FROM moved`,
    values: [merchantId, tx.out_trade_no, tx.transaction_id],
  });
}

const json = (body: Buffer) => JSON.parse(body.toString('utf8')) as { out_trade_no: string; amount: number; description: string; payer?: { openid: string } };

const server = createServer((req, res) => {
  readBody(req)
    .then(async (body) => {
      const [, route, coId] = (req.url ?? '').split('/');
      const ok = (status: number, out?: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(out === undefined ? undefined : JSON.stringify(out));
      if (route === 'create') ok(201, { id: await create(json(body)) });
      else if (route === 'page-h5' && coId) ok(200, await page(coId, 'H5'));
      else if (route === 'page-jsapi' && coId) ok(200, await page(coId, 'JSAPI', 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o'));
      else if (route === 'checkout') {
        const input = json(body);
        const created = await create(input);
        ok(201, { id: created, ...(await page(created, 'JSAPI', input.payer?.openid)) });
      } else if (route === 'notify') {
        await notify(req, body);
        ok(204);
      } else ok(404);
    })
    .catch((err: unknown) => res.writeHead(500).end(String(err)));
});
void ready.then(() =>
  server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    process.stdout.write(`http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}\n`);
  }),
);
process.on('SIGTERM', () => server.close(() => void pool.end().then(() => process.exit(0))));

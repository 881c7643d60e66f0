/**
 * The merchant's side of bench/webhooks.ts, in its own process: verifies every delivery with the
 * `standardwebhooks` package (as a merchant would), answers 200, and reports (webhook-id, receipt
 * time) to the parent over IPC in small batches. Env: SECRET (whsec_…). Sends {port} when listening.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

const wh = new Webhook(process.env.SECRET!);
let pending: Array<[string, number, boolean]> = [];
const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    let ok = true;
    try {
      wh.verify(body, req.headers as Record<string, string>);
    } catch {
      ok = false;
    }
    pending.push([String(req.headers['webhook-id']), Date.now(), ok]);
    res.writeHead(ok ? 200 : 400).end();
  });
});
setInterval(() => {
  if (!pending.length) return;
  process.send!({ got: pending });
  pending = [];
}, 20).unref();
server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
process.on('disconnect', () => process.exit(0));

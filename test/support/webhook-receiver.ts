import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Got {
  headers: http.IncomingHttpHeaders;
  body: string;
  /** What the receiver answered ('hang': nothing). */
  answered: number | 'hang';
  json: { id: string; type: string; created: string; data: { object: Record<string, unknown> } };
}

/** A merchant's webhook receiver on a free loopback port; `answer` decides per request. */
export async function startReceiver(answer: (n: number, got: Got) => number | 'hang' = () => 200) {
  const got: Got[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const g: Got = { headers: req.headers, body, answered: 200, json: JSON.parse(body) };
      g.answered = answer(got.length, g);
      got.push(g);
      if (g.answered === 'hang') return;
      res.writeHead(g.answered, { 'content-type': 'text/plain' }).end(g.answered < 300 ? 'ok' : 'not now');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    got,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

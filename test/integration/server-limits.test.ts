import { connect, type Socket } from 'node:net';
import { startGateway, type Gateway } from '../../src/gateway';
import { startHarness, type Harness } from '../support/harness';

/** Issue 8 §6: slow clients are cut off by the gateway's own server, not after Node's 300 s. */
let h: Harness;
let gw: Gateway;
beforeAll(async () => {
  h = await startHarness();
  gw = await startGateway({
    ...h.config, PORT: 0, RUN_WORKERS: false,
    HTTP_HEADERS_TIMEOUT_MS: 1000, HTTP_REQUEST_TIMEOUT_MS: 2000, HTTP_KEEP_ALIVE_TIMEOUT_MS: 1000, HTTP_MAX_CONNECTIONS: 3,
  }, h.deps);
});
afterAll(async () => {
  // Not gw.close(): the harness owns the database and Redis clients.
  gw?.server.closeAllConnections();
  await new Promise((r) => gw?.server.close(r));
  await h?.close();
});

const port = () => (gw.server.address() as { port: number }).port;

/** Opens a connection, writes `text`, and resolves with what the server sent and when it closed. */
function slowClient(text: string): Promise<{ data: string; closedAfterMs: number; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let data = '';
    const socket = connect(port(), '127.0.0.1', () => socket.write(text));
    socket.on('data', (d) => (data += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ data, closedAfterMs: Date.now() - started, socket }));
    setTimeout(() => reject(new Error('the server kept the slow connection open for 20 s')), 20_000).unref();
  });
}

it('When a client never finishes its headers, then the server answers 408 and closes within seconds', async () => {
  const r = await slowClient('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n');
  expect(r.data).toMatch(/^HTTP\/1\.1 408/);
}, 25_000);

it('When a client sends its body too slowly, then the server answers 408 and closes within seconds', async () => {
  const r = await slowClient('POST /v1/checkouts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":');
  expect(r.data).toMatch(/^HTTP\/1\.1 408/);
}, 25_000);

it('When more connections than HTTP_MAX_CONNECTIONS are open, then the extra one is dropped', async () => {
  const held: Socket[] = [];
  for (let i = 0; i < 3; i++)
    held.push(await new Promise<Socket>((res) => { const s = connect(port(), '127.0.0.1', () => res(s)); s.on('error', () => undefined); }));
  try {
    await new Promise((r) => setTimeout(r, 200)); // let the server count them
    const extra = await slowClient('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(extra.data).toBe('');
  } finally {
    for (const s of held) s.destroy();
  }
}, 25_000);

it('The configured values are on the server', () => {
  expect(gw.server.headersTimeout).toBe(1000);
  expect(gw.server.requestTimeout).toBe(2000);
  expect(gw.server.keepAliveTimeout).toBe(1000);
  expect(gw.server.maxConnections).toBe(3);
});

import fc from 'fast-check';
import { API_KEY, checkoutBody, startHarness, UA, type Harness } from '../support/harness';
import { paidCheckout } from '../integration/split-support';
import {
  assertProperty, checkoutish, contentEncoding, FC_RANDOM_MS, fieldValue, headerValue, nastyJson, nastyString, receiverish, wireBody,
} from '../support/property';
import { REJECTED_BODY_BYTES } from '../../src/modules/payments/notify.intake';

/**
 * Issue 8 "Proof that stays": whatever arrives at the merchant API, the notify endpoint or the
 * shopper pages, the answer is never a 5xx; a refusal is a 4xx with a code (or the error page for a
 * browser) and writes nothing. Bytes go over a real socket (fetch), so encodings and raw bytes are
 * exactly what a client could send. Idempotency records are not counted: a refused request with a
 * key stores its 4xx answer by design (README "Idempotency").
 */
jest.setTimeout(120_000 + FC_RANDOM_MS * 4);

let h: Harness;
let openId: string;
let paidId: string;
beforeAll(async () => {
  h = await startHarness();
  openId = (await h.api('post', '/v1/checkouts').send(checkoutBody({ profit_sharing: { mode: 'on_demand' } })).expect(201)).body.id;
  paidId = (await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } })).id;
});
afterAll(async () => h?.close());

interface Counts { checkouts: number; orders: number; splits: number; batches: number; receivers: number; outbox: number; notifies: number }
const counts = async (): Promise<Counts> => {
  const [r] = await h.db.prisma.$queryRaw<Array<Record<keyof Counts, bigint>>>`SELECT
    (SELECT count(*) FROM checkouts) AS checkouts, (SELECT count(*) FROM channel_orders) AS orders,
    (SELECT count(*) FROM splits) AS splits, (SELECT count(*) FROM split_batches) AS batches,
    (SELECT count(*) FROM split_receivers) AS receivers, (SELECT count(*) FROM outbox_events) AS outbox,
    (SELECT count(*) FROM notify_logs) AS notifies`;
  return Object.fromEntries(Object.entries(r!).map(([k, v]) => [k, Number(v)])) as unknown as Counts;
};

interface Answer { status: number; text: string; json: unknown; type: string }
async function send(method: string, path: string, headers: Record<string, string | undefined>, body?: string | Buffer): Promise<Answer> {
  const clean = Object.fromEntries(Object.entries(headers).filter((e): e is [string, string] => e[1] !== undefined));
  const res = await fetch(h.gatewayUrl + path, { method, headers: clean, body: method === 'GET' ? undefined : body, redirect: 'manual' });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, type: res.headers.get('content-type') ?? '' };
}

const describeAnswer = (a: Answer) => `${a.status} ${a.type} ${a.text.slice(0, 300)}`;
const errorCode = (a: Answer) => (a.json as { error?: { code?: unknown } } | undefined)?.error?.code;
/** Moneyless tables may change on a refusal: notify_logs (checked by the notify property itself). */
const moneyRows = (c: Counts) => ({ ...c, notifies: 0 });

function expectRefusalOrSuccess(a: Answer, before: Counts, after: Counts) {
  if (a.status >= 500) throw new Error(`5xx: ${describeAnswer(a)}`);
  if (a.status >= 400) {
    if (typeof errorCode(a) !== 'string') throw new Error(`4xx without error.code: ${describeAnswer(a)}`);
    expect(moneyRows(after)).toEqual(moneyRows(before));
  }
}

/** A path segment: a real id, or anything (malformed %-escapes included). */
const segment = (ids: () => string[]) => fc.oneof(
  fc.constantFrom(0, 1).map((i) => ids()[i]!),
  nastyString.map((s) => {
    try {
      return encodeURIComponent(s);
    } catch {
      return '%ED%A0%80'; // a lone surrogate has no UTF-8: send its bytes' escape instead
    }
  }),
  fc.constantFrom('%E0%A4%A', '%', '%00', 'co_%00', '..%2F..', 'co_00000000000000000000'),
);
const query = fc.oneof(
  fc.dictionary(fc.constantFrom('out_trade_no', 'status', 'limit', 'starting_after', 'x', 'waiting', 'code', 'state'), nastyString, { maxKeys: 4 })
    .map((d) => `?${new URLSearchParams(d as Record<string, string>).toString().replace(/%EF%BF%BD/g, '%ED%A0%80')}`),
  fc.constantFrom('', '?limit=1e400', '?limit=-1', '?limit=0x10', '?out_trade_no=%00', '?status[]=open', '?a=%E0%A4%A', '?waiting=1'),
);

it('Merchant API: arbitrary bodies, numbers, strings, headers and encodings never get a 5xx, and a refusal writes nothing', async () => {
  const route = fc.oneof(
    fc.constant({ method: 'POST', path: () => '/v1/checkouts', body: checkoutish }),
    fc.tuple(segment(() => [openId, paidId])).map(([id]) => ({ method: 'POST', path: () => `/v1/checkouts/${id}/splits`, body: fc.oneof(fc.record({ receivers: fieldValue(fc.array(receiverish, { maxLength: 3 })) }, { requiredKeys: [] }), nastyJson) })),
    fc.tuple(segment(() => [openId, paidId])).map(([id]) => ({ method: 'PUT', path: () => `/v1/checkouts/${id}/split-plan`, body: fc.oneof(fc.record({ receivers: fieldValue(fc.array(receiverish, { maxLength: 3 })) }, { requiredKeys: [] }), nastyJson) })),
    fc.tuple(segment(() => [openId, paidId])).map(([id]) => ({ method: 'POST', path: () => `/v1/checkouts/${id}/splits/finish`, body: fc.oneof(fc.record({ description: fieldValue(fc.constant('完结')) }, { requiredKeys: [] }), nastyJson) })),
    // Close only the paid one (a 409) or garbage: closing the open one would change what the other runs see.
    fc.tuple(segment(() => [paidId, paidId])).map(([id]) => ({ method: 'POST', path: () => `/v1/checkouts/${id}/close`, body: nastyJson })),
    fc.tuple(query).map(([q]) => ({ method: 'GET', path: () => `/v1/checkouts${q}`, body: fc.constant(undefined) })),
    fc.tuple(segment(() => [openId, paidId])).map(([id]) => ({ method: 'GET', path: () => `/v1/checkouts/${id}`, body: fc.constant(undefined) })),
  );
  const request = route.chain((r) => fc.record({
    method: fc.constant(r.method),
    path: fc.constant(r.path()),
    body: wireBody(r.body),
    contentType: fc.oneof({ weight: 3, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: headerValue }),
    encoding: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: contentEncoding }),
    auth: fc.oneof({ weight: 5, arbitrary: fc.constant(`Bearer ${API_KEY}`) }, { weight: 1, arbitrary: headerValue }),
    idempotencyKey: fc.option(headerValue, { nil: undefined }),
  }));
  await assertProperty(fc.asyncProperty(request, async (q) => {
    const before = await counts();
    const a = await send(q.method, q.path, {
      'Content-Type': q.contentType || undefined, 'Content-Encoding': q.encoding || undefined, Authorization: q.auth || undefined, 'Idempotency-Key': q.idempotencyKey,
    }, q.body);
    expectRefusalOrSuccess(a, before, await counts());
  }), 150);
});

it('Notify endpoint: arbitrary bodies and header combinations are refused 4xx with a code, never 5xx, leaving only a small rejected log row', async () => {
  const notifyShape = fc.record({
    id: fieldValue(fc.constant('EV-1')), event_type: fieldValue(fc.constant('TRANSACTION.SUCCESS')), resource_type: fieldValue(fc.constant('encrypt-resource')),
    resource: fieldValue(fc.record({ algorithm: fieldValue(fc.constant('AEAD_AES_256_GCM')), ciphertext: fieldValue(fc.base64String()), nonce: fieldValue(fc.constant('123456789012')), associated_data: fieldValue(fc.constant('transaction')) }, { requiredKeys: [] })),
  }, { requiredKeys: [] });
  const request = fc.record({
    body: wireBody(fc.oneof(notifyShape, nastyJson)),
    timestamp: fc.option(fc.oneof(fc.constant(String(Math.floor(Date.now() / 1000))), headerValue), { nil: undefined }),
    nonce: fc.option(headerValue, { nil: undefined }),
    serial: fc.option(fc.oneof(fc.constant(h.keys.platformPublicKeyId), headerValue), { nil: undefined }),
    signature: fc.option(fc.oneof(fc.base64String({ minLength: 344, maxLength: 344 }), fc.constant('WECHATPAY/SIGNTEST/abc'), headerValue), { nil: undefined }),
    contentType: fc.option(headerValue, { nil: undefined }),
    encoding: contentEncoding,
  });
  await assertProperty(fc.asyncProperty(request, async (q) => {
    const before = await counts();
    const a = await send('POST', '/notify/wechatpay/transactions', {
      'Content-Type': q.contentType || undefined, 'Content-Encoding': q.encoding || undefined, 'Wechatpay-Timestamp': q.timestamp || undefined,
      'Wechatpay-Nonce': q.nonce || undefined, 'Wechatpay-Serial': q.serial || undefined, 'Wechatpay-Signature': q.signature || undefined,
    }, q.body);
    if (a.status < 400 || a.status >= 500) throw new Error(`not a 4xx: ${describeAnswer(a)}`);
    const code = (a.json as { code?: unknown } | undefined)?.code ?? errorCode(a);
    if (typeof code !== 'string') throw new Error(`no code: ${describeAnswer(a)}`);
    const after = await counts();
    expect(moneyRows(after)).toEqual(moneyRows(before));
    expect(after.notifies - before.notifies).toBeLessThanOrEqual(1);
    if (after.notifies > before.notifies) {
      const last = await h.db.prisma.notifyLog.findFirstOrThrow({ orderBy: { receivedAt: 'desc' } });
      expect(last.outcome).toBe('rejected');
      expect(Buffer.byteLength(last.body)).toBeLessThanOrEqual(REJECTED_BODY_BYTES + 5 * 64); // NULs stored as \u0000
    }
  }), 100);
});

it('Shopper pages: any path, query, user agent, Accept and cookie get a page or a JSON error, never a 5xx; unknown checkouts write nothing', async () => {
  const request = fc.record({
    seg: segment(() => [openId, paidId]),
    sub: fc.constantFrom('', '/result', '/status', '/oauth/callback'),
    q: query,
    ua: fc.oneof(fc.constantFrom(...Object.values(UA)), headerValue),
    accept: fc.oneof(fc.constantFrom('text/html', 'application/json', '*/*', 'text/html,application/json;q=0.9', 'application/json;q=0.1, text/html', 'image/png'), headerValue),
    cookie: fc.option(fc.oneof(fc.constant('wxoid=x.y.z; wxos=abc'), headerValue), { nil: undefined }),
  });
  await assertProperty(fc.asyncProperty(request, async (q) => {
    const before = await counts();
    const a = await send('GET', `/checkout/${q.seg}${q.sub}${q.q}`, { 'User-Agent': q.ua || undefined, Accept: q.accept || undefined, Cookie: q.cookie || undefined });
    if (a.status >= 500) throw new Error(`5xx: ${describeAnswer(a)}`);
    if (a.status >= 400) {
      // A browser gets one of our pages; anything else gets a JSON error with a code.
      if (!/text\/html/.test(a.type) && typeof errorCode(a) !== 'string') throw new Error(`4xx that is neither a page nor a coded error: ${describeAnswer(a)}`);
      expect(moneyRows(await counts())).toEqual(moneyRows(before));
    }
    if (q.seg !== openId && q.seg !== paidId) expect(moneyRows(await counts())).toEqual(moneyRows(before));
  }), 120);
});

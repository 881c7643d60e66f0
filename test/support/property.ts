import fc from 'fast-check';

/**
 * Property runs: a fixed seed (FC_SEED, reproducible in CI and locally) for the given number of runs,
 * then, when FC_RANDOM_MS > 0 (CI sets a few seconds), random seeds until that time is up. fast-check
 * prints the seed and path of any failure, so a random find can be replayed with FC_SEED.
 */
export const FC_SEED = Number(process.env.FC_SEED ?? 20_261_202);
export const FC_RANDOM_MS = Number(process.env.FC_RANDOM_MS ?? 0);

export async function assertProperty<T>(prop: fc.IAsyncPropertyWithHooks<T>, numRuns: number): Promise<void> {
  await fc.assert(prop, { seed: FC_SEED, numRuns });
  if (FC_RANDOM_MS > 0) await fc.assert(prop, { numRuns: 1_000_000, interruptAfterTimeLimit: FC_RANDOM_MS, markInterruptAsFailure: false });
}

/** Characters that break things: every control class, lone surrogates, BOM, bidi and zero-width marks, astral, markup. */
const nastyChar = fc.oneof(
  fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0x7f, max: 0x9f }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
  fc.constantFrom('\ufeff', '\u200b', '\u200d', '\u202e', '\u2028', '\u2029', '\ufffe', '\uffff', '\u0301', '😀', '𠮷', '中', 'Ａ', '<', '>', '"', "'", '\\', '&', '%', '/', ' '),
);

export const nastyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.string({ unit: nastyChar, maxLength: 16 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.constantFrom('', ' ', 'a'.repeat(129), '中'.repeat(128), '𠮷'.repeat(65), 'null', '0', '-1', 'https://shop.example/return', 'javascript:alert(1)', 'co_00000000000000000000'),
);

export const boundaryNumber = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 59, 60, 2 ** 31 - 1, 2 ** 31, 2 ** 32, -(2 ** 31), 2 ** 53 - 1, 2 ** 53, 1e10, 1e21, 0.5, 1.0000001, Number.MAX_VALUE, Number.MIN_VALUE, 7 * 24 * 3600 + 1),
  fc.integer(),
  fc.double(),
);

/** Any JSON value built from the nasty strings and boundary numbers. */
export const nastyJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, nastyString, boundaryNumber, fc.boolean(), fc.constant(null), tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(nastyString, tie('value'), { maxKeys: 4 }),
})).value;

/** A value that is often right and often wrong for a field. */
export const fieldValue = <T>(good: fc.Arbitrary<T>) => fc.oneof(good, good, nastyString, boundaryNumber, nastyJson);

export const receiverish = fc.record({
  type: fieldValue(fc.constantFrom('MERCHANT_ID', 'PERSONAL_OPENID')),
  account: fieldValue(fc.constantFrom('1900000109', 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o')),
  name: fieldValue(fc.constant('分账接收方有限公司')),
  amount: fieldValue(fc.integer({ min: 1, max: 1000 })),
  description: fieldValue(fc.constant('分给商户')),
  relation_type: fieldValue(fc.constantFrom('PARTNER', 'CUSTOM', 'SUPPLIER')),
  custom_relation: fieldValue(fc.constant('合作')),
}, { requiredKeys: [] });

export const checkoutish = fc.oneof(
  fc.record({
    out_trade_no: fieldValue(fc.stringMatching(/^[0-9A-Za-z_\-|*@.]{1,64}$/)),
    amount: fieldValue(fc.integer({ min: 1, max: 2 ** 31 - 1 })),
    currency: fieldValue(fc.constant('CNY')),
    description: fieldValue(fc.constant('测试商品')),
    return_url: fieldValue(fc.webUrl()),
    expires_in: fieldValue(fc.integer({ min: 60, max: 7 * 24 * 3600 })),
    payer: fieldValue(fc.record({ openid: fieldValue(fc.constant('oUpF8uMuAJO_M2pxb1Q9zNjWeS6o')) }, { requiredKeys: [] })),
    attach: fieldValue(fc.constant('attach')),
    profit_sharing: fieldValue(fc.record({
      mode: fieldValue(fc.constantFrom('planned', 'on_demand')),
      receivers: fieldValue(fc.array(receiverish, { maxLength: 3 })),
    }, { requiredKeys: [] })),
  }, { requiredKeys: [] }),
  nastyJson,
);

/** Header values a client can actually send (Node refuses the rest before the wire). */
export const headerValue = fc.oneof(
  fc.stringMatching(/^[\x20-\x7e]{0,40}$/),
  fc.constantFrom('', 'application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '*/*'),
);
export const contentEncoding = fc.constantFrom(undefined, 'identity', 'gzip', 'br', 'deflate', 'gzip, br', 'x-unknown', '');

/** The body as bytes on the wire: JSON text, raw bytes, or nothing. */
export const wireBody = (json: fc.Arbitrary<unknown>) => fc.oneof(
  { weight: 4, arbitrary: json.map((v) => JSON.stringify(v) ?? '') },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constant('') },
);

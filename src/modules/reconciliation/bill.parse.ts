/**
 * Reads WeChat Pay bill files (trade bill, profit-sharing bill) by header NAME, never by position:
 * the channel has added columns before (应结订单金额/代金券金额) and the profit-sharing bill's domestic
 * columns are unconfirmed. Format (FACTS-partner-bills.md §2.6): optional UTF-8 BOM, CRLF or LF,
 * header lines without backticks, every detail/summary field prefixed with a backtick, no quoting.
 */

export interface ParsedBill {
  header: string[];
  rows: Array<Record<string, string>>;
  summaryHeader: string[];
  summary: Record<string, string> | null;
}

export class BillFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BillFormatError';
  }
}

const BOM = [0xef, 0xbb, 0xbf];
const LF = 0x0a;
const BACKTICK = 0x60;
/** The field separator of detail and summary lines. */
const SEP = Buffer.from(',`');

/** The name as the channel may print it: ASCII or full-width parentheses. */
const spellings = (n: string) => [n, n.replace(/\(/g, '（').replace(/\)/g, '）')];

/**
 * Parses a bill line by line from its bytes. With `keep` (column names), detail rows hold only those
 * columns, each decoded from the bytes on its own: a row then retains ~0.3 KB instead of the whole
 * line's text and every field (~2.7 KB), which is what lets a day of hundreds of thousands of lines be
 * matched within the gateway's heap cap. Every line's field count is still checked against its header.
 */
export function parseBill(input: string | Buffer, keep?: readonly string[]): ParsedBill {
  const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const kept = keep ? new Set(keep.flatMap(spellings)) : null;
  let pos = BOM.every((b, k) => buf[k] === b) ? BOM.length : 0;
  let lineNo = 0;
  let header: string[] | null = null;
  let keepAt: number[] = [];
  const rows: Array<Record<string, string>> = [];
  const short = shortValues();
  let summaryHeader: string[] = [];
  let summary: Record<string, string> | null = null;
  while (pos < buf.length) {
    const lf = buf.indexOf(LF, pos);
    const start = pos;
    let end = lf === -1 ? buf.length : lf;
    pos = end + 1;
    lineNo++;
    if (end > start && buf[end - 1] === 0x0d) end--;
    const bt = buf.indexOf(BACKTICK, start);
    // A header line is the only kind without a backtick; the first line must be one. Only such a line
    // can be blank (any whitespace, U+3000 and NBSP too), so only it is decoded whole.
    const names = bt === -1 || bt >= end ? buf.toString('utf8', start, end) : null;
    if (names !== null && names.trim() === '') continue;
    if (header === null) {
      if (names === null) throw new BillFormatError('the bill does not start with a header line');
      header = headerOf(names);
      keepAt = header.flatMap((h, k) => (kept === null || kept.has(h) ? [k] : []));
    } else if (summaryHeader.length === 0) {
      if (names !== null) summaryHeader = headerOf(names);
      else rows.push(record(buf, start, end, header, keepAt, lineNo, short));
    } else if (summary === null) {
      summary = record(buf, start, end, summaryHeader, summaryHeader.map((_, k) => k), lineNo, short);
    } else throw new BillFormatError(`unexpected line ${lineNo} after the summary`);
  }
  if (header === null) throw new BillFormatError('empty bill');
  return { header, rows, summaryHeader, summary };
}

const headerOf = (line: string) => line.split(',').map((h) => h.trim());

/** "`a,`b,`" → {…} of the columns at `keepAt`; a field may not itself contain ",`" (WeChat never writes one). */
function record(buf: Buffer, start: number, end: number, header: string[], keepAt: number[], lineNo: number, short: (v: string) => string): Record<string, string> {
  const bounds: number[] = [];
  let p = buf[start] === BACKTICK ? start + 1 : start;
  for (;;) {
    bounds.push(p);
    const q = buf.indexOf(SEP, p);
    if (q === -1 || q >= end) break;
    p = q + SEP.length;
  }
  const count = bounds.length;
  if (count !== header.length) throw new BillFormatError(`line ${lineNo} has ${count} fields, its header ${header.length}`);
  bounds.push(end + SEP.length);
  const r: Record<string, string> = {};
  for (const k of keepAt) r[header[k]!] = short(buf.toString('utf8', bounds[k]!, bounds[k + 1]! - SEP.length).trim());
  return r;
}

/**
 * Short values repeat from line to line (SUCCESS, 0.00, an empty refund column, the usual fees): a
 * bill keeps one copy of each (a quarter of a lean row's memory). Bounded: a bill of unique values
 * cannot grow it past 10,000 entries.
 */
function shortValues(): (v: string) => string {
  const seen = new Map<string, string>();
  return (v) => {
    if (v.length > 12) return v;
    const s = seen.get(v);
    if (s !== undefined) return s;
    if (seen.size < 10_000) seen.set(v, v);
    return v;
  };
}

/**
 * "12.34" → 1234 fen, "-0.02000" → -2, "0.00" → 0. Exact decimal arithmetic (no floats); digits past
 * the fen are rounded half away from zero (手续费 is printed with 5 decimals but charged in fen).
 */
export function yuanToFen(s: string): number {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(s.trim());
  if (!m) throw new BillFormatError(`not an amount in yuan: "${s}"`);
  const frac = (m[3] ?? '').padEnd(3, '0');
  let fen = Number(m[2]) * 100 + Number(frac.slice(0, 2));
  if (Number(frac[2]) >= 5) fen += 1;
  return m[1] === '-' ? -fen : fen;
}

/** Counts may be printed as "45.0". */
export function billCount(s: string): number {
  const m = /^(\d+)(?:\.0+)?$/.exec(s.trim());
  if (!m) throw new BillFormatError(`not a count: "${s}"`);
  return Number(m[1]);
}

/** Column by any of its known names (ASCII or full-width parentheses, e.g. 分账金额(元) / 分账金额（元）). */
export function col(row: Record<string, string>, ...names: string[]): string {
  for (const n of names) {
    for (const v of spellings(n)) if (v in row) return row[v]!;
  }
  throw new BillFormatError(`column ${names[0]} is missing`);
}

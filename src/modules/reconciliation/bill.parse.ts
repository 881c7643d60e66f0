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

/** "`a,`b,`" → ["a", "b", ""]; a field may not itself contain ",`" (WeChat never writes one). */
function fields(line: string): string[] {
  const body = line.startsWith('`') ? line.slice(1) : line;
  return body.split(',`');
}

export function parseBill(input: string | Buffer): ParsedBill {
  let text = typeof input === 'string' ? input : input.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new BillFormatError('empty bill');
  // A header line is the only kind without a backtick; the first line must be one.
  const isHeader = (l: string) => !l.includes('`');
  if (!isHeader(lines[0]!)) throw new BillFormatError('the bill does not start with a header line');
  const header = lines[0]!.split(',').map((h) => h.trim());
  const rows: Array<Record<string, string>> = [];
  let i = 1;
  for (; i < lines.length && !isHeader(lines[i]!); i++) rows.push(toRecord(header, fields(lines[i]!), i + 1));
  let summaryHeader: string[] = [];
  let summary: Record<string, string> | null = null;
  if (i < lines.length) {
    summaryHeader = lines[i]!.split(',').map((h) => h.trim());
    if (i + 1 < lines.length) summary = toRecord(summaryHeader, fields(lines[i + 1]!), i + 2);
    if (i + 2 < lines.length) throw new BillFormatError(`unexpected line ${i + 3} after the summary`);
  }
  return { header, rows, summaryHeader, summary };
}

function toRecord(header: string[], values: string[], lineNo: number): Record<string, string> {
  if (values.length !== header.length)
    throw new BillFormatError(`line ${lineNo} has ${values.length} fields, its header ${header.length}`);
  const r: Record<string, string> = {};
  header.forEach((h, k) => (r[h] = values[k]!.trim()));
  return r;
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
    for (const v of [n, n.replace(/\(/g, '（').replace(/\)/g, '）')]) if (v in row) return row[v]!;
  }
  throw new BillFormatError(`column ${names[0]} is missing`);
}

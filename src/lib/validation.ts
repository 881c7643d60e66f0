import { z } from 'zod';

/**
 * Small zod helpers shared by the request schemas, so every boundary refuses the same things the
 * same way (and another limit, e.g. UTF-8 byte length, can be piped onto the same helpers).
 */

/**
 * The largest amount in fen we accept anywhere: WeChat's `amount.total` and a receiver's `amount`
 * are JSON ints that WeChat parses as 32-bit (its simulator refuses above 2^31−1 with PARAM_ERROR,
 * like WeChat), and our amount columns are PostgreSQL `integer`. ≈ ¥21.47 million.
 */
export const MAX_AMOUNT_FEN = 2 ** 31 - 1;

/** Integer fen, 1 … MAX_AMOUNT_FEN. */
export const amountFen = () =>
  z.number().int('must be an integer number of fen').min(1, 'must be at least 1 fen').max(MAX_AMOUNT_FEN, `must be at most ${MAX_AMOUNT_FEN} fen`);

/**
 * C0 and C1 control characters (NUL included), DEL, and the lone surrogates / non-characters that
 * cannot travel as UTF-8. PostgreSQL refuses NUL in text (a 500 before this check), and WeChat's
 * fields are printable text; tab and newline are refused too: no WeChat string field is multi-line.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function hasControlChars(s: string): boolean {
  return CONTROL.test(s);
}

const CONTROL_ALL = new RegExp(CONTROL.source, 'g');
/** Replaces them with U+FFFD: for echoing client-chosen text (e.g. an unknown key's name) in answers. */
export function replaceControlChars(s: string): string {
  return s.replace(CONTROL_ALL, '\ufffd');
}

/** For `.refine(...)` on string schemas that are not plain `z.string()` (URLs, enums of strings). */
export const noControlChars = [(s: string) => !hasControlChars(s), { message: 'must not contain control characters' }] as const;

/** A string without control characters, refused with the field named by zod's path. */
export const text = () => z.string().refine(...noControlChars);

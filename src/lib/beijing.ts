/**
 * Beijing time (UTC+8, no daylight saving): WeChat Pay's bills, the console's days and its clock.
 * Pure date arithmetic, no time-zone database needed.
 */
export const BEIJING_MS = 8 * 3600_000;

/** The Beijing calendar day of an instant: `2026-12-02`. */
export const beijingDate = (d: Date) => new Date(d.getTime() + BEIJING_MS).toISOString().slice(0, 10);

/** An instant as operators read it: `2026-12-02 13:29:18`. */
export const beijingTime = (d: Date) => new Date(d.getTime() + BEIJING_MS).toISOString().slice(0, 19).replace('T', ' ');

/**
 * An instant as the shopper's page shows it, the text of `toLocaleString('zh-CN', { timeZone:
 * 'Asia/Shanghai', hour12: false })`: `2026/1/1 12:00:00`. That call builds a formatter each time
 * (0.18 ms, on every page).
 */
export function beijingShopperTime(d: Date): string {
  const b = new Date(d.getTime() + BEIJING_MS);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${b.getUTCFullYear()}/${b.getUTCMonth() + 1}/${b.getUTCDate()} ${two(b.getUTCHours())}:${two(b.getUTCMinutes())}:${two(b.getUTCSeconds())}`;
}

/** The start of the Beijing day `daysBack` days before the one holding `d` (16:00 UTC the day before). */
export function beijingDayStart(d: Date, daysBack = 0): Date {
  const shifted = new Date(d.getTime() + BEIJING_MS);
  return new Date(Date.UTC(shifted.getUTCFullYear(), shifted.getUTCMonth(), shifted.getUTCDate() - daysBack) - BEIJING_MS);
}

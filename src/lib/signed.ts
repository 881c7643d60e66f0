import { createHmac, timingSafeEqual } from 'node:crypto';

/** Short HMAC tags for values we hand to browsers (OAuth state, openid cookie). */
export function tag(secret: string, ...parts: string[]): string {
  return createHmac('sha256', secret).update(parts.join('\u0000')).digest('hex').slice(0, 32);
}

export function tagMatches(secret: string, expected: string, ...parts: string[]): boolean {
  const actual = tag(secret, ...parts);
  return expected.length === actual.length && timingSafeEqual(Buffer.from(expected), Buffer.from(actual));
}

/**
 * OAuth `state` bound to one checkout, one browser and a short life. WeChat allows only
 * [a-zA-Z0-9], ≤128 bytes, so: 20-char checkout id body + 8-char base36 expiry + 16-hex browser
 * nonce (also in a cookie, so a callback link forged for another browser is refused) + 32-hex HMAC.
 */
export function makeOAuthState(secret: string, checkoutId: string, expiresAtMs: number, nonce: string): string {
  const body = checkoutId.replace(/^co_/, '');
  const exp = Math.floor(expiresAtMs / 1000).toString(36).padStart(8, '0');
  return `${body}${exp}${nonce}${tag(secret, 'oauth', body, exp, nonce)}`;
}

export function readOAuthState(secret: string, state: string, nowMs: number, browserNonce: string | undefined): { checkoutId: string } | null {
  const m = /^([0-9a-z]{20})([0-9a-z]{8})([0-9a-f]{16})([0-9a-f]{32})$/.exec(state);
  if (!m) return null;
  const [, body, exp, nonce, mac] = m as unknown as [string, string, string, string, string];
  if (!tagMatches(secret, mac, 'oauth', body, exp, nonce)) return null;
  if (parseInt(exp, 36) * 1000 < nowMs) return null;
  if (browserNonce !== nonce) return null;
  return { checkoutId: `co_${body}` };
}

/** The openid cookie is bound to the appid it was obtained for. */
export function makeOpenidCookie(secret: string, appid: string, openid: string): string {
  return `${openid}.${tag(secret, 'openid', appid, openid)}`;
}

export function readOpenidCookie(secret: string, appid: string, value: string | undefined): string | null {
  if (!value) return null;
  const dot = value.lastIndexOf('.');
  if (dot <= 0) return null;
  const openid = value.slice(0, dot);
  if (!/^[\w-]{6,128}$/.test(openid)) return null;
  return tagMatches(secret, value.slice(dot + 1), 'openid', appid, openid) ? openid : null;
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) {
      try {
        out[part.slice(0, eq).trim()] = decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        /* ignore a malformed cookie */
      }
    }
  }
  return out;
}

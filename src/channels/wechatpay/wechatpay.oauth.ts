import { ChannelError } from '../../lib/errors';
import { badResponse, invalidInput, mapHttpError, networkError, timeoutError } from './wechatpay.errors';
import { oauthErrorSchema, oauthTokenSchema } from './wechatpay.wire';

/**
 * Official-account OAuth2, snsapi_base (silent), to get the payer's openid for JSAPI (FACTS §2).
 * These endpoints are plain WeChat (not WeChat Pay): answers are not signed.
 */

const STATE = /^[A-Za-z0-9]{0,128}$/;

/** Parameter order as documented; WeChat is known to be picky about it. */
export function buildOauthAuthorizeUrl(oauthBaseUrl: string, appid: string, redirectUri: string, state: string): string {
  if (!STATE.test(state)) throw invalidInput('OAuth state must be [A-Za-z0-9], at most 128 characters');
  const base = oauthBaseUrl.replace(/\/+$/, '');
  return (
    `${base}/connect/oauth2/authorize?appid=${encodeURIComponent(appid)}` +
    `&redirect_uri=${encodeURIComponent(redirectUri)}&response_type=code&scope=snsapi_base` +
    `&state=${state}#wechat_redirect`
  );
}

export async function exchangeOauthCode(opts: {
  apiBaseUrl: string;
  appid: string;
  appSecret: string;
  code: string;
  timeoutMs: number;
}): Promise<{ openid: string }> {
  if (!opts.code) throw invalidInput('empty OAuth code');
  const url = new URL(`${opts.apiBaseUrl.replace(/\/+$/, '')}/sns/oauth2/access_token`);
  url.searchParams.set('appid', opts.appid);
  url.searchParams.set('secret', opts.appSecret);
  url.searchParams.set('code', opts.code);
  url.searchParams.set('grant_type', 'authorization_code');
  const what = 'GET /sns/oauth2/access_token';

  let status: number;
  let text: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs), redirect: 'manual' });
    status = res.status;
    text = await res.text();
  } catch (err) {
    const name = (err as { name?: string } | null)?.name;
    if (name === 'TimeoutError' || name === 'AbortError') throw timeoutError(opts.timeoutMs, what, err);
    throw networkError(err, what);
  }
  let json: unknown;
  try {
    json = JSON.parse(text); // served as text/plain at times
  } catch {
    json = undefined;
  }
  if (status < 200 || status >= 300) throw mapHttpError(status, json, { verified: false });

  const err = oauthErrorSchema.safeParse(json);
  if (err.success && err.data.errcode !== 0) {
    // -1 = "system busy": the code was not consumed. Anything else (40029 invalid code, 40163 code
    // already used, 40125 bad secret...) will not heal by re-sending the same single-use code.
    throw new ChannelError(`OAUTH_${err.data.errcode}`, err.data.errmsg ?? `WeChat OAuth error ${err.data.errcode}`, {
      retryable: err.data.errcode === -1,
      httpStatus: status,
      detail: { errcode: err.data.errcode, errmsg: err.data.errmsg },
    });
  }
  const ok = oauthTokenSchema.safeParse(json);
  if (!ok.success) throw badResponse(`${what}: no openid in the answer`, { httpStatus: status });
  return { openid: ok.data.openid };
}

/**
 * Official-account web authorisation (open.weixin.qq.com + api.weixin.qq.com), snsapi_base.
 * The simulated WeChat user is the browser: a cookie set here, so one browser = one stable openid per appid.
 * Errcodes: 10003 redirect_uri domain (FACTS §2); 40029 invalid code, 40163 code been used, 40125 invalid
 * appsecret, 40013 invalid appid (well-known WeChat errcodes). UNVERIFIED: the exact page WeChat shows for a
 * bad scope/appid/response_type/state (errcodes 10005/10016/10003-family chosen by meaning).
 */
import { Router, type Request, type Response } from 'express';
import { randomAlnum, randomHex } from '../sim-crypto';
import type { SimRuntime } from '../runtime';
import { openidFor } from '../payments/transactions';

export const OAUTH_CODE_TTL_MS = 5 * 60_000;
const COOKIE = 'wxsim_uid';

function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

function errorPage(res: Response, status: number, errcode: number, message: string) {
  res.status(status).render('simulator/message', { title: '微信网页授权', heading: 'Oops! Something went wrong:(', message, tone: 'err', errcode });
}

export function createOauthRouter(rt: SimRuntime): Router {
  const r = Router();

  r.get('/connect/oauth2/authorize', (req, res) => {
    const q = req.query as Record<string, unknown>;
    const str = (k: string) => (typeof q[k] === 'string' ? (q[k] as string) : '');
    if (!/MicroMessenger/i.test(req.get('user-agent') ?? ''))
      return res.status(403).render('simulator/message', { title: '微信网页授权', heading: '请在微信客户端打开链接', message: '', tone: 'err' });
    const appid = str('appid');
    if (!appid) return errorPage(res, 400, 10012, 'appid 参数错误');
    if (!(appid in rt.oauthApps)) return errorPage(res, 400, 10016, 'appid 参数错误');
    const redirectUri = str('redirect_uri');
    if (!redirectUri) return errorPage(res, 400, 10011, 'redirect_uri 参数错误');
    let target: URL;
    try {
      target = new URL(redirectUri);
    } catch {
      return errorPage(res, 400, 10011, 'redirect_uri 参数错误');
    }
    if ((target.protocol !== 'http:' && target.protocol !== 'https:') || !rt.oauthDomains.includes(target.hostname))
      return errorPage(res, 400, 10003, 'redirect_uri 域名与后台配置不一致');
    if (str('response_type') !== 'code') return errorPage(res, 400, 10004, 'response_type 参数错误');
    const scope = str('scope');
    if (!scope) return errorPage(res, 400, 10010, 'scope 参数错误');
    if (scope !== 'snsapi_base' && scope !== 'snsapi_userinfo') return errorPage(res, 400, 10005, 'scope 参数错误或没有 scope 权限');
    const state = q.state;
    // Documented: state is [a-zA-Z0-9], at most 128 bytes.
    if (state !== undefined && (typeof state !== 'string' || !/^[a-zA-Z0-9]{0,128}$/.test(state)))
      return errorPage(res, 400, 10013, 'state 参数错误：只能为a-zA-Z0-9，最多128字节');

    let uid = readCookie(req, COOKIE);
    if (!uid || !/^[A-Za-z0-9]{16,64}$/.test(uid)) {
      uid = randomAlnum(24);
      res.append('Set-Cookie', `${COOKIE}=${uid}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax`);
    }
    const openid = openidFor(rt, appid, uid);
    const code = randomAlnum(32);
    rt.oauthCodes.set(code, { appid, openid, scope, createdAtMs: rt.now(), used: false });
    target.searchParams.set('code', code);
    target.searchParams.set('state', typeof state === 'string' ? state : '');
    res.redirect(302, target.toString());
  });

  r.get('/sns/oauth2/access_token', (req, res) => {
    const q = req.query as Record<string, unknown>;
    const str = (k: string) => (typeof q[k] === 'string' ? (q[k] as string) : '');
    const rid = `${randomHex(4)}-${randomHex(4)}-${randomHex(4)}`;
    const err = (errcode: number, msg: string) => res.json({ errcode, errmsg: `${msg} rid: ${rid}` });
    const appid = str('appid');
    if (!(appid in rt.oauthApps)) return err(40013, 'invalid appid');
    if (str('secret') !== rt.oauthApps[appid]) return err(40125, 'invalid appsecret');
    if (str('grant_type') !== 'authorization_code') return err(40002, 'invalid grant_type');
    const code = str('code');
    const c = rt.oauthCodes.get(code);
    if (!c || c.appid !== appid || rt.now() - c.createdAtMs > OAUTH_CODE_TTL_MS) return err(40029, 'invalid code');
    if (c.used) return err(40163, 'code been used');
    c.used = true;
    res.json({
      access_token: `SIM_${randomAlnum(40)}`,
      expires_in: 7200,
      refresh_token: `SIM_${randomAlnum(40)}`,
      openid: c.openid,
      scope: c.scope,
    });
  });

  return r;
}

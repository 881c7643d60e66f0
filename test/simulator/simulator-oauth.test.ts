import request from 'supertest';
import { createSimulator } from '../../src/simulator/app';
import { APPID, testKeys } from './sim-helpers';

const keys = testKeys();
const WX_UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.40(0x18002831) NetType/WIFI Language/zh_CN';
const SECRET = 'sim_app_secret_0123456789abcdef';
const mk = () => createSimulator({ keys, oauthDomains: ['shop.example.com'], extraApps: { wx1111111111111111: 'other-secret' } });
const authorize = (q: Record<string, string>) => `/connect/oauth2/authorize?${new URLSearchParams(q)}`;
const good = { appid: APPID, redirect_uri: 'https://shop.example.com/wx/callback?co=42', response_type: 'code', scope: 'snsapi_base', state: 'abc123' };

describe('simulator OAuth (snsapi_base)', () => {
  test('When the flow runs, then one browser gets one stable openid per appid, and the code works once', async () => {
    const { app } = mk();
    const agent = request.agent(app);
    const r1 = await agent.get(authorize(good)).set('User-Agent', WX_UA);
    expect(r1.status).toBe(302);
    const loc = new URL(r1.headers.location!);
    expect(loc.origin + loc.pathname).toBe('https://shop.example.com/wx/callback');
    expect(loc.searchParams.get('co')).toBe('42');
    expect(loc.searchParams.get('state')).toBe('abc123');
    const code = loc.searchParams.get('code')!;
    const tok = await request(app).get(`/sns/oauth2/access_token?appid=${APPID}&secret=${SECRET}&code=${code}&grant_type=authorization_code`);
    expect(tok.body).toMatchObject({ expires_in: 7200, scope: 'snsapi_base', openid: expect.stringMatching(/^o[\w-]{27}$/) });
    expect(tok.body.access_token).toBeTruthy();
    const again = await request(app).get(`/sns/oauth2/access_token?appid=${APPID}&secret=${SECRET}&code=${code}&grant_type=authorization_code`);
    expect(again.body.errcode).toBe(40163);

    // Same browser (cookie kept by the agent): same openid.
    const code2 = new URL((await agent.get(authorize(good)).set('User-Agent', WX_UA)).headers.location!).searchParams.get('code')!;
    const tok2 = await request(app).get(`/sns/oauth2/access_token?appid=${APPID}&secret=${SECRET}&code=${code2}&grant_type=authorization_code`);
    expect(tok2.body.openid).toBe(tok.body.openid);
    // Another browser: another openid. Same browser, other appid: another openid.
    const code3 = new URL((await request(app).get(authorize(good)).set('User-Agent', WX_UA)).headers.location!).searchParams.get('code')!;
    const tok3 = await request(app).get(`/sns/oauth2/access_token?appid=${APPID}&secret=${SECRET}&code=${code3}&grant_type=authorization_code`);
    expect(tok3.body.openid).not.toBe(tok.body.openid);
    const code4 = new URL((await agent.get(authorize({ ...good, appid: 'wx1111111111111111' })).set('User-Agent', WX_UA)).headers.location!).searchParams.get('code')!;
    const tok4 = await request(app).get(`/sns/oauth2/access_token?appid=wx1111111111111111&secret=other-secret&code=${code4}&grant_type=authorization_code`);
    expect(tok4.body.openid).not.toBe(tok.body.openid);
  });

  test.each([
    ['not in WeChat', { ...good }, 'Mozilla/5.0 (Macintosh) Chrome/120', 403, '请在微信客户端打开'],
    ['unknown appid', { ...good, appid: 'wx9999999999999999' }, WX_UA, 400, '10016'],
    ['redirect_uri domain not registered', { ...good, redirect_uri: 'https://evil.example.com/cb' }, WX_UA, 400, '10003'],
    ['bad scope', { ...good, scope: 'snsapi_login' }, WX_UA, 400, '10005'],
    ['bad response_type', { ...good, response_type: 'token' }, WX_UA, 400, '10004'],
    ['state with symbols', { ...good, state: 'a.b-c' }, WX_UA, 400, '10013'],
  ])('When %s, then an error page and no redirect', async (_n, q, ua, status, text) => {
    const { app } = mk();
    const r = await request(app).get(authorize(q as Record<string, string>)).set('User-Agent', ua);
    expect(r.status).toBe(status);
    expect(r.headers.location).toBeUndefined();
    expect(r.text).toContain(text);
  });

  test('When the token exchange is wrong, then WeChat errcodes', async () => {
    const { app, control } = mk();
    const code = new URL((await request(app).get(authorize(good)).set('User-Agent', WX_UA)).headers.location!).searchParams.get('code')!;
    const tok = (q: string) => request(app).get(`/sns/oauth2/access_token?${q}&grant_type=authorization_code`).then((r) => r.body.errcode);
    expect(await tok(`appid=wx9999999999999999&secret=${SECRET}&code=${code}`)).toBe(40013);
    expect(await tok(`appid=${APPID}&secret=wrong&code=${code}`)).toBe(40125);
    expect(await tok(`appid=${APPID}&secret=${SECRET}&code=nope`)).toBe(40029);
    // A code issued for one appid does not work for another.
    expect(await tok(`appid=wx1111111111111111&secret=other-secret&code=${code}`)).toBe(40029);
    control.advanceTime(5 * 60_000 + 1000);
    expect(await tok(`appid=${APPID}&secret=${SECRET}&code=${code}`)).toBe(40029);
  });
});

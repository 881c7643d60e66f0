/**
 * The simulator's bills with WeChat's rules (FACTS-partner-bills §2.1–2.6, Part 3 rules 11–13): publication
 * the next day at 10:00 Beijing, refusals, the signed answer, the unsigned download by token, gzip and hash.
 */
import { createHash, createSign, randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { startSimulator, type RunningSimulator } from '../../src/simulator/app';
import { testKeys } from './sim-helpers';

let sim: RunningSimulator;
beforeEach(async () => {
  sim = await startSimulator({ keys: testKeys(), partner: { subMerchants: { '1900000555': {} } }, profitSharing: { feeRate: 0.006 } });
  sim.control.notifyFaults({ hold: true });
});
afterEach(async () => sim.close());

async function call(path: string) {
  const ts = String(Math.floor(sim.ctx.now() / 1000));
  const nonce = randomBytes(16).toString('hex');
  const signature = createSign('RSA-SHA256').update(`GET\n${path}\n${ts}\n${nonce}\n\n`).sign(testKeys().merchantPrivateKey, 'base64');
  const res = await fetch(sim.url + path, {
    headers: { Accept: '*/*', Authorization: `WECHATPAY2-SHA256-RSA2048 mchid="${sim.ctx.opts.mchid}",nonce_str="${nonce}",timestamp="${ts}",serial_no="${testKeys().merchantCertSerial}",signature="${signature}"` },
  });
  const raw = Buffer.from(await res.arrayBuffer());
  let json: any;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: res.status, raw, json, headers: res.headers };
}

async function paidOrder(outTradeNo: string, total: number) {
  const ts = String(Math.floor(sim.ctx.now() / 1000));
  const nonce = randomBytes(16).toString('hex');
  const body = JSON.stringify({ appid: sim.ctx.opts.appid, mchid: sim.ctx.opts.mchid, description: '账单测试', out_trade_no: outTradeNo, notify_url: 'https://shop.example.com/notify', amount: { total, currency: 'CNY' } });
  const path = '/v3/pay/transactions/native';
  const signature = createSign('RSA-SHA256').update(`POST\n${path}\n${ts}\n${nonce}\n${body}\n`).sign(testKeys().merchantPrivateKey, 'base64');
  const res = await fetch(sim.url + path, {
    method: 'POST',
    body,
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', Authorization: `WECHATPAY2-SHA256-RSA2048 mchid="${sim.ctx.opts.mchid}",nonce_str="${nonce}",timestamp="${ts}",serial_no="${testKeys().merchantCertSerial}",signature="${signature}"` },
  });
  expect(res.status).toBe(200);
  expect(sim.control.pay(outTradeNo).ok).toBe(true);
}

const beijingDay = (ms: number) => new Date(ms + 8 * 3600_000).toISOString().slice(0, 10);
/** Moves the simulator's clock to 10:00 Beijing the day after `day` (+ extra ms). */
function toPublication(day: string, extraMs = 0) {
  const target = Date.parse(`${day}T10:00:00+08:00`) + 86_400_000 + extraMs;
  sim.control.advanceTime(target - sim.ctx.now());
}

describe('simulator bills', () => {
  it('When the day is not over, then STATEMENT_CREATING; from 10:00 the next day, a signed answer whose gzip file hashes to hash_value', async () => {
    await paidOrder('BILL000001', 1999);
    await paidOrder('BILL000002', 1);
    const day = beijingDay(sim.ctx.now());
    const early = await call(`/v3/bill/tradebill?bill_date=${day}&bill_type=ALL&tar_type=GZIP`);
    expect(early.status).toBe(400);
    expect(early.json.code).toBe('STATEMENT_CREATING');
    const earlySplit = await call(`/v3/profitsharing/bills?bill_date=${day}`);
    expect(earlySplit.json).toMatchObject({ code: 'INVALID_REQUEST', message: '请求的账单正在生成中' });

    toPublication(day, -60_000);
    expect((await call(`/v3/bill/tradebill?bill_date=${day}`)).json.code).toBe('STATEMENT_CREATING');
    sim.control.advanceTime(60_000);
    const ok = await call(`/v3/bill/tradebill?bill_date=${day}&bill_type=ALL&tar_type=GZIP`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('wechatpay-signature')).toBeTruthy();
    expect(ok.json.hash_type).toBe('SHA1');
    const url = new URL(ok.json.download_url);
    expect(url.pathname).toBe('/v3/billdownload/file');
    expect(url.searchParams.get('tartype')).toBe('gzip');

    const file = await call(url.pathname + url.search);
    expect(file.status).toBe(200);
    // The download answer is not signed (FACTS-partner-bills §2.4).
    expect(file.headers.get('wechatpay-signature')).toBeNull();
    const text = gunzipSync(file.raw);
    expect(createHash('sha1').update(text).digest('hex')).toBe(ok.json.hash_value);
    const s = text.toString('utf8');
    expect(s.startsWith('\uFEFF交易时间,公众账号ID,商户号,特约商户号')).toBe(true);
    expect(s.endsWith('\r\n')).toBe(true);
    const lines = s.slice(1).split('\r\n').filter(Boolean);
    expect(lines).toHaveLength(5); // header, 2 payments, summary header, summary
    expect(lines[1]).toMatch(/^`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},`wx/);
    expect(lines.slice(1, 3).some((l) => l.includes('`BILL000001,') && l.includes('`19.99,') && l.includes('`0.12000,') && l.includes('`0.60%'))).toBe(true);
    expect(lines[3]).toBe('总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额');
    expect(lines[4]).toMatch(/^`2,`20.00,`0.00,`0.00,`0.12000,`20.00,`0.00$/);

    // The URL lives 30 s.
    sim.control.advanceTime(31_000);
    expect((await call(url.pathname + url.search)).json).toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it('When the request is wrong, then WeChat\'s refusals: format, future, older than 3 months, bill_type, tar_type, sub_mchid', async () => {
    const today = beijingDay(sim.ctx.now());
    const refusal = async (q: string) => (await call(`/v3/bill/tradebill?${q}`)).json;
    expect(await refusal('bill_date=2026-13-01')).toMatchObject({ code: 'PARAM_ERROR' });
    expect(await refusal('bill_date=20261201')).toMatchObject({ code: 'PARAM_ERROR' });
    expect(await refusal(`bill_date=${beijingDay(sim.ctx.now() + 2 * 86_400_000)}`)).toMatchObject({ code: 'INVALID_REQUEST' });
    expect(await refusal(`bill_date=${beijingDay(sim.ctx.now() - 100 * 86_400_000)}`)).toMatchObject({ code: 'INVALID_REQUEST', message: '请求的账单日期已过期' });
    expect(await refusal(`bill_date=${today}&bill_type=FOO`)).toMatchObject({ code: 'PARAM_ERROR' });
    expect(await refusal(`bill_date=${today}&tar_type=ZIP`)).toMatchObject({ code: 'PARAM_ERROR' });
    expect(await refusal(`bill_date=${today}&sub_mchid=1900000666`)).toMatchObject({ code: 'INVALID_REQUEST', message: '服务商和分账方无受理关系' });
    // A published day without any trade: NO_STATEMENT_EXIST.
    const yesterday = beijingDay(sim.ctx.now() - 86_400_000);
    toPublication(yesterday);
    expect(await refusal(`bill_date=${yesterday}`)).toMatchObject({ code: 'NO_STATEMENT_EXIST' });
    expect((await call(`/v3/profitsharing/bills?bill_date=${yesterday}&sub_mchid=1900000555`)).json).toMatchObject({ code: 'NO_STATEMENT_EXIST' });
  });

  it('When fault controls are set, then the file changes before hashing, or the hash is wrong, or the bill is not ready', async () => {
    await paidOrder('BILL000003', 500);
    const day = beijingDay(sim.ctx.now());
    toPublication(day);
    const fetchText = async () => {
      const a = await call(`/v3/bill/tradebill?bill_date=${day}`);
      const u = new URL(a.json.download_url);
      const f = await call(u.pathname + u.search);
      return { hash: a.json.hash_value as string, text: f.raw.toString('utf8'), sha1: createHash('sha1').update(f.raw).digest('hex') };
    };
    sim.control.bills.fault({ bill: 'trade', action: 'amount', ref: 'BILL000003', deltaFen: 1 });
    const altered = await fetchText();
    expect(altered.text).toContain('`5.01,');
    expect(altered.sha1).toBe(altered.hash);
    sim.control.bills.clear();

    sim.control.bills.fault({ bill: 'trade', action: 'bad_hash' });
    const bad = await fetchText();
    expect(bad.sha1).not.toBe(bad.hash);
    const good = await fetchText(); // one bill only
    expect(good.sha1).toBe(good.hash);

    sim.control.bills.fault({ bill: 'trade', action: 'not_ready' });
    expect((await call(`/v3/bill/tradebill?bill_date=${day}`)).json.code).toBe('STATEMENT_CREATING');
    expect((await call(`/v3/bill/tradebill?bill_date=${day}`)).status).toBe(200);
  });
});

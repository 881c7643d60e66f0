import path from 'node:path';
import vm from 'node:vm';
import ejs from 'ejs';

const VIEWS = path.join(__dirname, '..', '..', 'views');
const render = (view: string, locals: Record<string, unknown>): Promise<string> =>
  ejs.renderFile(path.join(VIEWS, `${view}.ejs`), locals, { root: VIEWS }); // as src/app.ts renders them

const XSS = '<script>alert(1)</script>';
const base = { title: '微信支付', sandbox: false };
const checkout = {
  id: 'co_01JABCDEF',
  description: `测试商品 ${XSS}`,
  amountYuan: '0.01',
  amountFen: 1,
  status: 'open',
  merchantName: '演示商户 & Co',
  expiresAt: '2026-01-01T04:00:00.000Z',
  expiresText: '2026/1/1 12:00:00',
  returnUrl: 'https://shop.example.com/orders/1?a=1&b=2',
};
const jsapiParams = {
  appId: 'wx2421b1c4370ec43b',
  timeStamp: '1554208460',
  nonceStr: '593BEC0C930BF1AFEB40B4A08C8FB242',
  package: 'prepay_id=wx201410272009395522657a690389285100',
  signType: 'RSA',
  paySign: `abc+/=</script><script>alert(2)</script><!--`,
};

/** The <script type="application/json" id="…"> payload, parsed the way the page does it. */
function jsonBlock(html: string, id: string): unknown {
  const m = new RegExp(`<script type="application/json" id="${id}">([\\s\\S]*?)</script>`).exec(html);
  if (!m) throw new Error(`no JSON block #${id}`);
  return JSON.parse(m[1]!);
}

function expectDescriptionEscaped(html: string): void {
  expect(html).not.toContain(XSS);
  expect(html).toContain('测试商品 &lt;script&gt;alert(1)&lt;/script&gt;');
}

// --- a minimal browser stand-in, enough for the pages' ES5 scripts ------------------------------------
interface FakeEl {
  id: string;
  textContent: string;
  className: string;
  disabled: boolean;
  hidden: boolean;
  value: string;
  listeners: Record<string, Array<(e?: unknown) => void>>;
  addEventListener(type: string, fn: (e?: unknown) => void): void;
  click(): void;
}

function fakeEl(id: string, textContent = ''): FakeEl {
  const el: FakeEl = {
    id,
    textContent,
    className: '',
    disabled: false,
    hidden: false,
    value: '',
    listeners: {},
    addEventListener(type, fn) {
      (el.listeners[type] ??= []).push(fn);
    },
    click() {
      if (!el.disabled) for (const fn of el.listeners.click ?? []) fn();
    },
  };
  return el;
}

interface XhrCall {
  method: string;
  url: string;
  headers: Record<string, string>;
  respond(status: number, body: string): void;
}

function runPage(html: string, opts: { globals?: Record<string, unknown>; session?: Map<string, string> } = {}) {
  const elements = new Map<string, FakeEl>();
  for (const m of html.matchAll(/<script type="application\/json" id="([^"]+)">([\s\S]*?)<\/script>/g)) {
    elements.set(m[1]!, fakeEl(m[1]!, m[2]!));
  }
  for (const m of html.matchAll(/\bid="([^"]+)"/g)) if (!elements.has(m[1]!)) elements.set(m[1]!, fakeEl(m[1]!));
  for (const m of html.matchAll(/<[^>]*\bid="([^"]+)"[^>]*\shidden[\s>]/g)) elements.get(m[1]!)!.hidden = true;

  const timers: Array<() => void> = [];
  const xhrs: XhrCall[] = [];
  const docListeners: Record<string, Array<() => void>> = {};
  const winListeners: Record<string, Array<(e?: unknown) => void>> = {};
  const session = opts.session ?? new Map<string, string>();
  const location = { href: 'https://pay.example.com/c/co_01JABCDEF', pathname: '/c/co_01JABCDEF' };

  class FakeXhr {
    readyState = 0;
    status = 0;
    responseText = '';
    onreadystatechange: (() => void) | null = null;
    private call: XhrCall = { method: '', url: '', headers: {}, respond: () => undefined };
    open(method: string, url: string) {
      this.call = { method, url, headers: {}, respond: (status, body) => this.finish(status, body) };
    }
    setRequestHeader(k: string, v: string) {
      this.call.headers[k] = v;
    }
    send() {
      xhrs.push(this.call);
    }
    private finish(status: number, body: string) {
      this.readyState = 4;
      this.status = status;
      this.responseText = body;
      this.onreadystatechange?.();
    }
  }

  const document = {
    readyState: 'complete',
    hidden: false,
    getElementById: (id: string) => elements.get(id) ?? null,
    addEventListener: (type: string, fn: () => void) => (docListeners[type] ??= []).push(fn),
    execCommand: () => true,
  };
  const window: Record<string, unknown> = {
    location,
    sessionStorage: { getItem: (k: string) => session.get(k) ?? null, setItem: (k: string, v: string) => session.set(k, v) },
    addEventListener: (type: string, fn: (e?: unknown) => void) => (winListeners[type] ??= []).push(fn),
  };
  const context = vm.createContext({
    window,
    document,
    navigator: {},
    XMLHttpRequest: FakeXhr,
    JSON,
    setTimeout: (fn: () => void) => timers.push(fn),
    ...opts.globals,
  });
  for (const m of html.matchAll(/<script nonce="[^"]*">([\s\S]*?)<\/script>/g)) vm.runInContext(m[1]!, context);

  return {
    el: (id: string) => elements.get(id)!,
    location,
    xhrs,
    session,
    /** Fire every pending timer once (timers scheduled meanwhile wait for the next call). */
    tick: () => timers.splice(0).forEach((fn) => fn()),
    fireDocument: (type: string) => (docListeners[type] ?? []).forEach((fn) => fn()),
    fireWindow: (type: string, e?: unknown) => (winListeners[type] ?? []).forEach((fn) => fn(e)),
    context,
  };
}

// --- tests ---------------------------------------------------------------------------------------------

describe('partials', () => {
  it('When any page renders, then it is a zh-CN document with the title, inline CSS and no external resources', async () => {
    const html = await render('checkout/paid', { base: { title: '支付 <测试>', sandbox: false }, checkout });
    expect(html).toMatch(/^\s*<!doctype html>\s*<html lang="zh-CN">/);
    expect(html).toContain('<title>支付 &lt;测试&gt;</title>');
    expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    expect(html).toContain('<style nonce=');
    expect(html).not.toMatch(/<link\b|src="https?:|@import|url\(/);
    expect(html).not.toContain('沙箱环境');
    expect(html.trim().endsWith('</html>')).toBe(true);
  });

  it('When base.sandbox is true, then a sandbox banner is shown', async () => {
    const html = await render('checkout/paid', { base: { ...base, sandbox: true }, checkout });
    expect(html).toContain('沙箱环境 · Sandbox');
  });

  it('When the summary renders, then merchant, description, amount and id are escaped and shown', async () => {
    const html = await render('checkout/paid', { base, checkout });
    expectDescriptionEscaped(html);
    expect(html).toContain('演示商户 &amp; Co');
    expect(html).toContain('<small>¥</small>0.01');
    expect(html).toContain('co_01JABCDEF');
  });

  it('When the expiry is asked for, then its Beijing-time text is shown', async () => {
    expect(await render('checkout/jsapi', { base, checkout, jsapiParams, resultUrl: '/r' })).toContain('<dd>2026/1/1 12:00:00</dd>');
    expect(await render('checkout/paid', { base, checkout })).not.toContain('2026/1/1 12:00:00');
  });
});

describe('checkout/jsapi', () => {
  const locals = { base, checkout, jsapiParams, resultUrl: '/c/co_01JABCDEF/result' };

  it('When rendered, then the bridge params are embedded as inert JSON that round-trips exactly', async () => {
    const html = await render('checkout/jsapi', locals);
    expectDescriptionEscaped(html);
    expect(html).not.toContain('</script><script>alert(2)');
    expect(html).not.toContain('<!--');
    expect(jsonBlock(html, 'jsapi-data')).toEqual({ params: jsapiParams, resultUrl: '/c/co_01JABCDEF/result' });
    expect(html).toContain('立即支付 ¥0.01');
    expect(html).not.toContain('<script src=');
  });

  it('When bridgeShimUrl is set, then the shim script is loaded before the page script', async () => {
    const html = await render('checkout/jsapi', { ...locals, bridgeShimUrl: '/sandbox/bridge.js?x=1&y=2' });
    const shim = html.indexOf('<script src="/sandbox/bridge.js?x=1&amp;y=2" nonce="');
    expect(shim).toBeGreaterThan(-1);
    expect(shim).toBeLessThan(html.indexOf('<script nonce='));
  });

  function bridge() {
    const calls: Array<{ name: string; params: unknown; cb: (res: { err_msg: string }) => void }> = [];
    return { calls, WeixinJSBridge: { invoke: (name: string, params: unknown, cb: never) => calls.push({ name, params, cb }) } };
  }

  it('When the bridge becomes ready, then getBrandWCPayRequest is invoked once automatically, and ":ok" goes to the result page', async () => {
    const html = await render('checkout/jsapi', locals);
    const page = runPage(html);
    const b = bridge();
    page.context.WeixinJSBridge = b.WeixinJSBridge;
    page.fireDocument('WeixinJSBridgeReady');
    expect(b.calls).toHaveLength(1);
    expect(b.calls[0]!.name).toBe('getBrandWCPayRequest');
    expect(b.calls[0]!.params).toEqual(jsapiParams);
    page.el('pay-btn').click(); // busy: no second invoke while the first is open
    expect(b.calls).toHaveLength(1);
    b.calls[0]!.cb({ err_msg: 'get_brand_wcpay_request:ok' });
    expect(page.location.href).toBe('/c/co_01JABCDEF/result');
  });

  it('When the shopper cancels, then a message and a retry button are shown, and tapping it invokes again', async () => {
    const html = await render('checkout/jsapi', locals);
    const b = bridge();
    const page = runPage(html, { globals: { WeixinJSBridge: b.WeixinJSBridge } }); // bridge already present
    expect(b.calls).toHaveLength(1);
    b.calls[0]!.cb({ err_msg: 'get_brand_wcpay_request:cancel' });
    expect(page.el('pay-status').textContent).toContain('您已取消支付');
    expect(page.el('pay-btn').textContent).toBe('重新支付');
    expect(page.location.href).not.toContain('result');
    page.el('pay-btn').click();
    expect(b.calls).toHaveLength(2);
    b.calls[1]!.cb({ err_msg: 'get_brand_wcpay_request:fail' });
    expect(page.el('pay-status').textContent).toContain('支付未完成');
    expect(page.el('pay-status').className).toContain('error');
  });

  it('When the button is tapped before the bridge is ready, then payment starts once it is ready', async () => {
    const html = await render('checkout/jsapi', locals);
    const page = runPage(html);
    page.el('pay-btn').click();
    expect(page.el('pay-status').textContent).toContain('加载中');
    const b = bridge();
    page.context.WeixinJSBridge = b.WeixinJSBridge;
    page.fireDocument('WeixinJSBridgeReady');
    page.fireDocument('WeixinJSBridgeReady'); // duplicate events must not double-invoke
    expect(b.calls).toHaveLength(1);
  });
});

describe('checkout/h5-hop', () => {
  const h5Url = 'https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1&package=123&redirect_url=https%3A%2F%2Fpay.example.com';
  const locals = { base, checkout, h5Url, resultUrl: '/c/co_01JABCDEF/result' };

  it('When rendered, then the page keeps our origin as Referer and links to WeChat and to the result', async () => {
    const html = await render('checkout/h5-hop', locals);
    expectDescriptionEscaped(html);
    expect(html).toContain('<meta name="referrer" content="origin">');
    expect(html).toContain(`href="${h5Url.replace(/&/g, '&amp;')}"`);
    expect(html).toContain('前往微信支付');
    expect(html).toContain('我已完成支付 / 查看支付结果');
    expect(html).toContain('href="/c/co_01JABCDEF/result"');
    expect(html).not.toMatch(/rel="[^"]*noreferrer/);
    expect(jsonBlock(html, 'hop-data')).toEqual({ h5Url, key: 'wxpay-hop:co_01JABCDEF' });
  });

  it('When loaded, then it jumps to h5Url once; coming back in the same session does not jump again', async () => {
    const html = await render('checkout/h5-hop', locals);
    const first = runPage(html);
    expect(first.location.href).toBe(h5Url);
    const again = runPage(html, { session: first.session });
    expect(again.location.href).not.toBe(h5Url);
    expect(again.el('hop-status').textContent).toContain('我已完成支付');
  });

  it('When h5Url is not http(s), then it is neither linked nor followed', async () => {
    const html = await render('checkout/h5-hop', { ...locals, h5Url: 'javascript:alert(1)' });
    expect(html).not.toContain('javascript:alert(1)');
    expect(html).toContain('支付链接无效');
    expect(html).toContain('我已完成支付');
  });
});

describe('checkout/native', () => {
  const locals = {
    base,
    checkout,
    qrSvg: '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 29 29"><path d="M0 0h7v7H0z"/></svg>',
    codeUrl: 'weixin://wxpay/bizpayurl?pr=abc&x=1',
    statusUrl: '/c/co_01JABCDEF/status',
    resultUrl: '/c/co_01JABCDEF/result',
  };

  it('When rendered, then the QR SVG is included raw with scan instructions, without sandbox extras', async () => {
    const html = await render('checkout/native', locals);
    expectDescriptionEscaped(html);
    expect(html).toContain(locals.qrSvg);
    expect(html).toContain('请使用微信扫一扫');
    expect(html).not.toContain('模拟扫码支付');
    expect(html).not.toContain('weixin://');
  });

  it('When sandboxScanUrl is set, then a simulated-scan link is shown', async () => {
    const html = await render('checkout/native', { ...locals, base: { ...base, sandbox: true }, sandboxScanUrl: '/sim/scan?pr=abc' });
    expect(html).toContain('href="/sim/scan?pr=abc"');
    expect(html).toContain('模拟扫码支付 (sandbox)');
    expect(html).toContain('weixin://wxpay/bizpayurl?pr=abc&amp;x=1');
  });

  it('When polling, then it GETs statusUrl as JSON every tick and goes to the result page once status is not open', async () => {
    const page = runPage(await render('checkout/native', locals));
    expect(page.xhrs).toHaveLength(0);
    page.tick();
    expect(page.xhrs).toHaveLength(1);
    expect(page.xhrs[0]).toMatchObject({ method: 'GET', url: '/c/co_01JABCDEF/status', headers: { Accept: 'application/json' } });
    page.xhrs[0]!.respond(200, '{"status":"open"}');
    page.tick();
    page.xhrs[1]!.respond(503, 'oops'); // errors keep polling
    page.tick();
    expect(page.location.href).not.toContain('result');
    page.xhrs[2]!.respond(200, '{"status":"paid"}');
    expect(page.location.href).toBe('/c/co_01JABCDEF/result');
    page.tick();
    expect(page.xhrs).toHaveLength(3);
  });
});

describe('checkout/unsupported', () => {
  it('When opened in WeCom without texts, then the WeCom guidance and a copy button for the checkout URL are shown', async () => {
    const html = await render('checkout/unsupported', {
      base,
      env: 'wecom',
      checkout,
      checkoutUrl: 'https://pay.example.com/c/co_01JABCDEF?a=1&b="2"',
    });
    expect(html).toContain('请在微信中打开此链接，或使用手机浏览器打开');
    expect(html).toContain('复制链接');
    expect(html).toContain('value="https://pay.example.com/c/co_01JABCDEF?a=1&amp;b=&#34;2&#34;"');
    expect(html).toContain('<label for="checkout-url">');
    expectDescriptionEscaped(html);
  });

  it('When opened in a mini-program web-view, then it says to use native payment or copy the link', async () => {
    const html = await render('checkout/unsupported', { base, env: 'miniprogram', checkoutUrl: 'https://pay.example.com/c/x' });
    expect(html).toContain('小程序内网页暂不支持微信支付，请返回小程序使用原生支付，或复制链接到微信/浏览器中打开');
  });

  it('When the controller passes title, message and hint, then those are shown (escaped) instead of defaults', async () => {
    const html = await render('checkout/unsupported', {
      base,
      env: 'wecom',
      title: '自定义标题',
      message: `消息 ${XSS}`,
      hint: '提示',
      checkoutUrl: 'https://pay.example.com/c/x',
    });
    expect(html).toContain('自定义标题');
    expect(html).toContain('消息 &lt;script&gt;');
    expect(html).not.toContain(XSS);
    expect(html).not.toContain('企业微信暂不支持');
  });
});

describe('terminal pages', () => {
  it.each([
    ['checkout/paid', '支付成功'],
    ['checkout/expired', '订单已过期'],
    ['checkout/closed', '订单已关闭'],
  ])('When %s renders, then it says %s and links back to the merchant', async (view, text) => {
    const html = await render(view, { base, checkout });
    expect(html).toContain(text);
    expectDescriptionEscaped(html);
    expect(html).toContain('href="https://shop.example.com/orders/1?a=1&amp;b=2"');
    expect(html).toContain('返回商户');
  });

  it('When returnUrl is a javascript: URL, then no return link is rendered', async () => {
    const html = await render('checkout/paid', { base, checkout: { ...checkout, returnUrl: 'javascript:alert(1)' } });
    expect(html).not.toContain('javascript:');
    expect(html).not.toContain('返回商户');
  });

  it('When not-found renders with only base, then it explains the order does not exist', async () => {
    expect(await render('checkout/not-found', { base })).toContain('订单不存在');
  });

  it('When error renders, then the escaped message and a retry link are shown', async () => {
    const html = await render('checkout/error', { base, message: `支付通道暂不可用 ${XSS}`, retryUrl: '/c/co_01JABCDEF' });
    expect(html).toContain('支付通道暂不可用 &lt;script&gt;');
    expect(html).not.toContain(XSS);
    expect(html).toMatch(/href="\/c\/co_01JABCDEF">重试</);
    expect(await render('checkout/error', { base, message: 'x' })).not.toContain('重试');
  });
});

describe('checkout/result', () => {
  const locals = { base, checkout, statusUrl: '/c/co_01JABCDEF/status' };

  it('When the checkout is paid, then 支付成功 and 返回商户 are visible and nothing polls', async () => {
    const html = await render('checkout/result', { ...locals, checkout: { ...checkout, status: 'paid' } });
    expectDescriptionEscaped(html);
    const page = runPage(html);
    expect(page.el('state-paid').hidden).toBe(false);
    expect(page.el('state-open').hidden).toBe(true);
    expect(html).toContain('返回商户');
    page.tick();
    expect(page.xhrs).toHaveLength(0);
    // Then the browser goes back to the merchant (the view's returnUrl already carries checkout_id and out_trade_no).
    expect(page.location.href).toBe(checkout.returnUrl);
  });

  it('When open, then it polls and switches to paid when the status arrives', async () => {
    const page = runPage(await render('checkout/result', locals));
    expect(page.el('state-open').hidden).toBe(false);
    expect(page.el('state-paid').hidden).toBe(true);
    page.tick();
    expect(page.xhrs[0]).toMatchObject({ url: '/c/co_01JABCDEF/status', headers: { Accept: 'application/json' } });
    page.xhrs[0]!.respond(200, '{"status":"paid"}');
    expect(page.el('state-paid').hidden).toBe(false);
    expect(page.el('state-open').hidden).toBe(true);
  });

  it('When still open after ~2 minutes of polling, then the waiting state is shown, and refresh polls again', async () => {
    const page = runPage(await render('checkout/result', locals));
    for (let i = 0; i < 60; i++) {
      page.tick();
      page.xhrs[i]!.respond(200, '{"status":"open"}');
    }
    page.tick();
    expect(page.xhrs).toHaveLength(60);
    expect(page.el('state-waiting').hidden).toBe(false);
    page.el('refresh-btn').click();
    expect(page.xhrs).toHaveLength(61);
    expect(page.el('state-open').hidden).toBe(false);
  });

  it('When expired, then the expired state is visible', async () => {
    const page = runPage(await render('checkout/result', { ...locals, checkout: { ...checkout, status: 'expired' } }));
    expect(page.el('state-expired').hidden).toBe(false);
    expect(page.el('state-open').hidden).toBe(true);
  });
});

describe('demo/shop', () => {
  const checkouts = [
    {
      id: 'co_1',
      description: `咖啡 ${XSS}`,
      amountYuan: '12.50',
      status: 'paid',
      checkoutUrl: '/c/co_1',
      createdAt: new Date('2026-01-01T00:00:00Z'),
    },
    { id: 'co_2', description: '茶', amountYuan: '0.01', status: 'open', checkoutUrl: '/c/co_2', createdAt: '2026-01-01T01:00:00Z' },
  ];

  it('When rendered, then the create form, the H5/JSAPI/QR explanation and the escaped list are shown', async () => {
    const html = await render('demo/shop', { base: { ...base, sandbox: true }, checkouts });
    expect(html).toContain('action="/demo/checkouts"');
    expect(html).toMatch(/name="description"/);
    expect(html).toMatch(/name="amount"/);
    expect(html).toMatch(/name="profitSharing" value="off" checked/);
    expect(html).toMatch(/name="profitSharing" value="planned"/);
    expect(html).toContain('H5');
    expect(html).toContain('JSAPI');
    expect(html).toContain('二维码');
    expect(html).toContain('咖啡 &lt;script&gt;');
    expect(html).not.toContain(XSS);
    expect(html).toContain('href="/c/co_2"');
    expect(html).toContain('已支付');
    expect(html).toContain('待支付');
    expect(html).toContain('2026/1/1 08:00:00'); // Beijing time
  });

  it('When there is an error and no checkouts, then both are explained', async () => {
    const html = await render('demo/shop', { base, checkouts: [], error: `金额无效 ${XSS}` });
    expect(html).toContain('金额无效 &lt;script&gt;');
    expect(html).toContain('暂无订单');
  });
});

describe('demo/webhooks', () => {
  it('When deliveries were received, then each shows its type in Chinese, signature and answer, escaped, as a list (no table at 390 px)', async () => {
    const received = [
      { id: 'evt_1', type: 'checkout.paid', checkoutId: 'co_1', objectStatus: 'paid', receivedAt: '2026-01-01T00:00:00Z', verified: true, duplicate: false, answered: 200 },
      { id: `evt_${XSS}`, type: XSS, checkoutId: null, objectStatus: null, receivedAt: '2026-01-01T00:00:01Z', verified: false, duplicate: true, answered: 400 },
    ];
    const html = await render('demo/webhooks', { base: { ...base, sandbox: true }, endpoint: { id: 'we_1', url: 'http://127.0.0.1:3000/demo/webhooks/receiver' }, received, failNext: 2 });
    expect(html).toContain('订单已支付');
    expect(html).toContain('签名有效');
    expect(html).toContain('签名无效');
    expect(html).toContain('重复推送');
    expect(html).toContain('接下来 2 次推送将返回 500');
    expect(html).toContain('action="/demo/webhooks/fail-next"');
    expect(html).not.toContain(XSS);
    expect(html).not.toContain('<table');
  });

  it('When nothing was received and no endpoint exists, then both are explained', async () => {
    const html = await render('demo/webhooks', { base, endpoint: null, received: [], failNext: 0 });
    expect(html).toContain('暂无推送');
    expect(html).toContain('尚未注册内置接收端');
  });
});

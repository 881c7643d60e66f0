import { detectBrowser, payMethodFor, type BrowserEnv, type PayMethod } from '../../src/modules/checkout/browser.detect';

// Real UA strings from /work/shared/wechatpay/FACTS.md §8 (sources listed there), plus a few extras.
const cases: Array<{ name: string; ua: string; env: BrowserEnv; method: PayMethod; wechatVersion?: string }> = [
  {
    name: 'WeChat iOS (old)',
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 8_4_1 like Mac OS X) AppleWebKit/600.1.4 (KHTML, like Gecko) Mobile/12H321 MicroMessenger/6.3.6 NetType/WIFI Language/zh_CN',
    env: 'wechat',
    method: 'jsapi',
    wechatVersion: '6.3.6',
  },
  {
    name: 'WeChat iOS (modern)',
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 11_2_6 like Mac OS X) AppleWebKit/604.5.6 (KHTML, like Gecko) Mobile/15D100 MicroMessenger/6.6.5 NetType/WIFI Language/zh_CN',
    env: 'wechat',
    method: 'jsapi',
    wechatVersion: '6.6.5',
  },
  {
    name: 'WeChat Android (XWEB)',
    ua: 'Mozilla/5.0 (Linux; Android 9; Redmi Note 5 Build/PKQ1.180904.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.62 XWEB/2853 MMWEBSDK/201201 Mobile Safari/537.36 MMWEBID/1119 MicroMessenger/7.0.22.1820(0x2700163B) Process/toolsmp WeChat/arm64 Weixin NetType/WIFI Language/en ABI/arm64',
    env: 'wechat',
    method: 'jsapi',
    wechatVersion: '7.0.22.1820',
  },
  {
    name: 'WeChat Android (TBS)',
    ua: 'Mozilla/5.0 (Linux; U; Android 5.1; zh-cn; Lenovo K50-t5 Build/LMY47D) AppleWebKit/533.1 (KHTML, like Gecko)Version/4.0 MQQBrowser/5.4 TBS/025478 Mobile Safari/533.1 MicroMessenger/6.3.5.50_r1573191.640 NetType/WIFI Language/zh_CN',
    env: 'wechat',
    method: 'jsapi',
    wechatVersion: '6.3.5.50',
  },
  {
    name: 'WeChat Windows (new)',
    ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x6309092b) XWEB/9105 Flue',
    env: 'wechat_desktop',
    method: 'native',
    wechatVersion: '7.0.20.1781',
  },
  {
    name: 'WeChat Windows (old, QBCore)',
    ua: 'Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/39.0.2171.95 Safari/537.36 MicroMessenger/6.5.2.501 NetType/WIFI WindowsWechat QBCore/3.43.901.400 QQBrowser/9.0.2524.400',
    env: 'wechat_desktop',
    method: 'native',
    wechatVersion: '6.5.2.501', // ua-parser itself reports the QBCore version here
  },
  {
    name: 'WeCom iOS',
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)  Mobile/15E148 wxwork/4.1.39 MicroMessenger/7.0.1 Language/zh ColorScheme/Light wwmver/3.26.38.377',
    env: 'wecom',
    method: 'unsupported',
  },
  {
    name: 'WeCom Windows (also contains WindowsWechat)',
    ua: 'Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.6668.101 Safari/537.36 Language/zh ColorScheme/Light wxwork/4.1.39 (MicroMessenger/6.2) WindowsWechat  MailPlugin_Electron WeMail embeddisk wwmver/3.26.39.639 noMediaCs/false',
    env: 'wecom',
    method: 'unsupported',
  },
  {
    name: 'Mini-program web-view (Android)',
    ua: 'Mozilla/5.0 (Linux; Android 7.1.1; MI 6 Build/NMF26X; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/57.0.2987.132 MQQBrowser/6.2 TBS/043807 Mobile Safari/537.36 MicroMessenger/6.6.1.1220(0x26060135) NetType/4G Language/zh_CN miniProgram',
    env: 'miniprogram',
    method: 'unsupported',
    wechatVersion: '6.6.1.1220',
  },
  {
    name: 'Mobile Safari iOS',
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 13_2_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0.3 Mobile/15E148 Safari/604.1',
    env: 'mobile',
    method: 'h5',
  },
  {
    name: 'Chrome Android',
    ua: 'Mozilla/5.0 (Linux; Android 8.0.0; Pixel 2 XL Build/OPD1.170816.004) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/84.0.4147.89 Mobile Safari/537.36',
    env: 'mobile',
    method: 'h5',
  },
  {
    name: 'QQ Browser Android',
    ua: 'Mozilla/5.0 (Linux; U; Android 9; zh-cn; vivo X21 Build/PKQ1.180819.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/66.0.3359.126 MQQBrowser/9.9 Mobile Safari/537.36',
    env: 'mobile',
    method: 'h5',
  },
  {
    name: 'QQ app iOS',
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 10_0_2 like Mac OS X) AppleWebKit/602.1.50 (KHTML, like Gecko) Mobile/14A456 QQ/6.5.3.410 V1_IPH_SQ_6.5.3_1_APP_A Pixel/1080 Core/UIWebView NetType/WIFI Mem/26',
    env: 'mobile',
    method: 'h5',
  },
  {
    name: 'UC Android',
    ua: 'Mozilla/5.0 (Linux; U; Android 6.0.1; en-US; Lenovo P2a42 Build/MMB29M) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 UCBrowser/11.2.0.915 U3/0.8.0 Mobile Safari/534.30',
    env: 'mobile',
    method: 'h5',
  },
  {
    name: 'Alipay Android',
    ua: 'Mozilla/5.0 (Linux; U; Android 10; zh-CN; V2034A Build/QP1A.190711.020) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/69.0.3497.100 UWS/3.22.2.33 Mobile Safari/537.36 UCBS/3.22.2.33_211025173018 NebulaSDK/1.8.100112 Nebula AlipayDefined(nt:WIFI,ws:360|0|2.0) AliApp(AP/10.2.51.7100) AlipayClient/10.2.51.7100 Language/zh-Hans useStatusBar/true isConcaveScreen/true Region/CNAriver/1.0.0',
    env: 'mobile',
    method: 'h5',
  },
  {
    name: 'Alipay iOS',
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 11_2_6 like Mac OS X) AppleWebKit/604.5.6 (KHTML, like Gecko) Mobile/15D100 ChannelId(27) NebulaSDK/1.8.100112 Nebula PSDType(1) AlipayDefined(nt:WIFI,ws:414|672|3.0) AliApp(AP/10.1.18.449) AlipayClient/10.1.18.449 Alipay Language/zh-Hans',
    env: 'mobile',
    method: 'h5',
  },
  {
    name: 'Weibo iOS',
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 12_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/16A366 Weibo (iPhone8,2__weibo__8.9.3__iphone__os12.0)',
    env: 'mobile',
    method: 'h5',
  },
  {
    name: 'desktop Chrome (Mac)',
    ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/84.0.4147.89 Safari/537.36',
    env: 'desktop',
    method: 'native',
  },
  {
    name: 'desktop Chrome (Windows)',
    ua: 'Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.110 Safari/537.36',
    env: 'desktop',
    method: 'native',
  },
  // Not from FACTS: common shapes for the remaining classes the brief names.
  {
    name: 'desktop Firefox (Windows)',
    ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0',
    env: 'desktop',
    method: 'native',
  },
  {
    name: 'iPad Safari (iOS 12)',
    ua: 'Mozilla/5.0 (iPad; CPU OS 12_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1 Mobile/15E148 Safari/604.1',
    env: 'mobile',
    method: 'h5',
  },
  {
    name: 'Android tablet Chrome (no "Mobile" token)',
    ua: 'Mozilla/5.0 (Linux; Android 12; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/110.0.0.0 Safari/537.36',
    env: 'mobile',
    method: 'h5',
  },
];

describe('detectBrowser + payMethodFor', () => {
  it.each(cases)('When the UA is $name, then env is $env and the method is $method', ({ ua, env, method, wechatVersion }) => {
    const detected = detectBrowser(ua);
    expect(detected.env).toBe(env);
    expect(payMethodFor(detected.env)).toBe(method);
    if (wechatVersion !== undefined) expect(detected.wechatVersion).toBe(wechatVersion);
  });

  it('When the UA is WeCom, then no WeChat version is claimed (its MicroMessenger token is fake)', () => {
    expect(detectBrowser(cases.find((c) => c.name === 'WeCom iOS')!.ua).wechatVersion).toBeUndefined();
  });

  it('When a UA is parsed, then browser and OS names from ua-parser are passed through', () => {
    expect(detectBrowser(cases.find((c) => c.name === 'Mobile Safari iOS')!.ua)).toEqual({
      env: 'mobile',
      browser: 'Mobile Safari',
      os: 'iOS',
    });
    expect(detectBrowser(cases.find((c) => c.name === 'Alipay iOS')!.ua)).toMatchObject({ browser: 'Alipay', os: 'iOS' });
  });

  it.each([undefined, '', '   '])('When the UA is %p, then it is treated as desktop (QR code)', (ua) => {
    expect(detectBrowser(ua)).toEqual({ env: 'desktop' });
    expect(payMethodFor('desktop')).toBe('native');
  });

  it('When the UA is unrecognisable, then it falls back to desktop', () => {
    expect(detectBrowser('curl/8.5.0').env).toBe('desktop');
  });

  it('When Mac WeChat (MacWechat token) is seen, then it is desktop WeChat with a QR code', () => {
    // UNVERIFIED shape (FACTS §8 found no real MacWechat UA); built from the documented token.
    const ua =
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) MicroMessenger/6.8.0(0x16080000) MacWechat/3.8.7(0x13080710) Safari/605.1.15 NetType/WIFI';
    expect(detectBrowser(ua)).toMatchObject({ env: 'wechat_desktop', wechatVersion: '6.8.0' });
  });

  it('When another vendor\'s mini-program web-view says "MiniProgram" without MicroMessenger, then it is a plain mobile browser', () => {
    const ua =
      'Mozilla/5.0 (iPhone; CPU iPhone OS 11_2_6 like Mac OS X) AppleWebKit/604.5.6 (KHTML, like Gecko) Mobile/15D100 AliApp(AP/10.1.18.449) AlipayClient/10.1.18.449 Alipay Language/zh-Hans MiniProgram';
    expect(detectBrowser(ua).env).toBe('mobile');
  });

  it('When the mini-program token has a different case, then it is still recognised', () => {
    const ua =
      'Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.40(0x18002831) NetType/WIFI Language/zh_CN MiniProgramEnv/iOS';
    expect(detectBrowser(ua).env).toBe('miniprogram');
  });
});

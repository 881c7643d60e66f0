import { UAParser } from 'ua-parser-js';

/**
 * Where the checkout page is being opened. ua-parser-js names every WeChat-family
 * web-view "WeChat" (WeCom and mini-program web-views included), so the WeChat tokens
 * are matched here, in the order FACTS §8 gives: wxwork → miniProgram → desktop → mobile.
 */
export type BrowserEnv = 'wechat' | 'wechat_desktop' | 'wecom' | 'miniprogram' | 'mobile' | 'desktop';

export type PayMethod = 'jsapi' | 'h5' | 'native' | 'unsupported';

export interface DetectedBrowser {
  env: BrowserEnv;
  browser?: string;
  os?: string;
  /** From `MicroMessenger/<ver>`; not the QBCore version ua-parser reports for old Windows WeChat. */
  wechatVersion?: string;
}

// WeCom also sends MicroMessenger (and WindowsWechat on Windows), so it must be tested first.
const WECOM = /\bwxwork\//i;
// Best effort: some iOS builds omit it; the page-side check is window.__wxjs_environment.
// Only counted next to MicroMessenger: other vendors' mini-program web-views (Alipay…) use the word too.
const MINI_PROGRAM = /miniprogram/i;
const MICRO_MESSENGER = /\bMicroMessenger\/([\d.]+)/i;
const WECHAT_DESKTOP = /\b(?:WindowsWechat|MacWechat)\b/i;
const MOBILE_OS = new Set(['Android', 'iOS', 'HarmonyOS']);

export function detectBrowser(ua: string | undefined): DetectedBrowser {
  const raw = ua?.trim() ?? '';
  if (!raw) return { env: 'desktop' };

  const result = new UAParser(raw).getResult();
  const base = {
    ...(result.browser.name ? { browser: result.browser.name } : {}),
    ...(result.os.name ? { os: result.os.name } : {}),
  };

  if (WECOM.test(raw)) return { env: 'wecom', ...base };

  const mm = MICRO_MESSENGER.exec(raw);
  const wechatVersion = mm ? { wechatVersion: mm[1] } : {};
  if (mm && MINI_PROGRAM.test(raw)) return { env: 'miniprogram', ...base, ...wechatVersion };
  if (mm && WECHAT_DESKTOP.test(raw)) return { env: 'wechat_desktop', ...base, ...wechatVersion };
  if (mm) return { env: 'wechat', ...base, ...wechatVersion };

  const device = result.device.type;
  const mobile = device === 'mobile' || device === 'tablet' || (result.os.name !== undefined && MOBILE_OS.has(result.os.name));
  return { env: mobile ? 'mobile' : 'desktop', ...base };
}

/**
 * Payment product per environment (FACTS §1, §8): JSAPI needs MicroMessenger; H5 is refused inside
 * WeChat and needs a mobile browser; desktop WeChat support is undocumented, so it gets the QR code;
 * WeCom and mini-program web-views can run neither JSAPI nor H5.
 */
export function payMethodFor(env: BrowserEnv): PayMethod {
  switch (env) {
    case 'wechat':
      return 'jsapi';
    case 'mobile':
      return 'h5';
    case 'desktop':
    case 'wechat_desktop':
      return 'native';
    case 'wecom':
    case 'miniprogram':
      return 'unsupported';
  }
}

/**
 * The WeChat Pay simulator: one Express 5 app standing in for api.mch.weixin.qq.com (APIv3),
 * api.weixin.qq.com (/sns) and open.weixin.qq.com (/connect), plus the payer-facing pages and /_sim controls.
 * Strict on purpose: what WeChat rejects, it rejects. Shares no code with src/channels.
 */
import { randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { SimContext, SimKeys, SimOptions, SimTransaction } from './context';
import { authMiddleware, fail as sendFail, recordCalls, reply as sendReply, signHeaders } from './auth';
import { addFail, addHold, addTimeout, faultMiddleware, newFaultState, releaseHeld, type FailOptions } from './faults';
import { Notifier, WECHAT_NOTIFY_RETRY_SCHEDULE_MS, type NotifyAttempt, type NotifyFaults, type NotifyRecord } from './notify/notifier';
import { createOauthRouter } from './oauth/router';
import { createPagesRouter } from './payments/pages';
import { createPaymentsRouter } from './payments/router';
import { createPartnerPaymentsRouter } from './partner/router';
import { createPartnerControlRouter, partnerControl, type PartnerControl } from './partner/bindings';
import { payTransaction, type PayOutcome } from './payments/transactions';
import { createControlRouter } from './control/router';
import { attachStateFile } from './persist';
import { encryptResource, rfc3339Beijing } from './sim-crypto';
import type { NotifyUrlPolicy, SigningMode, SimRuntime } from './runtime';
import { createRefundControlRouter, createRefundsRouter, refundControl, type RefundControl } from './refunds/router';
import { createBillsRouter, type BillOptions } from './bills/router';
import { billControl, resetBillStore, type BillControl } from './bills/store';
import { createBillControlRouter } from './bills/control';
import { createProfitSharingControl, createProfitSharingRouter, profitSharingControl, type ProfitSharingControl } from './profitsharing/router';

export type SimulatorOptions = { keys: SimKeys & { merchantCertSerial?: string }; publicBaseUrl?: string } & Partial<
  Omit<SimOptions, 'profitSharing'>
> & {
    profitSharing?: Partial<SimOptions['profitSharing']>;
    /** 'https-public' (default, WeChat's rule) or 'any-no-query' (local sandbox and tests: http://127.0.0.1 allowed). */
    notifyUrlPolicy?: NotifyUrlPolicy;
    /** Hosts registered as 网页授权域名 for OAuth redirect_uri. */
    oauthDomains?: string[];
    /** Other apps (appid -> secret) the simulated WeChat knows, e.g. a mini program; their openids don't match opts.appid. */
    extraApps?: Record<string, string>;
    /** 支付授权目录 prefixes for JSAPI pages (empty = not checked). */
    jsapiPayDirs?: string[];
    /** Start in certificate mode (sign with the platform certificate) instead of public-key mode. */
    signingMode?: SigningMode;
    notifyTimeoutMs?: number;
    /** Express 'trust proxy' (the H5 IP check uses req.ip). Default false. */
    trustProxy?: boolean | string | number;
    viewsDir?: string;
    /** Keep orders, QR codes and split orders in this file across restarts (the sandbox's .data/). */
    stateFile?: string;
    /** Bill publication (the sandbox publishes at once) and download URL lifetime. */
    bills?: BillOptions;
  };

export interface SimControl {
  /** Pays an unpaid order as the user would (sends the notify). */
  pay(outTradeNo: string, o?: { payerTotal?: number }): PayOutcome;
  faults: {
    failNext(n: number, o?: FailOptions): void;
    timeoutNext(n: number, o?: Omit<FailOptions, 'status' | 'code' | 'message'>): void;
    /** Holds the next n matching calls until release() (they are then processed normally). */
    holdNext(n: number, o?: Pick<FailOptions, 'pathPrefix' | 'method'>): void;
    /** Calls held right now. */
    held(): number;
    release(): number;
    latency(ms: number): void;
    clear(): void;
  };
  notifyFaults(f: Partial<NotifyFaults>): void;
  releaseNotifies(o?: { reverse?: boolean }): number;
  /** Every delivery attempt (attempt number, copy, probe or real, status). */
  readonly notifies: NotifyAttempt[];
  /** Every notify created (decrypted payload in `plaintext`). */
  readonly notifyRecords: NotifyRecord[];
  readonly calls: SimContext['calls'];
  setSigningMode(mode: SigningMode): void;
  advanceTime(ms: number): void;
  /** Resolves when cond() is true (polls every 10 ms), rejects after timeoutMs. */
  waitFor(cond: () => boolean, timeoutMs?: number): Promise<void>;
  transaction(outTradeNo: string): SimTransaction | undefined;
  /** Clears orders, calls, faults, notifies (cancelling retries), OAuth codes and the clock offset. */
  reset(): void;
  /** Stops retry timers (call before closing). */
  stop(): void;
  /** Programmatic controls of the profit-sharing stand-in. */
  profitSharing: ProfitSharingControl;
  /** Refund outcomes and the merchant's balances. */
  refunds: RefundControl;
  /** Bill fault controls (drop / alter / add a line, wrong hash, not ready). */
  bills: BillControl;
  /** Service-provider mode: the bound sub-merchants and the ratio each authorised. */
  partner: PartnerControl;
}

export interface Simulator {
  app: express.Express;
  ctx: SimRuntime;
  control: SimControl;
}

const DEFAULTS: SimOptions = {
  mchid: '1900000109',
  appid: 'wxd678efh567hg6787',
  appSecret: 'sim_app_secret_0123456789abcdef',
  merchantCertSerial: '',
  notifyRetryScheduleMs: WECHAT_NOTIFY_RETRY_SCHEDULE_MS,
  maxClockSkewSeconds: 300,
  h5Domains: [],
  refundResultDelayMs: 1_000,
  partner: undefined,
  profitSharing: {
    receiverLimit: 50,
    maxRatio: 0.3,
    maxRequestsPerOrder: 50,
    minDelayAfterPayMs: 60_000,
    resultDelayMs: 1_000,
    ratePerSecond: 0,
    spRatePerSecond: 300,
    subRatePerSecond: 30,
    perOrderRatePerSecond: 1,
    feeRate: 0.006,
    windowDays: 30,
  },
};

function findViewsDir(): string {
  for (const c of [resolve(__dirname, '../../views'), resolve(__dirname, '../../../views'), resolve(process.cwd(), 'views')])
    if (existsSync(join(c, 'simulator'))) return c;
  return resolve(__dirname, '../../views');
}

export function createSimulator(options: SimulatorOptions): Simulator {
  const keys = options.keys;
  const opts: SimOptions = {
    ...DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([k, v]) => k in DEFAULTS && v !== undefined)),
    merchantCertSerial: options.merchantCertSerial ?? keys.merchantCertSerial ?? '',
    profitSharing: { ...DEFAULTS.profitSharing, ...options.profitSharing },
  } as SimOptions;
  if (!/^[0-9A-Fa-f]{8,40}$/.test(opts.merchantCertSerial)) throw new Error('merchantCertSerial (or keys.merchantCertSerial) is required');

  const rt = {} as SimRuntime;
  Object.assign(rt, {
    opts,
    keys,
    calls: [],
    transactions: { byOutTradeNo: new Map(), byTransactionId: new Map() },
    publicBaseUrl: options.publicBaseUrl?.replace(/\/$/, ''),
    notifyUrlPolicy: options.notifyUrlPolicy ?? 'https-public',
    oauthDomains: options.oauthDomains ?? [],
    oauthApps: { ...(options.extraApps ?? {}), [opts.appid]: opts.appSecret },
    jsapiPayDirs: options.jsapiPayDirs ?? [],
    notifyTimeoutMs: options.notifyTimeoutMs ?? 5_000,
    signingMode: options.signingMode ?? 'public-key',
    clockOffsetMs: 0,
    extras: new Map(),
    prepayIndex: new Map(),
    codeIndex: new Map(),
    h5Tickets: new Map(),
    oauthCodes: new Map(),
    openidApps: new Map(),
    faults: newFaultState(),
    userSecret: randomBytes(16).toString('hex'),
    hung: new Set(),
  } satisfies Partial<SimRuntime>);
  rt.now = () => Date.now() + rt.clockOffsetMs;
  rt.reply = (res, status, body) => sendReply(rt, res, status, body);
  rt.fail = (res, status, code, message, detail) => sendFail(rt, res, status, code, message, detail);
  rt.baseUrlFor = (req: Request) => rt.publicBaseUrl ?? `${req.protocol}://${req.get('host')}`;
  rt.signingIdentity = () => {
    if (rt.signingMode === 'certificate') {
      if (!keys.platformCertificate) throw new Error('certificate mode needs keys.platformCertificate');
      return { serial: keys.platformCertificate.serial, key: keys.platformCertificate.privateKey };
    }
    return { serial: keys.platformPublicKeyId, key: keys.platformPrivateKey };
  };
  rt.signHeaders = (body: string) => signHeaders(rt, body);
  rt.extraFor = (tx) => {
    let e = rt.extras.get(tx.outTradeNo);
    if (!e) rt.extras.set(tx.outTradeNo, (e = {}));
    return e;
  };
  rt.platformKeyFor = (serial: string): KeyObject | undefined => {
    if (serial === keys.platformPublicKeyId) return keys.platformPrivateKey;
    if (keys.platformCertificate && serial === keys.platformCertificate.serial) return keys.platformCertificate.privateKey;
    return undefined;
  };
  rt.notifier = new Notifier(rt, () => opts.notifyRetryScheduleMs);
  rt.sendNotify = (a) => rt.notifier.send(a);
  const state = options.stateFile ? attachStateFile(rt, options.stateFile) : undefined;

  const control: SimControl = {
    pay(outTradeNo, o = {}) {
      const tx = rt.transactions.byOutTradeNo.get(outTradeNo);
      if (!tx) return { ok: false, status: 404, reason: '订单不存在' };
      state?.schedule();
      return payTransaction(rt, tx, o);
    },
    faults: {
      failNext: (n, o) => addFail(rt.faults, n, o),
      timeoutNext: (n, o) => addTimeout(rt.faults, n, o),
      holdNext: (n, o) => addHold(rt.faults, n, o),
      held: () => rt.faults.held.length,
      release: () => releaseHeld(rt.faults),
      latency: (ms) => void (rt.faults.latencyMs = Math.max(0, ms)),
      clear: () => {
        rt.faults.rules = [];
        rt.faults.latencyMs = 0;
        releaseHeld(rt.faults);
      },
    },
    notifyFaults: (f) => {
      const cur = rt.notifier.faults;
      rt.notifier.faults = {
        duplicate: Math.max(0, Math.floor(f.duplicate ?? cur.duplicate)),
        delayMs: Math.max(0, f.delayMs ?? cur.delayMs),
        signTestFirst: f.signTestFirst ?? cur.signTestFirst,
        hold: f.hold ?? cur.hold,
      };
    },
    releaseNotifies: (o) => rt.notifier.release(o),
    get notifies() {
      return rt.notifier.log;
    },
    get notifyRecords() {
      return rt.notifier.records;
    },
    get calls() {
      return rt.calls;
    },
    setSigningMode: (mode) => {
      if (mode === 'certificate' && !keys.platformCertificate) throw new Error('keys have no platformCertificate');
      rt.signingMode = mode;
    },
    advanceTime: (ms) => void (rt.clockOffsetMs += ms),
    waitFor: (cond, timeoutMs = 5_000) =>
      new Promise<void>((res, rej) => {
        const start = Date.now();
        const tick = () => {
          if (cond()) return res();
          if (Date.now() - start > timeoutMs) return rej(new Error('simulator waitFor timed out'));
          setTimeout(tick, 10);
        };
        tick();
      }),
    transaction: (no) => rt.transactions.byOutTradeNo.get(no),
    reset: () => {
      rt.calls.length = 0;
      rt.transactions.byOutTradeNo.clear();
      rt.transactions.byTransactionId.clear();
      for (const m of [rt.extras, rt.prepayIndex, rt.codeIndex, rt.h5Tickets, rt.oauthCodes, rt.openidApps]) m.clear();
      control.faults.clear();
      rt.notifier.reset();
      rt.clockOffsetMs = 0;
      rt.signingMode = options.signingMode ?? 'public-key';
      for (const res of rt.hung) res.socket?.destroy();
      rt.hung.clear();
      control.profitSharing.reset();
      control.refunds.reset();
      resetBillStore(rt);
      control.partner.reset();
    },
    profitSharing: profitSharingControl(rt),
    bills: billControl(rt),
    refunds: refundControl(rt),
    partner: partnerControl(rt),
    stop: () => {
      releaseHeld(rt.faults);
      state?.flush();
      state?.stop();
      rt.notifier.stop();
      control.refunds.reset();
      for (const res of rt.hung) res.socket?.destroy();
      rt.hung.clear();
    },
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', options.trustProxy ?? false);
  app.set('views', options.viewsDir ?? findViewsDir());
  app.set('view engine', 'ejs');

  if (state) {
    app.use((_req, res, next) => {
      res.once('finish', () => state.schedule());
      next();
    });
  }
  app.use(['/v3', '/sns'], recordCalls(rt));
  app.use('/v3', express.raw({ type: () => true, limit: '2mb' }), authMiddleware(rt), faultMiddleware(rt));
  app.use('/v3/pay/transactions', createPaymentsRouter(rt));
  app.use('/v3/pay/partner/transactions', createPartnerPaymentsRouter(rt));

  // Platform certificates: only meaningful for merchants that still have them (FACTS §3).
  app.get('/v3/certificates', (_req, res) => {
    const pc = keys.platformCertificate;
    // UNVERIFIED code: merchants without platform certificates get an error ("证书不存在").
    if (!pc) return rt.fail(res, 404, 'RESOURCE_NOT_EXISTS', '证书不存在');
    const x = new X509Certificate(pc.certificatePem);
    rt.reply(res, 200, {
      data: [
        {
          serial_no: pc.serial,
          effective_time: rfc3339Beijing(Date.parse(x.validFrom)),
          expire_time: rfc3339Beijing(Date.parse(x.validTo)),
          encrypt_certificate: encryptResource(keys.apiv3Key, pc.certificatePem, 'certificate'),
        },
      ],
    });
  });

  // Bills before profit sharing: /v3/profitsharing/bills is a bill endpoint.
  app.use('/v3', createBillsRouter(rt, options.bills));
  app.use('/_sim/bills', express.json(), createBillControlRouter(control.bills));
  // Profit sharing (its own module), behind the same auth + faults; its controls get a JSON body parser.
  app.use('/v3/profitsharing', createProfitSharingRouter(rt));
  app.use('/_sim/profitsharing', express.json(), createProfitSharingControl(rt));
  app.use('/v3/refund/domestic', createRefundsRouter(rt));
  app.use('/_sim/refunds', createRefundControlRouter(rt));
  app.use('/_sim/partner', createPartnerControlRouter(control.partner));

  app.use('/v3', (req, res) => rt.fail(res, 404, 'NOT_FOUND', `无此接口：${req.method} ${req.originalUrl.split('?')[0]}`));

  app.use(createOauthRouter(rt));
  app.use(createPagesRouter(rt));
  app.use('/_sim', createControlRouter(rt, control));

  // For a person who opens the simulator's address in a browser.
  app.get('/', (_req, res) =>
    res.render('simulator/message', {
      title: '微信支付模拟器',
      heading: '微信支付模拟器',
      message: `商户号 ${opts.mchid} · 已有 ${rt.transactions.byOutTradeNo.size} 笔订单。本服务代替 api.mch.weixin.qq.com 供网关调用；付款请在收银台页面点击“模拟扫码”或打开 H5 支付链接。`,
      tone: 'ok',
    }),
  );
  app.get('/favicon.ico', (_req, res) => void res.status(204).set('Cache-Control', 'public, max-age=86400').end());
  app.use((req, res) => res.status(404).render('simulator/message', { title: '微信支付', heading: '页面不存在', message: `无此页面：${req.method} ${req.path}`, tone: 'err' }));

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return;
    const status = (err as { status?: number }).status ?? 500;
    if (req.originalUrl.startsWith('/v3')) {
      if (status === 413) return rt.fail(res, 400, 'PARAM_ERROR', '请求体过大');
      return rt.fail(res, 500, 'SYSTEM_ERROR', '系统异常，请稍后重试');
    }
    res.status(status).json({ error: err instanceof Error ? err.message : String(err) });
  });

  return { app, ctx: rt, control };
}

export interface RunningSimulator extends Simulator {
  url: string;
  close(): Promise<void>;
}

/** Listens (default 127.0.0.1:0); publicBaseUrl defaults to the listening URL. */
export async function startSimulator(options: SimulatorOptions & { port?: number; host?: string }): Promise<RunningSimulator> {
  const sim = createSimulator(options);
  const host = options.host ?? '127.0.0.1';
  const server = await new Promise<import('node:http').Server>((res, rej) => {
    const s = sim.app.listen(options.port ?? 0, host, (err?: Error) => (err ? rej(err) : res(s)));
    s.on('error', rej);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  sim.ctx.publicBaseUrl ??= url;
  return {
    ...sim,
    url,
    close: async () => {
      sim.control.stop();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

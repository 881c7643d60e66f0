/** Internal state of the core simulator: SimContext (shared with profit sharing) plus what only the core needs. */
import type { Request, Response } from 'express';
import type { SimContext, SimTransaction } from './context';
import type { FaultState } from './faults';
import type { Notifier } from './notify/notifier';

export type NotifyUrlPolicy = 'https-public' | 'any-no-query';
export type SigningMode = 'public-key' | 'certificate';

export interface SimOrderExtra {
  prepayId?: string;
  prepayCreatedAtMs?: number;
  codeToken?: string;
  codeCreatedAtMs?: number;
  closedAtMs?: number;
}

export interface SimH5Ticket {
  outTradeNo: string;
  prepayId: string;
  packageToken: string;
  createdAtMs: number;
}

export interface SimOauthCode {
  appid: string;
  openid: string;
  scope: string;
  createdAtMs: number;
  used: boolean;
}

export interface SimRuntime extends SimContext {
  publicBaseUrl?: string;
  notifyUrlPolicy: NotifyUrlPolicy;
  /** Hosts registered as 网页授权域名 (OAuth redirect_uri). */
  oauthDomains: string[];
  /** appid -> AppSecret of every app the simulated WeChat knows (the bound one plus e.g. a mini program). */
  oauthApps: Record<string, string>;
  /** 支付授权目录: JSAPI pages must live under one of these URL prefixes (empty = not checked). */
  jsapiPayDirs: string[];
  notifyTimeoutMs: number;
  signingMode: SigningMode;
  clockOffsetMs: number;
  extras: Map<string, SimOrderExtra>;
  prepayIndex: Map<string, string>;
  codeIndex: Map<string, string>;
  h5Tickets: Map<string, SimH5Ticket>;
  oauthCodes: Map<string, SimOauthCode>;
  /** openid -> appid it was issued for (appid/openid mismatch check). */
  openidApps: Map<string, string>;
  faults: FaultState;
  notifier: Notifier;
  /** Secret that derives stable openids from the browser cookie. */
  userSecret: string;
  baseUrlFor(req: Request): string;
  signingIdentity(): { serial: string; key: import('node:crypto').KeyObject };
  signHeaders(body: string): Record<string, string>;
  /** Responses held open by a timeout fault; destroyed on reset/close. */
  hung: Set<Response>;
  extraFor(tx: SimTransaction): SimOrderExtra;
}

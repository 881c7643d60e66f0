import type pino from 'pino';
import type { Config } from '../config/config';
import type { ChannelCallObserver, PaymentChannel } from './channel';
import { createWechatPayChannel, wechatPayConfigFromAppConfig, type ReadFile } from './wechatpay/wechatpay.channel';

/**
 * name → PaymentChannel factory. A second channel (Alipay) is one more entry, not a `switch`
 * spread through services. Channels are built lazily, once, so a channel that is never used
 * does not need its keys.
 */
export type ChannelFactory = () => PaymentChannel;

export interface ChannelRegistry {
  get(name: string): PaymentChannel;
  has(name: string): boolean;
  names(): string[];
}

export function createChannelRegistry(factories: Record<string, ChannelFactory>): ChannelRegistry {
  const built = new Map<string, PaymentChannel>();
  return {
    get(name) {
      const existing = built.get(name);
      if (existing) return existing;
      const factory = Object.prototype.hasOwnProperty.call(factories, name) ? factories[name] : undefined;
      if (!factory) throw new Error(`unknown payment channel "${name}"`);
      const channel = factory();
      built.set(name, channel);
      return channel;
    },
    has: (name) => Object.prototype.hasOwnProperty.call(factories, name),
    names: () => Object.keys(factories),
  };
}

/** The channels of this gateway, built from the app config. */
export function defaultChannelFactories(config: Config, readFile: ReadFile, logger?: pino.Logger, onCall?: ChannelCallObserver): Record<string, ChannelFactory> {
  return {
    wechatpay: () => createWechatPayChannel({ ...wechatPayConfigFromAppConfig(config, readFile), onCall }, logger),
  };
}

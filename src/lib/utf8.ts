import { z } from 'zod';

/**
 * WeChat Pay limits text fields in BYTES of UTF-8, not characters: `description` string(127) is
 * refused at 135 bytes ("字节数 144，大于最大值 127", JeffreySu/WeiXinMPSDK#3217). A Chinese
 * character is 3 bytes, so 43 of them already pass 127.
 */
export function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** The channel's byte limits (UTF-8) of the fields merchants give us. */
export const WECHAT_BYTE_LIMITS = {
  description: 127, // POST /v3/pay/transactions/* description string(127)
  attach: 128, // attach string(128)
  receiverDescription: 80, // /v3/profitsharing/orders receivers[].description string(80)
  unfreezeDescription: 80, // /v3/profitsharing/orders/unfreeze description string(80)
} as const;

/** A zod string check: at most `max` bytes of UTF-8, with a message naming the byte limit. */
export function maxUtf8Bytes<T extends z.ZodString>(schema: T, max: number): T {
  return schema.refine((s) => utf8Bytes(s) <= max, {
    error: (iss) => `must be at most ${max} bytes of UTF-8 (WeChat Pay counts bytes; a Chinese character is 3), got ${utf8Bytes(String(iss.input))}`,
  }) as unknown as T;
}

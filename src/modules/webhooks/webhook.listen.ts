import { Client } from 'pg';
import type { Logger } from '../../lib/logger';
import { EVENTS_CHANNEL } from './webhook.publish';

/**
 * LISTENs for events committed by any instance (publishEvent NOTIFYs in the event's transaction)
 * and calls `onEvent`. Only a shortcut: the dispatcher's poll still finds everything if this
 * connection is down (it reconnects after 5 s).
 */
export function listenForEvents(databaseUrl: string, logger: Logger, onEvent: () => void): { stop(): Promise<void> } {
  let client: Client | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = async () => {
    const c = new Client({ connectionString: databaseUrl });
    client = c;
    const lost = (err?: Error) => {
      if (client !== c) return;
      client = null;
      c.end().catch(() => undefined);
      if (stopped) return;
      logger.warn({ err }, 'webhook LISTEN connection lost; polling until it is back');
      retry = setTimeout(() => void connect(), 5_000);
    };
    c.on('error', lost);
    c.on('end', () => lost());
    c.on('notification', () => onEvent());
    try {
      await c.connect();
      await c.query(`LISTEN ${EVENTS_CHANNEL}`);
    } catch (err) {
      lost(err as Error);
    }
  };
  void connect();
  return {
    async stop() {
      stopped = true;
      clearTimeout(retry);
      const c = client;
      client = null;
      await c?.end().catch(() => undefined);
    },
  };
}

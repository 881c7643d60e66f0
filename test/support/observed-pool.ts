import { Pool, type PoolClient } from 'pg';

/** A pg pool that reports every statement its connections send (text and parameters): one call = one round trip. */
export function observedPool(url: string, onQuery: (q: { text: string; values: unknown[] }) => void): Pool {
  const pool = new Pool({ connectionString: url });
  pool.on('connect', (client: PoolClient) => {
    const query = client.query.bind(client) as (...a: unknown[]) => unknown;
    (client as unknown as { query: (...a: unknown[]) => unknown }).query = (...a: unknown[]) => {
      const q = a[0] as string | { text?: string; values?: unknown[] };
      onQuery(typeof q === 'string' ? { text: q, values: (a[1] as unknown[]) ?? [] } : { text: String(q?.text), values: q?.values ?? [] });
      return query(...a);
    };
  });
  return pool;
}

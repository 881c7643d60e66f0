import { createHash } from 'node:crypto';

/**
 * Names parameterised SQL for PostgreSQL's per-connection plan cache (the pg driver adapter's
 * `statementNameGenerator`): a named statement is parsed and planned once per connection, then
 * bound and executed. Measured under the bench (pg_stat_statements): planning the notify's
 * one-statement apply cost PostgreSQL 2.0 ms per notify, more than executing it.
 *
 * - Only statements with parameters are named: they already use the extended protocol, so naming
 *   changes nothing else (an unparameterised text may hold several statements, which a prepared
 *   statement cannot).
 * - At most `maxNames` distinct texts per process are named (each costs the server some memory on
 *   every connection); later ones run unnamed, as before.
 * - A name is a hash of the text, so every process and connection agrees on it.
 * - A text holding PLAN_EACH_TIME stays unnamed: a work-list claim on a table that a burst fills from
 *   empty. Its plan, cached while the table's statistics said "empty", scanned the whole table on
 *   every claim (4–6 ms each in the bench) until the next autoanalyze; planning it costs ~0.1 ms.
 * Off (`DATABASE_PREPARED_STATEMENTS=false`) for a pooler that cannot carry prepared statements
 * (PgBouncer in transaction mode before 1.21, or without `max_prepared_statements`).
 */
/** Put in a statement's text to have it planned on every run (see statementNamer). */
export const PLAN_EACH_TIME = '/* plan each time */';

export function statementNamer(maxNames = 2000): (query: { sql: string; args: unknown[] }) => string | undefined {
  const names = new Map<string, string>();
  return (query) => {
    if (query.args.length === 0 || query.sql.includes(PLAN_EACH_TIME)) return undefined;
    const known = names.get(query.sql);
    if (known !== undefined || names.size >= maxNames) return known;
    const name = `gw_${createHash('sha1').update(query.sql).digest('base64url').slice(0, 24)}`;
    names.set(query.sql, name);
    return name;
  };
}

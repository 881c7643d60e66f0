import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Client } from 'pg';

/**
 * `prisma migrate deploy` without the Prisma CLI (its native schema engine cannot be fetched
 * offline): the same folders, the same `_prisma_migrations` rows, so either tool can take over.
 */

export interface Migration {
  name: string;
  sql: string;
  /** sha256 hex of migration.sql, as Prisma records it. */
  checksum: string;
}

export type MigrationLog = (message: string) => void;

/** Same key as Prisma's schema engine, so the two never run at once. */
const ADVISORY_LOCK_KEY = 72707369;

// The table exactly as Prisma's schema engine creates it on PostgreSQL.
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}

/** prisma/migrations of this project, found upward from here (works from src/ and dist/). */
export function defaultMigrationsDir(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'prisma', 'migrations');
    if (existsSync(join(candidate, 'migration_lock.toml'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`no prisma/migrations/migration_lock.toml above ${__dirname}`);
  }
}

/** Migration folders holding a migration.sql, in Prisma's order (by name). */
export function listMigrations(migrationsDir: string): Migration[] {
  return readdirSync(migrationsDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(migrationsDir, e.name, 'migration.sql')))
    .map((e) => e.name)
    .sort((a, b) => a.localeCompare(b))
    .map((name) => {
      const sql = readFileSync(join(migrationsDir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: migrationChecksum(sql) };
    });
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

/**
 * Applies pending migrations in order, each as one multi-statement script (one implicit
 * transaction, as Prisma runs it), recording start, step count and finish. A failed migration
 * is recorded with its error in `logs` and blocks later runs until resolved, as with Prisma.
 */
export async function applyMigrations(
  databaseUrl: string,
  log: MigrationLog = () => undefined,
  migrationsDir: string = defaultMigrationsDir(),
): Promise<{ applied: string[] }> {
  const migrations = listMigrations(migrationsDir);
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEY]);
    await client.query(CREATE_MIGRATIONS_TABLE);
    const { rows } = await client.query<AppliedRow>(
      'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at',
    );
    const failed = rows.filter((r) => r.finished_at === null && r.rolled_back_at === null);
    if (failed.length > 0) {
      throw new Error(
        `failed migrations in the database: ${failed.map((r) => r.migration_name).join(', ')}; ` +
          'fix the database, then run `prisma migrate resolve` (see its logs column in _prisma_migrations)',
      );
    }
    const done = new Map(rows.filter((r) => r.finished_at !== null).map((r) => [r.migration_name, r.checksum]));
    for (const name of done.keys()) {
      if (!migrations.some((m) => m.name === name)) log(`migration ${name} is applied but missing from ${migrationsDir}`);
    }
    const applied: string[] = [];
    for (const m of migrations) {
      const recorded = done.get(m.name);
      if (recorded !== undefined) {
        if (recorded !== m.checksum) log(`migration ${m.name} was modified after it was applied (checksum differs)`);
        continue;
      }
      const id = randomUUID();
      await client.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count)
         VALUES ($1, $2, $3, now(), 0)`,
        [id, m.checksum, m.name],
      );
      const t = Date.now();
      try {
        await client.query(m.sql);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        await client.query('UPDATE "_prisma_migrations" SET logs = $2 WHERE id = $1', [id, message]);
        throw new Error(`migration ${m.name} failed: ${message}`);
      }
      await client.query(
        `UPDATE "_prisma_migrations" SET applied_steps_count = applied_steps_count + 1, finished_at = now() WHERE id = $1`,
        [id],
      );
      log(`applied migration ${m.name} (${Date.now() - t} ms)`);
      applied.push(m.name);
    }
    return { applied };
  } finally {
    await client.end().catch(() => undefined);
  }
}

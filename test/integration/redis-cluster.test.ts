import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createRedis } from '../../src/lib/redis';
import { createRedisRateLimiter } from '../../src/modules/splits/split.limiter';
import { freePort } from '../../scripts/services';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, splitRequests, waitForSplitStatus } from './split-support';

/**
 * The gateway on a Redis Cluster (REDIS_URL=redis+cluster://…): a local 3-master cluster from
 * Debian's redis-server + `redis-cli --cluster create`. The split pipeline (BullMQ queue and worker,
 * payment lock, limiter) must run on it: any multi-key command across slots would fail with CROSSSLOT.
 */
const hasCli = !spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).error && !spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error;
if (!hasCli) process.stderr.write('redis-cluster.test.ts: skipped, redis-cli/redis-server not on PATH (Debian: apt-get install redis-server)\n');
const maybe = hasCli ? describe : describe.skip;

jest.setTimeout(120_000);

/** A free port whose cluster bus port (port + 10000) is free too. */
async function clusterPort(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (p + 10_000 > 65_535) continue;
    const busFree = await new Promise<boolean>((resolve) => {
      const s = createServer().once('error', () => resolve(false));
      s.listen(p + 10_000, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (busFree) return p;
  }
}

maybe('on a 3-master Redis Cluster', () => {
  const servers: ChildProcess[] = [];
  let dir: string;
  let ports: number[];
  let h: Harness;

  const startNode = (port: number) =>
    new Promise<ChildProcess>((resolve, reject) => {
      const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', '5000', '--save', '', '--appendonly', 'no', '--dir', dir, '--maxmemory-policy', 'noeviction'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      const timer = setTimeout(() => reject(new Error(`redis-server ${port} did not start: ${out}`)), 15_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          child.stdout!.removeAllListeners('data').resume();
          resolve(child);
        }
      });
      child.stderr!.resume();
      child.once('exit', (code) => reject(new Error(`redis-server ${port} exited ${code}: ${out}`)));
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-redis-cluster-'));
    ports = [await clusterPort(), await clusterPort(), await clusterPort()];
    for (const p of ports) servers.push(await startNode(p));
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    for (let i = 0; i < 200; i++) {
      const info = spawnSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'info'], { encoding: 'utf8' }).stdout;
      if (info.includes('cluster_state:ok')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    h = await startHarness({
      env: { REDIS_URL: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, PROFIT_SHARING_RECEIVER_LIMIT: '5', PROFIT_SHARING_POLL_MS: '20', RECONCILE_INTERVAL_MS: '60000' },
    });
    await h.startBackground();
  });

  afterAll(async () => {
    await h?.close();
    await Promise.all(servers.map((s) => new Promise((r) => {
      s.once('exit', r);
      s.kill('SIGTERM');
    })));
    rmSync(dir, { recursive: true, force: true });
  });

  it('When a planned payment is paid, then its split runs to the end through the queue, lock and limiter on the cluster', async () => {
    const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(7, 100, 'rc-') } });
    const s = await waitForSplitStatus(h, id, ['succeeded', 'partially_failed', 'failed'], 30_000);
    expect(s.status).toBe('succeeded');
    expect(s.batches).toHaveLength(2);
    expect(new Set(splitRequests(h, transactionId).map((r) => r.outOrderNo)).size).toBe(2);
    // The queue's keys all hash to one slot (its prefix is a hash tag), on one of the masters.
    const slots = new Set<string>();
    for (const p of ports) {
      const found = spawnSync('redis-cli', ['-p', String(p), '--scan', '--pattern', `{${h.config.QUEUE_PREFIX}}:splits:*`], { encoding: 'utf8' }).stdout.trim();
      for (const k of found.split('\n').filter(Boolean)) slots.add(spawnSync('redis-cli', ['-p', String(p), 'cluster', 'keyslot', k], { encoding: 'utf8' }).stdout.trim());
    }
    expect(slots.size).toBe(1);
  });

  it('When more calls than the limit arrive at once, then the limiter on the cluster lets at most the limit through per second', async () => {
    const redis = createRedis(h.config.REDIS_URL);
    try {
      const limiter = createRedisRateLimiter(redis, { keyPrefix: '{cluster-test}', limitPerSecond: 4, inFlightMs: 2000 });
      const starts: number[] = [];
      const ends: number[] = [];
      await Promise.all(Array.from({ length: 9 }, () => limiter.run({ mchid: '1900000109' }, async () => {
        starts.push(Date.now());
        ends.push(Date.now());
      })));
      starts.sort((a, b) => a - b);
      ends.sort((a, b) => a - b);
      expect(starts).toHaveLength(9);
      // The 5th call waits for the 1st answer + the 1 s window (a few ms of clock slack).
      expect(starts[4]! - ends[0]!).toBeGreaterThanOrEqual(980);
      expect(starts[8]! - ends[4]!).toBeGreaterThanOrEqual(980);
    } finally {
      await redis.quit();
    }
  });
});

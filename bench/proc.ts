/**
 * What the benches share: CPU time and RSS of processes from /proc (Linux), child process plumbing,
 * percentiles. CPU time, not wall time, is what a shared machine does not distort much.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** USER_HZ: /proc stat times are in 1/100 s on Linux. */
const TICK_MS = 1000 / 100;

function stat(pid: number): { ppid: number; cpuTicks: number; childTicks: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after "(comm) ": state ppid ... utime(14th overall = f[11]) stime cutime cstime
    return { ppid: Number(f[1]), cpuTicks: Number(f[11]) + Number(f[12]), childTicks: Number(f[13]) + Number(f[14]) };
  } catch {
    return null;
  }
}

/** CPU ms (user + system) of one live process; undefined once it is gone. */
export function processCpuMs(pid: number): number | undefined {
  const s = stat(pid);
  return s ? s.cpuTicks * TICK_MS : undefined;
}

export function rssKb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** The process and its descendants (cluster workers, postgres backends). */
export function tree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = stat(Number(d));
    if (s) (children.get(s.ppid) ?? children.set(s.ppid, []).get(s.ppid)!).push(Number(d));
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]!) ?? []));
  return out;
}

/** CPU ms of a process tree, counting exited children that were reaped (cutime). */
export const treeCpuMs = (root: number) =>
  tree(root).reduce((sum, pid, i) => {
    const s = stat(pid);
    return sum + (s ? s.cpuTicks + (i === 0 ? s.childTicks : 0) : 0) * TICK_MS;
  }, 0);

export const treeRssMb = (root: number) => tree(root).reduce((s, p) => s + rssKb(p), 0) / 1024;

export function findPid(match: (cmd: string) => boolean): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (match(readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' '))) return Number(d);
    } catch {
      /* gone */
    }
  }
  throw new Error('process not found');
}

/** The first stdout line of `child` matching `pattern`. */
export function firstLine(child: ChildProcess, pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolveLine, reject) => {
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms`)), timeoutMs);
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      if (pattern.test(l)) {
        clearTimeout(timer);
        rl.close();
        child.stdout!.resume();
        resolveLine(l);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before ${pattern}`)));
  });
}

/** SIGTERM, then SIGKILL after 10 s; resolves when it has exited. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    child.once('exit', () => r());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });
}

/** The q-quantile (0..1) of `xs`, nearest rank; 0 for none. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? 0;
}

/** Stops what a bench started, in order (the gateway before the simulator, Redis, PostgreSQL). */
export async function stopInOrder(...steps: Array<() => Promise<unknown>>): Promise<void> {
  for (const step of steps) await step();
}

/** A bench's entry point: a failure prints its stack and exits 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
}

import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename } from 'node:path';

/** Small Linux process helpers for the local services (stale locks, ports, clear messages). */

/** A start-up problem the user can fix: printed as its message alone, without a stack. */
export class StartupError extends Error {
  override name = 'StartupError';
}

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The command line of a process ('' when it is gone or unreadable). */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

export function parentPid(pid: number): number {
  try {
    // Field 4 of /proc/<pid>/stat, after the parenthesised command (which may contain spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** "pid 123 (postgres -D …)", shortened for one log line. */
export function describePid(pid: number): string {
  const cmd = cmdline(pid);
  return `pid ${pid}${cmd ? ` (${cmd.length > 80 ? `${cmd.slice(0, 77)}…` : cmd})` : ''}`;
}

/** Whether 127.0.0.1:port can be bound right now. */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.unref();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** The pid listening on a TCP port, from /proc (undefined when unknown or not ours to see). */
export function portHolder(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A = LISTEN; inode is field 9.
      if (f.length > 9 && f[3] === '0A' && parseInt(f[1]!.split(':')[1]!, 16) === port) inodes.add(f[9]!);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return Number(entry);
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return undefined;
}

/** One line saying who holds a port and what to do. */
export async function assertPortFree(port: number, what: string, envName?: string): Promise<void> {
  if (await portFree(port)) return;
  const holder = portHolder(port);
  throw new StartupError(
    `port ${port} on 127.0.0.1 (${what}) is taken${holder ? ` by ${describePid(holder)}` : ''}: ` +
      `stop that process${envName ? ` or set ${envName} to a free port` : ''}`,
  );
}

/** Sends `signal` and waits until the process is gone; escalates to SIGKILL after `graceMs`. */
export async function stopPid(pid: number, signal: NodeJS.Signals, graceMs = 15_000): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const until = Date.now() + graceMs;
  while (pidAlive(pid)) {
    if (Date.now() > until) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Turns a file-system error into the one line a user needs. */
export function fsStartupError(err: unknown, path: string): Error {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'EROFS') return new StartupError(`${path} is on a read-only file system: run from a writable clone`);
  if (code === 'EACCES' || code === 'EPERM') return new StartupError(`cannot write ${path} (${code}): run as the owner of the clone or fix its permissions`);
  if (code === 'ENOSPC') return new StartupError(`no space left on the device holding ${path}: free some space`);
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * A pid file left by an earlier run: a dead pid (or one reused by another program) is stale and
 * removed; a live server whose starter is gone (the run was killed and the server orphaned) is
 * stopped; one still owned by a running node process is reported in one line.
 */
export async function recoverPidLock(o: { file: string; program: string; what: string; signal: NodeJS.Signals; log: (m: string) => void }): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(o.file, 'utf8').split('\n')[0]);
  } catch {
    return;
  }
  if (!pidAlive(pid) || !cmdline(pid).includes(o.program)) {
    rmSync(o.file, { force: true });
    o.log(`removed a stale ${basename(o.file)} (pid ${pid} no longer runs ${o.program})`);
    return;
  }
  const parent = parentPid(pid);
  if (parent > 1 && pidAlive(parent) && /\bnode\b|jest|tsx/.test(cmdline(parent))) {
    throw new StartupError(`${o.what} is in use by ${describePid(pid)}, started by ${describePid(parent)}: stop that one first (kill ${parent})`);
  }
  o.log(`stopping ${o.program} pid ${pid}, left running by an earlier run that was killed`);
  await stopPid(pid, o.signal);
  rmSync(o.file, { force: true });
}

import type { Logger } from '../lib/logger';

/**
 * Runs `tick` every `intervalMs`, never overlapping itself; `stop()` waits for the running tick, which
 * can ask `stopping()` to end early at a safe point (e.g. hand back what it claimed).
 */
export function startLoop(name: string, intervalMs: number, tick: (stopping: () => boolean) => Promise<unknown>, logger: Logger): { stop(): Promise<void> } {
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const run = () => {
    if (stopped) return;
    running = tick(() => stopped)
      .catch((err) => logger.error({ err, loop: name }, 'background loop tick failed'))
      .finally(() => {
        if (!stopped) timer = setTimeout(run, intervalMs);
      });
  };
  timer = setTimeout(run, 0);
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

export interface PeriodicLogger {
  warn(obj: object, msg: string): void;
}

/**
 * Runs `task` once at start and then every `intervalMs` in the background (never two runs at once); a failed run is
 * logged and the next interval tries again. `stop` waits for a run in progress.
 */
export function every<T>(intervalMs: number, task: () => Promise<T>, opts: { name: string; log: PeriodicLogger }) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<T | undefined> | undefined;
  const run = () =>
    (running ??= task()
      .catch((err: unknown) => {
        opts.log.warn({ err: { message: err instanceof Error ? err.message : String(err) } }, `${opts.name}: run failed; retrying at the next interval`);
        return undefined;
      })
      .finally(() => (running = undefined)));
  return {
    start() {
      if (timer) return;
      timer = setInterval(() => void run(), intervalMs);
      timer.unref();
      void run();
    },
    /** One run now (or the one in progress). */
    run,
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}

/** Hourly: what a sweep finds is what aged past its limit in the last hour. */
export const RETENTION_SWEEP_INTERVAL_MS = 3_600_000;

export interface RetentionTask {
  name: string;
  /** Rows older than this many days go. */
  keepDays: number;
  /** Removes at most `limit` rows older than `cutoff`; how many it removed. */
  purge(cutoff: Date, limit: number): Promise<number>;
}

export interface RetentionLogger {
  info(obj: object, msg: string): void;
}

/**
 * Removes old rows, a batch at a time (short transactions, no long lock); run by the worker (lib/periodic.ts).
 * Several workers may sweep at once: each batch deletes what it finds, and a row is gone only once.
 */
export function retentionSweep(tasks: RetentionTask[], opts: { batch?: number; log: RetentionLogger; clock?: () => Date }) {
  const batch = opts.batch ?? 1000;
  const clock = opts.clock ?? (() => new Date());
  return async (): Promise<Record<string, number>> => {
    const removed: Record<string, number> = {};
    for (const task of tasks) {
      const cutoff = new Date(clock().getTime() - task.keepDays * 86_400_000);
      let total = 0;
      for (;;) {
        const n = await task.purge(cutoff, batch);
        total += n;
        if (n < batch) break;
      }
      removed[task.name] = total;
    }
    if (Object.values(removed).some((n) => n > 0)) opts.log.info({ removed }, 'retention: old rows removed');
    return removed;
  };
}

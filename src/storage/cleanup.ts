import { inArray, lt, sql } from '../db/orm.js';
import type { Database } from '../db/client.js';
import { storageCleanup } from '../db/schema.js';
import type { Storage } from './storage.js';

export interface CleanupLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface StorageCleanup {
  /**
   * Removes objects no order will reference: writes the keys down and deletes them at once; whatever is
   * not deleted is left to the sweeper. `wait: 'record'` returns once the keys are written down (the store
   * is the one failing: a dead store must not hold the request a second time); `wait: 'deletion'` returns
   * once the deletes are done (the database is the one failing: it must not hold the request either).
   * Never throws.
   */
  remove(keys: string[], opts: { wait: 'record' | 'deletion' }): Promise<void>;
  /**
   * For objects of a transaction the database stopped answering in: it may have committed (a COMMIT that
   * timed out on the client can still land) or not. Asks `referenced` until the database answers, then
   * removes the objects only if nothing references them. Runs in the background; never throws.
   */
  settle(keys: string[], referenced: () => Promise<boolean>): void;
  /** Deletes the objects written down at least `minAgeMs` ago and forgets them; returns how many. */
  sweep(): Promise<number>;
  /** Sweeps every `intervalMs` until stop(). */
  start(): void;
  stop(): Promise<void>;
}

const BATCH = 50;
const MAX_BATCHES = 40;
/** How long settle() waits for the database to answer again before leaving the objects to a person. */
const SETTLE_TRIES = 120;
const SETTLE_PAUSE_MS = 1000;
const SETTLE_GRACE_MS = 2000;

/**
 * The sweeper only takes rows older than `minAgeMs`: a write the store was still finishing when its
 * request timed out has landed by then, so the final delete catches it. Every process sweeps; deletes are
 * idempotent, so two processes meeting on one key is harmless.
 */
export function createStorageCleanup(deps: { db: Database; storage: Storage; log: CleanupLogger; intervalMs: number; minAgeMs?: number }): StorageCleanup {
  const { db, storage, log } = deps;
  const minAgeMs = deps.minAgeMs ?? deps.intervalMs;
  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<number> | undefined;
  let stopped = false;
  const settling = new Set<Promise<void>>();

  const deleteAll = async (keys: string[]) => {
    const results = await Promise.allSettled(keys.map((key) => storage.delete(key)));
    return keys.map((key, i) => ({ key, error: results[i]!.status === 'rejected' ? String((results[i] as PromiseRejectedResult).reason) : undefined }));
  };

  /** One batch: how many objects were removed, and whether a full batch was due (there may be more). */
  async function sweepBatch(): Promise<{ removed: number; more: boolean }> {
    const due = await db
      .select({ key: storageCleanup.key })
      .from(storageCleanup)
      .where(lt(storageCleanup.createdAt, new Date(Date.now() - minAgeMs)))
      .orderBy(storageCleanup.createdAt)
      .limit(BATCH);
    if (due.length === 0) return { removed: 0, more: false };
    const outcomes = await deleteAll(due.map((r) => r.key));
    const done = outcomes.filter((o) => !o.error).map((o) => o.key);
    if (done.length) await db.delete(storageCleanup).where(inArray(storageCleanup.key, done));
    const failed = outcomes.filter((o) => o.error);
    if (failed.length) {
      await db
        .update(storageCleanup)
        .set({ attempts: sql`${storageCleanup.attempts} + 1`, lastError: failed[0]!.error!.slice(0, 200) })
        .where(inArray(storageCleanup.key, failed.map((o) => o.key)));
      log.warn({ keys: failed.length }, 'storage cleanup: objects could not be removed yet; will retry');
    }
    return { removed: done.length, more: due.length === BATCH && failed.length === 0 };
  }

  /** Batches until nothing is due (or the store fails), at most MAX_BATCHES per sweep. */
  async function sweepOnce(): Promise<number> {
    let removed = 0;
    for (let i = 0; i < MAX_BATCHES; i++) {
      const batch = await sweepBatch();
      removed += batch.removed;
      if (!batch.more) break;
    }
    return removed;
  }

  const remove: StorageCleanup['remove'] = async (keys, opts) => {
    const recorded = db
      .insert(storageCleanup)
      .values(keys.map((key) => ({ key })))
      .onConflictDoNothing()
      .then(
        () => true,
        () => false,
      );
    const deleted = deleteAll(keys);
    void Promise.all([recorded, deleted]).then(([written, outcomes]) => {
      const failed = outcomes.filter((o) => o.error).map((o) => o.key);
      // Neither deleted nor written down: only a person can remove these now.
      if (failed.length && !written) log.error({ keys: failed }, 'storage cleanup: objects left in the store; remove them by hand');
    });
    await (opts.wait === 'record' ? recorded : deleted);
  };

  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

  /** Whether the objects are referenced, once the database answers; undefined if it never did. */
  async function askUntilAnswered(referenced: () => Promise<boolean>): Promise<boolean | undefined> {
    for (let attempt = 1; attempt <= SETTLE_TRIES && !stopped; attempt++) {
      try {
        return await referenced();
      } catch {
        await pause(SETTLE_PAUSE_MS);
      }
    }
    return undefined;
  }

  async function settleOnce(keys: string[], referenced: () => Promise<boolean>) {
    let inUse = await askUntilAnswered(referenced);
    // The lost COMMIT may still be on its way through a server that has just woken up (a frozen server
    // resumes every backend at once): ask again after it has had time to land.
    if (inUse === false) {
      await pause(SETTLE_GRACE_MS);
      inUse = await askUntilAnswered(referenced);
    }
    if (inUse === false) await remove(keys, { wait: 'deletion' });
    else if (inUse === undefined) {
      log.error({ keys }, 'storage cleanup: the database did not answer in time; if no order references these objects, remove them by hand');
    }
  }

  return {
    remove,
    settle(keys, referenced) {
      const task = settleOnce(keys, referenced).finally(() => settling.delete(task));
      settling.add(task);
    },
    sweep() {
      sweeping ??= sweepOnce()
        .catch((err: unknown) => {
          log.warn({ err: { message: (err as Error).message } }, 'storage cleanup: sweep failed; will retry');
          return 0;
        })
        .finally(() => (sweeping = undefined));
      return sweeping;
    },
    start() {
      timer ??= setInterval(() => void this.sweep(), deps.intervalMs);
      timer.unref();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      timer = undefined;
      await Promise.all([sweeping, ...settling]);
    },
  };
}

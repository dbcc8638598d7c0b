import { AppError } from '../errors.js';
import type { Database, DatabaseHandle } from './client.js';

/**
 * Where anonymous reads go (DATABASE_READ_URL, a Heroku Postgres follower). Only reads that nobody could
 * have just written and expect to see back use it: the public gallery, its search and comment lists.
 * Everything a signed-in user wrote and reads back (orders, messages, profile) stays on the primary.
 *
 * The follower is used while it answers and its replay lag is at most DATABASE_READ_MAX_LAG_S. Its lag is
 * probed at most once per second (concurrent requests share the probe); a read that fails on the follower
 * runs again on the primary in the same request and marks the follower down until the next probe finds it
 * answering and fresh again.
 */

/** 0 when everything received is replayed (an idle primary writes nothing, so the last replay may be old). */
export const LAG_SQL = `SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
  ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END AS lag_s`;

export interface FollowerState {
  /** up: reads go to it; lagging: behind by more than max_lag_s; down: unreachable or failing. */
  status: 'up' | 'lagging' | 'down';
  /** Seconds of replay lag at the last probe; null when it could not be measured. */
  lag_s: number | null;
  max_lag_s: number;
}

/** One value built for each handle (a repository, whose prepared statements belong to that handle). */
export interface Routed<T> {
  /** `fn` on the follower while it is up and fresh, on the primary otherwise or when the follower fails. */
  read<R>(fn: (on: T) => Promise<R>): Promise<R>;
}

export interface Reader {
  bind<T>(build: (db: Database) => T): Routed<T>;
  /** Undefined without a follower. */
  state(): Promise<FollowerState | undefined>;
  close(): Promise<void>;
}

interface Log {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Without a follower: every read on the primary. */
export function primaryReader(primary: Database): Reader {
  return {
    bind(build) {
      const onPrimary = build(primary);
      return { read: (fn) => fn(onPrimary) };
    },
    state: async () => undefined,
    close: async () => undefined,
  };
}

export function createReader(
  primary: Database,
  follower: DatabaseHandle,
  opts: { maxLagS: number; log?: Log; probeEveryMs?: number; probeTimeoutMs?: number },
): Reader {
  const probeEveryMs = opts.probeEveryMs ?? 1000;
  const probeTimeoutMs = opts.probeTimeoutMs ?? 1000;
  let current: FollowerState = { status: 'down', lag_s: null, max_lag_s: opts.maxLagS };
  let checkedAt = Number.NEGATIVE_INFINITY;
  let probing: Promise<FollowerState> | undefined;

  const become = (next: FollowerState, error?: string) => {
    if (next.status !== current.status && checkedAt !== Number.NEGATIVE_INFINITY) {
      const line = { follower: { ...next, error } };
      if (next.status === 'up') opts.log?.info(line, 'follower database back in use');
      else opts.log?.warn(line, `follower database ${next.status}: reads go to the primary`);
    }
    current = next;
    checkedAt = Date.now();
    return next;
  };

  async function probe(): Promise<FollowerState> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        follower.pool!.query<{ lag_s: string | number | null }>(LAG_SQL),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${probeTimeoutMs} ms`)), probeTimeoutMs);
        }),
      ]);
      // null: not a standby at all (pointed at a primary), so nothing to lag behind.
      const lag = Math.max(0, Number(result.rows[0]?.lag_s ?? 0));
      const lagS = Math.round(lag * 1000) / 1000;
      return become({ status: lagS > opts.maxLagS ? 'lagging' : 'up', lag_s: lagS, max_lag_s: opts.maxLagS });
    } catch (err) {
      return become({ status: 'down', lag_s: null, max_lag_s: opts.maxLagS }, (err as Error).message);
    } finally {
      clearTimeout(timer);
    }
  }

  async function fresh(): Promise<FollowerState> {
    if (Date.now() - checkedAt < probeEveryMs) return current;
    probing ??= probe().finally(() => (probing = undefined));
    return probing;
  }

  return {
    bind(build) {
      const onPrimary = build(primary);
      const onFollower = build(follower.db);
      return {
        async read(fn) {
          if ((await fresh()).status !== 'up') return fn(onPrimary);
          try {
            return await fn(onFollower);
          } catch (err) {
            // The answer itself (not found, invalid page): the primary would say the same.
            if (err instanceof AppError) throw err;
            become({ status: 'down', lag_s: null, max_lag_s: opts.maxLagS }, (err as Error).message);
            return fn(onPrimary);
          }
        },
      };
    },
    state: fresh,
    close: () => follower.close(),
  };
}

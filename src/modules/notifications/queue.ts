import type * as PgBossModule from 'pg-boss';
import type { Db as IDatabase, PgBoss, Queue } from 'pg-boss';
import type { DatabaseHandle, Executor } from '../../db/client.js';
import { sql } from '../../db/orm.js';
import { QUEUES } from './notifications.domain.js';

/**
 * The job queue: pg-boss on the application's own database (its tables in the `pgboss` schema), through the
 * process's own connection pool or PGlite instance rather than a second pool. It polls and never LISTENs, so
 * it works through PgBouncer in transaction mode: every statement it sends stands alone or carries its own
 * BEGIN … COMMIT.
 */

export const QUEUE_SCHEMA = 'pgboss';

// pg-boss is loaded when a process first starts a queue, not with the app: importing it (with OpenTelemetry and its
// cron parsing) takes about 0.12 s of every start (figure 6), and a web dyno never queues a job (it records events
// in the outbox; the worker relays them). An ESLint rule keeps src/ off a value import of it.
let pgBoss: typeof PgBossModule | undefined;
const loadPgBoss = async () => (pgBoss ??= await import('pg-boss'));

export interface QueueSettings {
  /** Attempts after the first before a job goes to the dead-letter queue. */
  retryLimit: number;
  /** First retry delay in seconds; doubled on each retry (with jitter), capped by retryDelayMaxS. */
  retryDelayS: number;
  retryDelayMaxS: number;
  /** A job active this long (its worker died) is retried. */
  jobTimeoutS: number;
}

/** pg-boss's database interface over the process's handle: the pg pool, or the one PGlite session. */
async function bossDatabase(handle: DatabaseHandle): Promise<{ db: IDatabase; backend: 'postgres' | 'pglite' }> {
  if (handle.pglite) return { db: (await loadPgBoss()).fromPglite(handle.pglite as never), backend: 'pglite' };
  const pool = handle.pool!;
  return {
    backend: 'postgres',
    db: {
      async executeSql(text: string, values?: unknown[]) {
        // Without values pg uses the simple protocol, which carries pg-boss's multi-statement blocks.
        const result = (await pool.query(text, values?.length ? values : undefined)) as unknown;
        if (Array.isArray(result)) return { rows: result.flatMap((r: { rows?: unknown[] }) => r.rows ?? []) };
        return result as { rows: unknown[] };
      },
    },
  };
}

/**
 * The caller's drizzle transaction as pg-boss's database: a job sent through it commits or rolls back with it.
 * Only for a process whose queue is built (createBoss), which is what loads pg-boss.
 */
export function inTransaction(tx: Executor): IDatabase {
  if (!pgBoss) throw new Error('inTransaction: no job queue was built in this process (createBoss loads pg-boss)');
  return pgBoss.fromDrizzle(tx as never, sql as never);
}

export async function createBoss(handle: DatabaseHandle, options: { supervise: boolean }): Promise<PgBoss> {
  const { db, backend } = await bossDatabase(handle);
  return new (await loadPgBoss()).PgBoss({
    db,
    backend,
    schema: QUEUE_SCHEMA,
    supervise: options.supervise,
    schedule: false,
    registerInstance: options.supervise,
    useListenNotify: false,
  });
}

/** Installs or upgrades pg-boss's schema (part of migrating the database: the release phase, or start-up in development). */
export async function migrateQueue(handle: DatabaseHandle): Promise<void> {
  // Two processes installing at once (release phase and a dyno, or two dynos in development) can both find the
  // schema missing; CREATE SCHEMA IF NOT EXISTS then fails in the loser with a unique violation (23505) or
  // duplicate_schema (42P06). The loser starts again and finds it installed.
  for (let attempt = 1; ; attempt++) {
    const boss = await createBoss(handle, { supervise: false });
    boss.on('error', () => undefined);
    try {
      await boss.start();
      await boss.stop({ close: false, graceful: false });
      return;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (attempt >= 5 || (code !== '23505' && code !== '42P06')) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

/** Creates the queues, or brings their retry settings in line with the configuration. */
export async function ensureQueues(boss: PgBoss, settings: QueueSettings): Promise<void> {
  const options: Omit<Queue, 'name'> = {
    retryLimit: settings.retryLimit,
    retryDelay: settings.retryDelayS,
    retryBackoff: true,
    retryDelayMax: settings.retryDelayMaxS,
    expireInSeconds: settings.jobTimeoutS,
    deadLetter: QUEUES.dead,
  };
  // The dead-letter queue keeps what it holds for two weeks, for an operator to look at or redrive.
  if (!(await boss.getQueue(QUEUES.dead))) await boss.createQueue(QUEUES.dead, { retentionSeconds: 14 * 24 * 3600, deleteAfterSeconds: 14 * 24 * 3600 });
  for (const name of [QUEUES.fanout, QUEUES.email, QUEUES.live, QUEUES.webhooks]) {
    if (await boss.getQueue(name)) {
      await boss.updateQueue(name, options);
    } else {
      await boss.createQueue(name, options);
    }
  }
}

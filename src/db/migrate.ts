import { fileURLToPath } from 'node:url';
import { drizzlePg, migratePg, pgliteMigrator } from './orm.js';
import type { Config } from '../config.js';
import { migrateQueue } from '../modules/notifications/queue.js';
import { type DatabaseHandle, createPostgres } from './client.js';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));

/** Arbitrary but fixed: every process that migrates this database takes the same advisory lock. */
const MIGRATION_LOCK_KEY = 727_001_2024;

export interface MigrateOptions {
  /**
   * Also the job queue's schema (default): false for a process that will not start the queue, a development web
   * process whose worker runs apart (it migrates the queue itself), so that process never loads pg-boss.
   */
  queue?: boolean;
}

/**
 * Applies pending migrations: the application's, then the job queue's own schema (pg-boss, `pgboss`), which
 * pg-boss installs and upgrades itself under its own lock.
 */
export async function runMigrations(handle: DatabaseHandle, options: MigrateOptions = {}): Promise<void> {
  await runAppMigrations(handle);
  if (options.queue ?? true) await migrateQueue(handle);
}

/**
 * On Postgres, a session advisory lock serialises concurrent runs (several dynos or release phases
 * starting together); the loser waits and then finds nothing to do.
 */
async function runAppMigrations(handle: DatabaseHandle): Promise<void> {
  if (handle.kind === 'pglite') {
    const { migrate: migratePglite } = pgliteMigrator();
    await migratePglite(handle.db as never, { migrationsFolder: MIGRATIONS_FOLDER });
    return;
  }
  const client = await handle.pool!.connect();
  try {
    await client.query('set statement_timeout = 0');
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await migratePg(drizzlePg(client), { migrationsFolder: MIGRATIONS_FOLDER });
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
      await client.query('reset statement_timeout');
    }
  } finally {
    client.release();
  }
}

/**
 * Migrations always go to the primary directly: the advisory lock above is a session's, which PgBouncer
 * in transaction mode would hand to another client. With no pooler configured the app's own handle is it.
 */
export async function runMigrationsDirect(config: Config, handle: DatabaseHandle, options: MigrateOptions = {}): Promise<void> {
  if (handle.kind === 'pglite' || !config.database.poolUrl) return runMigrations(handle, options);
  const direct = createPostgres(config, undefined, config.database.url, { max: 1, application: 'kendalls-nails-api-migrate' });
  try {
    await runMigrations(direct, options);
  } finally {
    await direct.close();
  }
}

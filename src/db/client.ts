import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { drizzlePg, type ExtractTablesWithRelations, pgliteDrizzle, type PgDatabase, type PgQueryResultHKT, type PgTransaction } from './orm.js';
import pg from 'pg';
import type { Config } from '../config.js';
import * as schema from './schema.js';

export type Schema = typeof schema;
/** Column names are the properties' in snake_case; every drizzle handle and dialect is made with it. */
export const CASING = 'snake_case';
export type Database = PgDatabase<PgQueryResultHKT, Schema>;
export type Transaction = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
/** Repository methods accept either the shared handle or the caller's transaction. */
export type Executor = Database | Transaction;

export interface DatabaseHandle {
  db: Database;
  kind: 'postgres' | 'pglite';
  /** Round trip to the server; rejects when it is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
  pool?: pg.Pool;
  pglite?: PGlite;
}

export type SslMode = 'off' | 'no-verify' | 'verify';

/**
 * Heroku Postgres presents certificates that are not signed by a public CA, so deployed
 * environments encrypt without verifying the chain unless DATABASE_SSL=verify says otherwise.
 */
export function sslModeFor(url: string, config: Pick<Config, 'environment'>, override?: SslMode): SslMode {
  if (override) return override;
  const sslmode = new URL(url).searchParams.get('sslmode');
  if (sslmode === 'disable') return 'off';
  if (sslmode === 'verify-full' || sslmode === 'verify-ca') return 'verify';
  if (sslmode) return 'no-verify';
  return config.environment === 'development' ? 'off' : 'no-verify';
}

export interface PostgresOptions {
  /**
   * Behind PgBouncer in transaction mode (Heroku's connection pooling): no startup parameter PgBouncer
   * refuses (statement_timeout), and nothing that lives in a session. The client-side query_timeout still
   * bounds every query.
   */
  pooler?: boolean;
  /** Pool size; DB_POOL_MAX by default. */
  max?: number;
  application?: string;
}

export function createPostgres(
  config: Config,
  logger?: { warn(obj: object, msg: string): void },
  url = config.database.url,
  options: PostgresOptions = {},
): DatabaseHandle {
  if (!url) throw new Error('createPostgres needs a DATABASE_URL');
  const mode = sslModeFor(url, config, config.database.ssl);
  const parsed = new URL(url);
  // pg reads sslmode from the URL with its own (stricter) meaning; the ssl option below decides instead.
  parsed.searchParams.delete('sslmode');
  const pool = new pg.Pool({
    connectionString: parsed.toString(),
    max: options.max ?? config.database.poolMax,
    connectionTimeoutMillis: config.database.connectionTimeoutMs,
    idleTimeoutMillis: config.database.idleTimeoutMs,
    ...(options.pooler ? {} : { statement_timeout: config.database.statementTimeoutMs }),
    query_timeout: config.database.statementTimeoutMs + 1000,
    ssl: mode === 'off' ? false : { rejectUnauthorized: mode === 'verify' },
    application_name: options.application ?? 'kendalls-nails-api',
  });
  // A client losing its server must not crash the process; the query in flight or the next one reports it. pg-pool
  // listens for errors only while a client is idle: one checked out (a drizzle transaction) would emit an uncaught
  // 'error', so every client gets a listener of its own for life.
  pool.on('error', (err) => logger?.warn({ err: { message: err.message } }, 'idle database client error'));
  pool.on('connect', (client) => client.on('error', (err) => logger?.warn({ err: { message: err.message } }, 'database connection lost')));
  const db = drizzlePg(pool, { schema, casing: CASING }) as unknown as Database;
  return {
    db,
    kind: 'postgres',
    pool,
    async ping() {
      await pool.query('select 1');
    },
    async close() {
      await pool.end();
    },
  };
}

export async function createPglite(options: { dataDir?: string; loadDataDir?: Blob } = {}): Promise<DatabaseHandle> {
  if (options.dataDir) mkdirSync(path.dirname(options.dataDir), { recursive: true });
  // Loaded only for the embedded database: a process on PostgreSQL never needs it.
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle: drizzlePglite } = pgliteDrizzle();
  const client = await PGlite.create({ dataDir: options.dataDir, loadDataDir: options.loadDataDir });
  const db = drizzlePglite(client, { schema, casing: CASING }) as unknown as Database;
  return {
    db,
    kind: 'pglite',
    pglite: client,
    async ping() {
      await client.query('select 1');
    },
    async close() {
      if (!client.closed) await client.close();
    },
  };
}

/**
 * The configured database: Postgres when DATABASE_URL is set (through DATABASE_CONNECTION_POOL_URL when
 * that is set too), otherwise PGlite under DATA_DIR.
 */
export async function createDatabase(config: Config, logger?: { warn(obj: object, msg: string): void }): Promise<DatabaseHandle> {
  if (config.database.poolUrl) return createPostgres(config, logger, config.database.poolUrl, { pooler: true });
  if (config.database.url) return createPostgres(config, logger);
  return createPglite({ dataDir: path.join(config.dataDir, 'pglite') });
}

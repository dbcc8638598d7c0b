import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { type DatabaseHandle, createDatabase, createPglite, createPostgres } from '../../src/db/client.js';
import { runMigrations } from '../../src/db/migrate.js';

/**
 * Every test app gets its own database cloned from an already-migrated template (Immich's approach):
 * isolated and fast. On PostgreSQL the template is a real template database; on PGlite a data-dir dump.
 * scripts/run-tests.mjs prepares the template once per run; a test file run on its own makes its own.
 */
export const usingPostgres = Boolean(process.env.TEST_DATABASE_URL);
/** scripts/run-tests.mjs --pgbouncer: apps query through PgBouncer (transaction mode) as with DATABASE_CONNECTION_POOL_URL. */
export const usingPooler = usingPostgres && Boolean(process.env.TEST_POOLER_URL);

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

let templatePromise: Promise<string> | undefined;

async function postgresTemplate(): Promise<string> {
  if (process.env.KN_PG_TEMPLATE) return process.env.KN_PG_TEMPLATE;
  templatePromise ??= (async () => {
    const name = `kn_tpl_${process.pid}_${randomBytes(3).toString('hex')}`;
    await createMigratedPostgresTemplate(name);
    return name;
  })();
  return templatePromise;
}

export async function createMigratedPostgresTemplate(name: string): Promise<void> {
  await admin((c) => c.query(`create database ${name}`));
  const config = loadConfig({ ENVIRONMENT: 'development', DATABASE_URL: withDatabase(process.env.TEST_DATABASE_URL!, name) });
  const handle = createPostgres(config);
  try {
    await runMigrations(handle);
  } finally {
    await handle.close();
  }
}

let pgliteTemplate: Promise<Blob> | undefined;

async function pgliteTemplateBlob(): Promise<Blob> {
  pgliteTemplate ??= (async () => {
    if (process.env.KN_PGLITE_TEMPLATE) return new Blob([await readFile(process.env.KN_PGLITE_TEMPLATE)]);
    const handle = await createPglite();
    await runMigrations(handle);
    const blob = await handle.pglite!.dumpDataDir('none');
    await handle.close();
    return blob;
  })();
  return pgliteTemplate;
}

export interface TestDatabase {
  handle: DatabaseHandle;
  /** Connection URL (PostgreSQL only, direct to the server): for a second app instance or a raw client. */
  url?: string;
  /** The same database through PgBouncer, under scripts/run-tests.mjs --pgbouncer. */
  poolUrl?: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(opts: { poolMax?: number } = {}): Promise<TestDatabase> {
  if (usingPostgres) {
    const template = await postgresTemplate();
    const name = `kn_t_${process.env.KN_RUN_ID ?? 'x'}_${randomBytes(5).toString('hex')}`;
    await admin((c) => c.query(`create database ${name} template ${template}`));
    const url = withDatabase(process.env.TEST_DATABASE_URL!, name);
    const poolUrl = usingPooler ? withDatabase(process.env.TEST_POOLER_URL!, name) : undefined;
    const config = loadConfig({
      ENVIRONMENT: 'development',
      DATABASE_URL: url,
      ...(poolUrl ? { DATABASE_CONNECTION_POOL_URL: poolUrl } : {}),
      DB_POOL_MAX: String(opts.poolMax ?? 10),
    });
    const handle = await createDatabase(config);
    let dropped = false;
    return {
      handle,
      url,
      poolUrl,
      async drop() {
        if (dropped) return;
        dropped = true;
        await handle.close().catch(() => undefined);
        await admin((c) => c.query(`drop database if exists ${name} with (force)`));
      },
    };
  }
  const handle = await createPglite({ loadDataDir: await pgliteTemplateBlob() });
  return { handle, drop: () => handle.close() };
}

#!/usr/bin/env node
// Runs the test suite: prepares one migrated template database for the run (PGlite dump, or a
// PostgreSQL template database when TEST_DATABASE_URL is set), runs the files with node:test through
// tsx, then removes what the run created. `--chaos` runs the slow fault and soak suite instead.
// First of all it checks what the chosen files need from the machine (scripts/prerequisites.mjs) and stops
// within seconds, naming each missing piece and how to install it.
// `--pgbouncer` (needs TEST_DATABASE_URL) starts a private PgBouncer in transaction mode in front of that
// server (scripts/pgbouncer.mjs) and the apps under test query through it, as with Heroku's
// DATABASE_CONNECTION_POOL_URL; test databases are still created, cloned and dropped directly.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { checkPrerequisites, formatPrerequisites } from './prerequisites.mjs';

const chaos = process.argv.includes('--chaos');
const pooled = process.argv.includes('--pgbouncer');
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const dir = chaos ? 'test/chaos' : 'test';
const files = only.length
  ? only
  : readdirSync(dir)
      .filter((f) => f.endsWith('.test.ts'))
      .sort()
      .map((f) => path.join(dir, f));

const prerequisites = await checkPrerequisites(files);
if (prerequisites.missing.length > 0 || prerequisites.warnings.length > 0) console.error(formatPrerequisites(prerequisites));
if (prerequisites.missing.length > 0) process.exit(1);

const runId = randomBytes(3).toString('hex');
const env = { ...process.env, KN_RUN_ID: runId, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' };
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kn-test-'));
const tsx = ['--import', 'tsx'];

function node(args) {
  const r = spawnSync(process.execPath, [...tsx, ...args], { stdio: 'inherit', env });
  return r.status ?? 1;
}

const admin = async (fn) => {
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
};

let status;
let bouncer;
try {
  if (pooled) {
    if (!process.env.TEST_DATABASE_URL) throw new Error('--pgbouncer needs TEST_DATABASE_URL (the server PgBouncer pools)');
    const { startPgbouncer } = await import('./pgbouncer.mjs');
    bouncer = await startPgbouncer({ upstream: process.env.TEST_DATABASE_URL });
    env.TEST_POOLER_URL = bouncer.url('postgres');
    console.log(`# through PgBouncer (transaction mode) on port ${bouncer.port}`);
  }
  if (process.env.TEST_DATABASE_URL) {
    const template = `kn_tpl_${runId}`;
    const prep = `import { createMigratedPostgresTemplate } from './test/support/database.ts'; await createMigratedPostgresTemplate(${JSON.stringify(template)});`;
    if (node(['--input-type=module', '-e', prep]) !== 0) throw new Error('could not prepare the template database');
    env.KN_PG_TEMPLATE = template;
    console.log(`# database: PostgreSQL (${new URL(process.env.TEST_DATABASE_URL).host}), template ${template}`);
  } else {
    const dump = path.join(tmp, 'template.tar');
    const prep = `import { createPglite } from './src/db/client.ts'; import { runMigrations } from './src/db/migrate.ts'; import { writeFileSync } from 'node:fs';
const h = await createPglite(); await runMigrations(h); const b = await h.pglite.dumpDataDir('none'); writeFileSync(${JSON.stringify(dump)}, Buffer.from(await b.arrayBuffer())); await h.close();`;
    if (node(['--input-type=module', '-e', prep]) !== 0) throw new Error('could not prepare the PGlite template');
    env.KN_PGLITE_TEMPLATE = dump;
    console.log('# database: embedded PGlite');
  }
  const concurrency = process.env.TEST_CONCURRENCY ?? (chaos ? '1' : '2');
  // Per test and hook; the soak sets its own, longer. --test-force-exit: a file whose tests are done exits even if
  // something it started still holds the event loop (a leaked pool client once kept one alive until CI's limit).
  const timeout = chaos ? '600000' : '300000';
  status = node(['--test', '--test-force-exit', `--test-concurrency=${concurrency}`, `--test-timeout=${timeout}`, '--test-reporter=spec', ...files]);
} catch (err) {
  console.error(err.message);
  status = 1;
} finally {
  await bouncer?.stop();
  rmSync(tmp, { recursive: true, force: true });
  if (process.env.TEST_DATABASE_URL) {
    await admin(async (c) => {
      const { rows } = await c.query(`select datname from pg_database where datname like $1`, [`kn\\_%\\_${runId}%`]);
      const { rows: clones } = await c.query(`select datname from pg_database where datname like $1`, [`kn\\_t\\_${runId}\\_%`]);
      for (const { datname } of [...clones, ...rows]) await c.query(`drop database if exists "${datname}" with (force)`);
    }).catch((err) => console.error(`cleanup: ${err.message}`));
  }
}
process.exit(status);

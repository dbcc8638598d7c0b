#!/usr/bin/env node
// Heroku's release phase, rehearsed: what `release: node dist/cli.js migrate` runs on, and how.
//
//   1. `npm run build`, then the built tree (package.json, lockfile, dist/, node_modules) is copied to a temporary
//      folder and `npm prune --omit=dev` removes the dev dependencies, as the Node buildpack does to the slug;
//   2. `node dist/cli.js migrate` runs there twice, in production mode (NODE_ENV=production,
//      ENVIRONMENT=production), against a fresh PostgreSQL database, with only DATABASE_URL (and DATABASE_SSL)
//      set: no PORT, no Auth0, no S3, nothing only the web process needs (src/config.ts, REQUIRED_BY_PROCESS);
//   3. the second run must find nothing to do, and every migration must be recorded once.
//
//   node scripts/check-release.mjs        # PostgreSQL: CI_DATABASE_URL or TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test
//
// The database's TLS setting comes from DATABASE_SSL (default off here: the local server has no certificate).
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

const root = path.resolve(import.meta.dirname, '..');
const adminUrl = process.env.CI_DATABASE_URL || process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const step = (msg) => console.log(`\n# ${msg}`);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const admin = async (fn) => {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
};

const tmp = mkdtempSync(path.join(os.tmpdir(), 'kn-release-'));
const database = `kn_release_${randomBytes(4).toString('hex')}`;
let created = false;
let failed = false;
try {
  step('build');
  execFileSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' });

  step(`copy the built tree to ${tmp} and prune dev dependencies`);
  for (const name of ['package.json', 'package-lock.json', 'Procfile', 'dist']) {
    cpSync(path.join(root, name), path.join(tmp, name), { recursive: true });
  }
  // node_modules may be a symlink (worktrees share one): copy what it points at, keeping its inner links.
  execFileSync('cp', ['-a', realpathSync(path.join(root, 'node_modules')), path.join(tmp, 'node_modules')]);
  execFileSync(npm, ['prune', '--omit=dev', '--no-audit', '--no-fund'], { cwd: tmp, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'production' } });
  for (const dev of ['tsx', 'typescript', 'drizzle-kit', 'pino-pretty']) {
    if (readdirSync(path.join(tmp, 'node_modules')).includes(dev)) throw new Error(`npm prune left the dev dependency ${dev}`);
  }

  step(`fresh database ${database}`);
  await admin((c) => c.query(`create database "${database}"`));
  created = true;
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;

  // Exactly what a release dyno has: the add-on's DATABASE_URL and the app's ENVIRONMENT; no PORT.
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    ENVIRONMENT: 'production',
    DATABASE_URL: url.toString(),
    DATABASE_SSL: process.env.DATABASE_SSL ?? 'off',
  };
  const migrate = (label) => {
    step(`node dist/cli.js migrate (${label}), NODE_ENV=production ENVIRONMENT=production, no PORT`);
    const r = spawnSync(process.execPath, ['dist/cli.js', 'migrate'], { cwd: tmp, env, encoding: 'utf8', timeout: 120_000 });
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    if (r.status !== 0) throw new Error(`migrate (${label}) exited ${r.status ?? r.signal}`);
    const line = JSON.parse(r.stdout.trim().split('\n').at(-1));
    if (line.msg !== 'migrations applied' || line.database !== 'postgres') throw new Error(`unexpected output: ${r.stdout}`);
  };
  migrate('first run');
  const count = async () =>
    admin(async () => {
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        const { rows } = await client.query('select count(*)::int as n from drizzle.__drizzle_migrations');
        return rows[0].n;
      } finally {
        await client.end();
      }
    });
  const expected = readdirSync(path.join(root, 'src/db/migrations')).filter((f) => f.endsWith('.sql')).length;
  const first = await count();
  if (first !== expected) throw new Error(`${first} migrations recorded, ${expected} in src/db/migrations`);
  migrate('second run: nothing to do');
  const second = await count();
  if (second !== first) throw new Error(`the second run recorded ${second - first} more migrations`);
  step(`release check passed: ${expected} migrations applied once on the pruned production tree`);
} catch (err) {
  console.error(`\nrelease check failed: ${err instanceof Error ? err.message : String(err)}`);
  failed = true;
} finally {
  if (created) await admin((c) => c.query(`drop database if exists "${database}" with (force)`)).catch((err) => console.error(`cleanup: ${err.message}`));
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

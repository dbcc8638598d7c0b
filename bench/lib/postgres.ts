import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../test/support/process.js';

const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
const SHARED_URL = process.env.BENCH_SHARED_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  url: string;
  /** What the numbers ran on, for the report. */
  description: string;
  /** The private cluster's server log, when there is one. */
  logFile?: string;
  /** The private cluster's postmaster, whose children are the backends (for CPU accounting). */
  serverPid?: number;
  stop(): Promise<void>;
}

/**
 * The durability settings are a benchmark's, not production's: without fsync the shared, busy disk
 * of this machine adds less noise, and since API and baseline commit the same transactions this makes
 * the write-path ratio stricter (more of each request is application time), never easier.
 */
const SETTINGS = {
  listen_addresses: "'127.0.0.1'",
  max_connections: 100,
  shared_buffers: "'512MB'",
  work_mem: "'16MB'",
  maintenance_work_mem: "'256MB'",
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_wal_size: "'4GB'",
  autovacuum: 'on',
  jit: 'off',
  ...(process.env.BENCH_PG_LOG_STATEMENTS ? { log_statement: "'all'", log_min_duration_statement: 0 } : {}),
};

const asPostgres = (args: string[]) => ['-u', 'postgres', '--', ...args];

/**
 * A private throwaway PostgreSQL 15 cluster on a free port, owned by the `postgres` user (initdb
 * refuses root). Falls back to a fresh database on the machine's shared server, which is never
 * reconfigured or stopped.
 */
export async function startDatabase(log: (line: string) => void): Promise<BenchDatabase> {
  if (existsSync(path.join(BIN, 'initdb')) && process.getuid?.() === 0) {
    try {
      return await startPrivateCluster();
    } catch (err) {
      log(`private cluster failed (${(err as Error).message.split('\n')[0]}); using a database on the shared server`);
    }
  }
  return createSharedDatabase();
}

async function startPrivateCluster(): Promise<BenchDatabase> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kn-bench-pg-'));
  const { uid, gid } = userIds('postgres');
  chownSync(dir, uid, gid);
  chmodSync(dir, 0o700);
  const data = path.join(dir, 'data');
  const port = await freePort();
  const run = (args: string[]) => {
    const r = spawnSync('runuser', asPostgres(args), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${path.basename(args[0]!)} failed: ${r.stderr || r.stdout}`);
  };
  const stop = async () => {
    spawnSync('runuser', asPostgres([path.join(BIN, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop']), { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    run([path.join(BIN, 'initdb'), '-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--locale=C.UTF-8']);
    const conf = Object.entries({ ...SETTINGS, port, unix_socket_directories: `'${dir}'` })
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n');
    writeFileSync(path.join(data, 'postgresql.auto.conf'), `${conf}\n`);
    chownSync(path.join(data, 'postgresql.auto.conf'), uid, gid);
    run([path.join(BIN, 'pg_ctl'), '-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start']);
    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    await admin.connect();
    await admin.query('create database kn_bench');
    await admin.end();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/kn_bench`,
    description: `private PostgreSQL 15 cluster on port ${port}`,
    logFile: path.join(dir, 'server.log'),
    serverPid: Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]),
    stop,
  };
}

async function createSharedDatabase(): Promise<BenchDatabase> {
  const name = `kn_bench_${process.pid}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: SHARED_URL });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`create database ${name}`);
  const url = new URL(SHARED_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    description: `database ${name} on the shared server ${url.host} (its settings, untouched)`,
    stop: () => admin(`drop database if exists ${name} with (force)`),
  };
}

function userIds(name: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** One statement on a connection of its own (the bench's set-up and checks, never the measured load). */
export async function query<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query<T>(text, values);
  } finally {
    await client.end();
  }
}

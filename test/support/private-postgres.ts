import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './process.js';

/**
 * A PostgreSQL cluster of the test's own, in a temporary folder on a free port, that the test may stop,
 * freeze and start again: faults are never injected into the machine's shared PostgreSQL. initdb refuses
 * to run as root, so as root every command runs as the `postgres` user (runuser), in a folder it owns.
 */
export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:PORT/kendalls */
  url: string;
  port: number;
  start(): Promise<void>;
  /** pg_ctl stop: `fast` ends sessions cleanly, `immediate` is a crash. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** SIGSTOP every process of the cluster: connections stay open, nothing answers. */
  freeze(): void;
  thaw(): void;
  query<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Stops the cluster and removes its folder. */
  destroy(): Promise<void>;
}

function binDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(path.join(root, v, 'bin', 'initdb'))) return path.join(root, v, 'bin');
  throw new Error('no PostgreSQL server binaries found under /usr/lib/postgresql: set PG_BIN');
}

const asRoot = process.getuid?.() === 0;

function run(bin: string, args: string[]): string {
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  try {
    return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${path.basename(bin)} ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`, { cause: err });
  }
}

/** The postmaster and every process it started (backends, checkpointer, …), read from /proc. */
function clusterPids(dataDir: string): number[] {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return [];
  const postmaster = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === postmaster) children.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return [postmaster, ...children];
}

async function ownedTempDir(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kn-private-pg-'));
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  return dir;
}

/** A cluster whose data folder exists (initdb or pg_basebackup made it): the handle that runs it. */
function clusterIn(bin: string, dir: string, dataDir: string, port: number, database: string, opts: { replica?: boolean } = {}): PrivatePostgres {
  const serverOptions = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-k ${dir}`,
    // Speed without lying about commits: fsync off only matters if the machine itself crashes, which the
    // tests never do. synchronous_commit stays on, or an immediate stop would lose acknowledged writes.
    '-c fsync=off',
    '-c full_page_writes=off',
    // A standby needs at least its primary's max_connections: it keeps the one its copy of the primary has.
    ...(opts.replica ? [] : ['-c max_connections=60']),
  ].join(' ');
  const pgCtl = (...args: string[]) => run(path.join(bin, 'pg_ctl'), ['-D', dataDir, ...args]);
  // If the test process dies, the cluster must not outlive it.
  const onExit = () => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(bin, 'pg_ctl'), '-D', dataDir, 'stop', '-m', 'immediate']] : [path.join(bin, 'pg_ctl'), ['-D', dataDir, 'stop', '-m', 'immediate']];
    for (const pid of clusterPids(dataDir)) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    spawnSync(cmd as string, argv as string[], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  const cluster: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/${database}`,
    port,
    async start() {
      pgCtl('-o', serverOptions, '-l', path.join(dir, 'postgres.log'), '-w', '-t', '60', 'start');
    },
    async stop(mode = 'fast') {
      pgCtl('-m', mode, '-w', '-t', '60', 'stop');
    },
    freeze() {
      for (const pid of clusterPids(dataDir)) process.kill(pid, 'SIGSTOP');
    },
    thaw() {
      for (const pid of clusterPids(dataDir)) process.kill(pid, 'SIGCONT');
    },
    async query(sql, params) {
      const client = new pg.Client({ connectionString: cluster.url, connectionTimeoutMillis: 5000 });
      await client.connect();
      try {
        return (await client.query(sql, params)).rows;
      } finally {
        await client.end();
      }
    },
    async destroy() {
      process.removeListener('exit', onExit);
      onExit();
    },
  };
  return cluster;
}

export async function startPrivatePostgres(opts: { database?: string } = {}): Promise<PrivatePostgres> {
  const bin = binDir();
  const dir = await ownedTempDir();
  const dataDir = path.join(dir, 'data');
  const port = await freePort();
  if (port === 5432) throw new Error('refusing to run a private cluster on the shared PostgreSQL port');
  const database = opts.database ?? 'kendalls';
  run(path.join(bin, 'initdb'), ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  const cluster = clusterIn(bin, dir, dataDir, port, database);
  await cluster.start();
  const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
  await admin.connect();
  await admin.query(`create database ${database}`);
  await admin.end();
  return cluster;
}

/**
 * A streaming replica of a private cluster, as a Heroku follower is one: pg_basebackup -R copies the
 * primary and writes the standby settings (primary_conninfo, standby.signal), then a second postgres
 * replays the primary's WAL and answers read-only queries. Its URL names the same database.
 */
export async function replicaOf(primary: Pick<PrivatePostgres, 'port' | 'url'>): Promise<PrivatePostgres> {
  const bin = binDir();
  const dir = await ownedTempDir();
  const dataDir = path.join(dir, 'data');
  const port = await freePort();
  if (port === 5432) throw new Error('refusing to run a private cluster on the shared PostgreSQL port');
  // initdb's trust rules include replication connections from 127.0.0.1; a fast checkpoint, or the copy
  // waits for a spread one (minutes).
  run(path.join(bin, 'pg_basebackup'), ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', dataDir, '-R', '-X', 'stream', '--checkpoint=fast', '--no-sync']);
  const replica = clusterIn(bin, dir, dataDir, port, new URL(primary.url).pathname.slice(1), { replica: true });
  await replica.start();
  return replica;
}

#!/usr/bin/env node
// A private PgBouncer (Debian's `pgbouncer`) in transaction pool mode, as Heroku's connection pooling runs
// it, in front of a PostgreSQL server: every database name is passed through (`* =`), so a URL of the
// pooler names the same databases as the server's. As root it runs as the `postgres` user (PgBouncer
// refuses root), in a temporary folder that user owns. The admin console is the `pgbouncer` database.
//
//   node scripts/pgbouncer.mjs [postgres://postgres@127.0.0.1:5432/test]   # prints the pooler's URL, runs until Ctrl-C
//
// scripts/run-tests.mjs --pgbouncer and test/pooling.test.ts start one with startPgbouncer().
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = process.env.PGBOUNCER_BIN ?? ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => existsSync(p)) ?? 'pgbouncer';
const asRoot = process.getuid?.() === 0;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, child, logFile, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`pgbouncer exited (${child.exitCode}): ${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : ''}`);
    }
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`pgbouncer did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * @param {{ upstream: string, poolSize?: number }} opts upstream: a postgres:// URL of the server (its host, port, user)
 * @returns {Promise<{ url: (database: string) => string, adminUrl: string, port: number, stop: () => Promise<void> }>}
 */
export async function startPgbouncer(opts) {
  const upstream = new URL(opts.upstream);
  const user = decodeURIComponent(upstream.username || 'postgres');
  const password = decodeURIComponent(upstream.password || '');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kn-pgbouncer-'));
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const port = await freePort();
  const logFile = path.join(dir, 'pgbouncer.log');
  const server = [`host=${upstream.hostname}`, `port=${upstream.port || 5432}`, `user=${user}`, ...(password ? [`password=${password}`] : [])].join(' ');
  writeFileSync(path.join(dir, 'userlist.txt'), `"${user}" "${password}"\n`);
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = ${server}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      `logfile = ${logFile}`,
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      `admin_users = ${user}`,
      `stats_users = ${user}`,
      // Heroku's pooler: transaction mode, so a server connection belongs to a client for one transaction only
      // (no session state survives, prepared statements must be unnamed) and startup parameters other than
      // the ones PgBouncer tracks itself are refused, statement_timeout among them.
      'pool_mode = transaction',
      `default_pool_size = ${opts.poolSize ?? 10}`,
      'max_client_conn = 2000',
      'ignore_startup_parameters = extra_float_digits',
      'server_lifetime = 3600',
      'server_idle_timeout = 60',
      '',
    ].join('\n'),
  );
  if (asRoot) chownSync(path.join(dir, 'userlist.txt'), Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()), -1);
  const [cmd, args] = asRoot ? ['runuser', ['-u', 'postgres', '--', BIN, path.join(dir, 'pgbouncer.ini')]] : [BIN, [path.join(dir, 'pgbouncer.ini')]];
  const child = spawn(cmd, args, { stdio: 'ignore' });
  // SIGTERM is PgBouncer's immediate shutdown; SIGINT (safe shutdown) waits for every client to leave, and a client
  // that never does kept it running after runuser was killed (strays found after test runs).
  const kill = () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  // If the process that started it dies, the pooler must not outlive it.
  process.once('exit', kill);
  await waitForPort(port, child, logFile);
  const base = `postgres://${encodeURIComponent(user)}${password ? `:${encodeURIComponent(password)}` : ''}@127.0.0.1:${port}`;
  return {
    port,
    url: (database) => `${base}/${database}`,
    adminUrl: `${base}/pgbouncer`,
    async stop() {
      process.removeListener('exit', kill);
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        // runuser passes the signal on to pgbouncer.
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const upstream = process.argv[2] ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const bouncer = await startPgbouncer({ upstream });
  console.log(`pgbouncer (transaction mode) in front of ${new URL(upstream).host}: ${bouncer.url(new URL(upstream).pathname.slice(1) || 'postgres')}`);
  console.log(`admin console: psql ${bouncer.adminUrl} -c 'SHOW STATS'`);
  const stop = () => bouncer.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  setInterval(() => undefined, 1 << 30);
}

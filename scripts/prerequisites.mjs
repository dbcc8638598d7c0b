#!/usr/bin/env node
// What the test files about to run need from the machine, checked before anything starts (scripts/run-tests.mjs
// calls it first), so that a fresh machine stops within seconds with one message naming each missing piece and
// how to install it, instead of a spawn ENOENT in one test or a 300 s hang in another.
//
//   node scripts/prerequisites.mjs [test files…]     prints the message and exits 1 when something is missing
import { constants, accessSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** Lowest Node.js major the dependencies accept (Scalar and cookie declare engines ">=22"); production runs 24. */
export const MIN_NODE_MAJOR = 22;

function executable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `name` as a path, or found on PATH. */
export function findExecutable(name, env = process.env) {
  if (name.includes('/')) return executable(name) ? name : undefined;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir && executable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** PG_BIN, or the newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl (Debian's layout). */
export function findPostgresBin(env = process.env, root = '/usr/lib/postgresql') {
  const has = (dir) => executable(path.join(dir, 'initdb')) && executable(path.join(dir, 'pg_ctl'));
  if (env.PG_BIN) return has(env.PG_BIN) ? env.PG_BIN : undefined;
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => path.join(root, v, 'bin')).find(has);
}

/**
 * Resolves to an error sentence, or undefined once `settle` (handed the socket and `done`) finds the peer fine;
 * a refused connection or silence past `timeoutMs` is the sentence.
 */
function probe(host, port, timeoutMs, settle) {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (problem) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.once('error', (err) => done(err.code ?? err.message));
    settle(socket, done);
  });
}

/** Resolves to an error sentence, or undefined when something answers a Redis PING at `url`. */
function redisAnswers(url, timeoutMs) {
  const target = new URL(url);
  return probe(target.hostname, Number(target.port || 6379), timeoutMs, (socket, done) => {
    socket.once('connect', () => {
      // rediss:// would need a TLS handshake: a listening port is enough to go on.
      if (target.protocol === 'rediss:') return done(undefined);
      socket.write('PING\r\n');
    });
    // +PONG, or -NOAUTH / -ERR from a Redis that wants a password: either way a Redis is there.
    socket.once('data', (data) => done(/^[+-]/.test(String(data)) ? undefined : 'the server there is not Redis'));
  });
}

/** Resolves to an error sentence, or undefined when a TCP connection to the database's host and port opens. */
function tcpOpens(url, timeoutMs) {
  const target = new URL(url);
  return probe(target.hostname || '127.0.0.1', Number(target.port || 5432), timeoutMs, (socket, done) =>
    socket.once('connect', () => done(undefined)),
  );
}

const read = (file) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/**
 * The missing prerequisites of `files` (test files), each one sentence saying what and how to install it.
 * Only what those files use is checked: `node scripts/run-tests.mjs test/orders.test.ts` needs no browser.
 * Returns { missing: string[], warnings: string[] }.
 */
export async function checkPrerequisites(files, env = process.env, { timeoutMs = 2000, nodeVersion = process.versions.node } = {}) {
  const sources = files.map(read);
  const uses = (...markers) => sources.some((s) => markers.some((m) => s.includes(m)));
  const missing = [];
  const warnings = [];

  const major = Number(nodeVersion.split('.')[0]);
  if (major < MIN_NODE_MAJOR) {
    warnings.push(
      `Node.js ${nodeVersion} is older than ${MIN_NODE_MAJOR}, the oldest the dependencies support (production runs Node 24): install Node 24 LTS (https://nodejs.org, or \`nvm install 24\`)`,
    );
  }

  if (uses('CHROMIUM_BIN')) {
    const browser = env.CHROMIUM_BIN ?? 'chromium';
    if (!findExecutable(browser, env)) {
      missing.push(
        `a headless Chromium for the /docs rendering test (looked for "${browser}"${env.CHROMIUM_BIN ? ' from CHROMIUM_BIN' : ' on the PATH'}): \`apt-get install chromium\`, or set CHROMIUM_BIN to Chrome or Chromium (e.g. CHROMIUM_BIN=google-chrome)`,
      );
    }
  }
  if (uses('private-redis')) {
    if (!findExecutable('redis-server', env)) {
      missing.push('redis-server, for the tests that start a private Redis (the rediss:// one TLS-only): `apt-get install redis-server` (Debian\'s is built with TLS)');
    }
    if (!findExecutable('openssl', env)) missing.push('openssl, which makes the rediss:// test\'s certificate: `apt-get install openssl`');
  }
  if (uses('TEST_REDIS_URL')) {
    const url = env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
    const problem = await redisAnswers(url, timeoutMs);
    if (problem) {
      missing.push(
        `a Redis at ${url.replace(/\/\/[^@/]*@/, '//***@')} for the rate-limit tests (${problem}): \`apt-get install redis-server && service redis-server start\`, or set TEST_REDIS_URL`,
      );
    }
  }
  if (uses('private-postgres', 'support/stack')) {
    if (!findPostgresBin(env)) {
      missing.push(
        'PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/<version>/bin, for the tests that run a private cluster: `apt-get install postgresql`, or set PG_BIN to the folder holding them',
      );
    }
  }
  if (env.TEST_DATABASE_URL) {
    let url;
    try {
      url = new URL(env.TEST_DATABASE_URL);
    } catch {
      missing.push('TEST_DATABASE_URL is not a URL: use postgres://USER@HOST:PORT/DATABASE, or unset it to test on the embedded PGlite');
    }
    if (url) {
      const problem = await tcpOpens(url.toString(), timeoutMs);
      if (problem) {
        missing.push(
          `the PostgreSQL server of TEST_DATABASE_URL at ${url.host} (${problem}): start it (\`apt-get install postgresql && service postgresql start\`), or unset TEST_DATABASE_URL to test on the embedded PGlite`,
        );
      }
    }
  }
  return { missing, warnings };
}

/** The one message: every missing prerequisite on its own line. */
export function formatPrerequisites({ missing, warnings }) {
  const lines = [];
  if (missing.length > 0) {
    lines.push(`Cannot run the tests: ${missing.length} prerequisite${missing.length === 1 ? ' is' : 's are'} missing (README, "Two commands"):`);
    for (const m of missing) lines.push(`  - ${m}`);
  }
  for (const w of warnings) lines.push(`Warning: ${w}`);
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const dir = process.argv.includes('--chaos') ? 'test/chaos' : 'test';
  const files = args.length ? args : readdirSync(dir).filter((f) => f.endsWith('.test.ts')).map((f) => path.join(dir, f));
  const result = await checkPrerequisites(files);
  const message = formatPrerequisites(result);
  if (message) console.error(message);
  process.exit(result.missing.length > 0 ? 1 : 0);
}

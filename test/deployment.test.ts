import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkPrerequisites, formatPrerequisites } from '../scripts/prerequisites.mjs';
import { ConfigError, REQUIRED_BY_PROCESS, loadConfig } from '../src/config.js';
import { explainDatabaseError } from '../src/db/errors.js';
import { type TestContext, buildTestApp } from './support/app.js';
import { createTestDatabase, usingPostgres } from './support/database.js';
import { freePort, spawnNode, waitForHttp } from './support/process.js';

/** What a staging or production web dyno has, but PUBLIC_URL (and PORT, added per test). */
const DEPLOYED_WEB = {
  ENVIRONMENT: 'production',
  DATABASE_URL: 'postgres://u:p@db.example.com:5432/kn',
  AUTH0_DOMAIN: 'kendalls.us.auth0.com',
  AUTH0_AUDIENCE: 'https://api.kendallsnails.example',
  AUTH0_CLIENT_ID: 'id',
  AUTH0_CLIENT_SECRET: 'secret',
  AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'example',
  AWS_REGION: 'us-east-1',
  S3_BUCKET_NAME: 'kendalls-test',
  CORS_ALLOWED_ORIGINS: 'https://kendallsnails.example',
  TRUST_PROXY: '1',
};

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  assert.fail('the configuration was accepted');
};

/**
 * A TCP server speaking just enough of PostgreSQL's protocol to refuse a connection the way a real server does
 * when the client's TLS setting does not match: `refuse-tls` answers an SSLRequest with 'N' (no TLS here);
 * `require-tls` answers a plain start-up message with the FATAL 28000 a server whose pg_hba.conf only has hostssl
 * lines sends.
 */
async function fakePostgres(mode: 'refuse-tls' | 'require-tls'): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', (data) => {
      const sslRequest = data.length >= 8 && data.readInt32BE(4) === 80877103;
      if (sslRequest) {
        socket.write(mode === 'refuse-tls' ? 'N' : 'S');
        if (mode === 'require-tls') socket.destroy();
        return;
      }
      const fields = [
        ['S', 'FATAL'],
        ['V', 'FATAL'],
        ['C', '28000'],
        ['M', 'no pg_hba.conf entry for host "127.0.0.1", user "u", database "kn", no encryption'],
      ];
      const body = Buffer.concat([...fields.map(([k, v]) => Buffer.from(`${k}${v}\0`)), Buffer.from([0])]);
      const header = Buffer.alloc(5);
      header.write('E', 0);
      header.writeInt32BE(body.length + 4, 1);
      socket.end(Buffer.concat([header, body]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `postgres://u:p@127.0.0.1:${port}/kn`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('deployment: configuration per process', () => {
  it('runs the release command without PORT or anything only the web process needs', () => {
    const config = loadConfig({ ENVIRONMENT: 'production', DATABASE_URL: DEPLOYED_WEB.DATABASE_URL }, 'release');
    assert.equal(config.environment, 'production');
    assert.equal(config.database.url, DEPLOYED_WEB.DATABASE_URL);
    assert.deepEqual([...REQUIRED_BY_PROCESS.release].sort(), ['DATABASE_URL', 'ENVIRONMENT']);
    // The same variables are not enough for the web process, which names everything it lacks.
    const web = problemsOf(() => loadConfig({ ENVIRONMENT: 'production', DATABASE_URL: DEPLOYED_WEB.DATABASE_URL }, 'web'));
    for (const name of ['PORT', 'PUBLIC_URL', 'AUTH0_DOMAIN', 'S3_BUCKET_NAME', 'CORS_ALLOWED_ORIGINS']) {
      assert.match(web.join('; '), new RegExp(name));
    }
    // Even the release phase needs its database.
    assert.match(problemsOf(() => loadConfig({ ENVIRONMENT: 'production' }, 'release')).join('; '), /missing required variables: DATABASE_URL$/m);
  });

  it('lets invite-technician run with the database and the Management API credentials alone', () => {
    const env = {
      ENVIRONMENT: 'production',
      DATABASE_URL: DEPLOYED_WEB.DATABASE_URL,
      AUTH0_DOMAIN: DEPLOYED_WEB.AUTH0_DOMAIN,
      AUTH0_CLIENT_ID: 'id',
      AUTH0_CLIENT_SECRET: 'secret',
    };
    assert.equal(loadConfig(env, 'cli').auth0.domain, DEPLOYED_WEB.AUTH0_DOMAIN);
    assert.match(problemsOf(() => loadConfig({ ...env, AUTH0_CLIENT_SECRET: '' }, 'cli')).join(), /AUTH0_CLIENT_SECRET/);
  });

  it('refuses to start the web process in staging or production without PUBLIC_URL, saying what it is', () => {
    for (const ENVIRONMENT of ['staging', 'production']) {
      const problems = problemsOf(() => loadConfig({ ...DEPLOYED_WEB, ENVIRONMENT, PORT: '8080' }, 'web')).join('; ');
      assert.match(problems, /missing required variables: PUBLIC_URL/);
      assert.match(problems, /https:\/\/ address clients reach the API at/);
      assert.match(problems, /HEROKU_APP_DEFAULT_DOMAIN_NAME/);
    }
    assert.match(
      problemsOf(() => loadConfig({ ...DEPLOYED_WEB, PORT: '8080', PUBLIC_URL: 'api.kendallsnails.example' }, 'web')).join(),
      /PUBLIC_URL must be an absolute http\(s\) URL/,
    );
    // Development keeps its default.
    assert.equal(loadConfig({ PORT: '9000' }).publicUrl, 'http://localhost:9000');
  });

  it('the server process exits 1 with one line naming PUBLIC_URL', async () => {
    const proc = spawnNode(['src/server.ts'], { ...DEPLOYED_WEB, PORT: '0' });
    assert.equal(await proc.exit, 1);
    const lines = proc.output().trim().split('\n');
    assert.equal(lines.length, 1, proc.output());
    const line = JSON.parse(lines[0]!) as { msg: string; level: number };
    assert.equal(line.level, 60);
    assert.match(line.msg, /^Cannot start: missing required variables: PUBLIC_URL/);
  });

  it('derives PUBLIC_URL on Heroku: dyno metadata first, then the app name', () => {
    const web = { ...DEPLOYED_WEB, PORT: '8080' };
    const derived = (env: Record<string, string>) => loadConfig({ ...web, ...env }, 'web').publicUrl;
    assert.equal(derived({ HEROKU_APP_NAME: 'kendalls-pr-42' }), 'https://kendalls-pr-42.herokuapp.com');
    // New apps' default domains carry a random suffix that only the dyno metadata knows.
    assert.equal(
      derived({ HEROKU_APP_NAME: 'kendalls-pr-42', HEROKU_APP_DEFAULT_DOMAIN_NAME: 'kendalls-pr-42-1a2b3c4d5e6f.herokuapp.com' }),
      'https://kendalls-pr-42-1a2b3c4d5e6f.herokuapp.com',
    );
    assert.equal(
      derived({ PUBLIC_URL: 'https://api.kendallsnails.example/', HEROKU_APP_DEFAULT_DOMAIN_NAME: 'x.herokuapp.com', HEROKU_APP_NAME: 'x' }),
      'https://api.kendallsnails.example',
    );
  });
});

describe('deployment: the OpenAPI server entry and /docs follow PUBLIC_URL', () => {
  let ctx: TestContext;
  const domain = 'kendalls-pr-7-0123456789ab.herokuapp.com';
  before(async () => {
    // Development with its own token issuer (no Auth0), so /dev/token exists.
    ctx = await buildTestApp({
      env: { PUBLIC_URL: '', HEROKU_APP_DEFAULT_DOMAIN_NAME: domain, AUTH0_DOMAIN: '', AUTH0_ISSUER_BASE_URL: '', AUTH0_CLIENT_ID: '', AUTH0_CLIENT_SECRET: '' },
    });
    assert.equal(ctx.config.devIssuer, true);
  });
  after(() => ctx.close());

  it('uses the derived address as the server and lets the page call it', async () => {
    const doc = (await ctx.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json();
    assert.deepEqual(
      doc.servers.map((s: { url: string }) => s.url),
      [`https://${domain}`],
    );
    const page = await ctx.app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(page.statusCode, 200);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, new RegExp(`connect-src 'self' https://${domain.replace(/\./g, '\\.')}(;|$)`));
  });

  it('serves a favicon, preselects the bearer scheme and prefills /dev/token with a body that works', async () => {
    for (const url of ['/favicon.svg', '/favicon.ico']) {
      const icon = await ctx.app.inject({ method: 'GET', url });
      assert.equal(icon.statusCode, 200, url);
      assert.equal(icon.headers['content-type'], 'image/svg+xml');
      assert.match(icon.body, /^<svg /);
    }
    const page = (await ctx.app.inject({ method: 'GET', url: '/docs/' })).body;
    assert.match(page, /"favicon":\s*"\/favicon\.svg"/);
    assert.match(page, /"preferredSecurityScheme":\s*"bearerAuth"/);

    const doc = (await ctx.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json();
    const media = doc.paths['/dev/token'].post.requestBody.content['application/json'];
    const example = media.example ?? media.schema.examples?.[0];
    assert.ok(example, 'the /dev/token body has an example');
    const issued = await ctx.app.inject({ method: 'POST', url: '/dev/token', payload: example });
    assert.equal(issued.statusCode, 200, issued.body);
    assert.equal(issued.json().data.token_type, 'Bearer');
  });
});

describe('deployment: test prerequisites', () => {
  it('names each missing prerequisite and how to install it', async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'kn-empty-path-'));
    try {
      const closed = await freePort();
      const report = await checkPrerequisites(
        ['test/docs.test.ts', 'test/edge.test.ts', 'test/chaos/database.test.ts'],
        { PATH: empty, TEST_REDIS_URL: `redis://127.0.0.1:${closed}`, PG_BIN: path.join(empty, 'nope'), TEST_DATABASE_URL: `postgres://u@127.0.0.1:${closed}/x` },
        { nodeVersion: '20.11.0', timeoutMs: 1000 },
      );
      const all = report.missing.join('\n');
      assert.equal(report.missing.length, 6, all);
      assert.match(all, /Chromium.*apt-get install chromium.*CHROMIUM_BIN/);
      assert.match(all, /redis-server.*apt-get install redis-server/);
      assert.match(all, /openssl.*apt-get install openssl/);
      assert.match(all, new RegExp(`Redis at redis://127\\.0\\.0\\.1:${closed}.*TEST_REDIS_URL`));
      assert.match(all, /initdb, pg_ctl.*\/usr\/lib\/postgresql.*apt-get install postgresql/);
      assert.match(all, /TEST_DATABASE_URL/);
      assert.match(report.warnings.join(), /Node\.js 20\.11\.0 is older than 22.*Node 24/);
      const message = formatPrerequisites(report);
      assert.match(message, /^Cannot run the tests: 6 prerequisites are missing/);
      // A file needing none of them is not held up by them.
      const none = await checkPrerequisites(['test/orders.test.ts'], { PATH: empty }, { nodeVersion: '24.11.0' });
      assert.deepEqual(none, { missing: [], warnings: [] });
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('npm test stops within seconds, before preparing anything, with one message', async () => {
    const started = Date.now();
    const child = spawn(process.execPath, ['scripts/run-tests.mjs', 'test/docs.test.ts'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, CHROMIUM_BIN: '/nonexistent/chromium' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 1, out);
    assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
    assert.match(out, /Cannot run the tests: 1 prerequisite is missing[\s\S]*\/nonexistent\/chromium[\s\S]*apt-get install chromium/);
    assert.doesNotMatch(out, /# database:/, 'nothing was prepared');
  });
});

describe('deployment: database TLS mismatches name DATABASE_SSL', () => {
  it('explains refusals, requirements and unverifiable certificates, and nothing else', () => {
    assert.match(explainDatabaseError(new Error('The server does not support SSL connections'))!, /refuses TLS: set DATABASE_SSL=off/);
    assert.match(
      explainDatabaseError(new Error('no pg_hba.conf entry for host "1.2.3.4", user "u", database "d", no encryption'))!,
      /requires TLS: .*DATABASE_SSL.*no-verify/,
    );
    assert.match(explainDatabaseError(Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }))!, /DATABASE_SSL=no-verify/);
    assert.equal(explainDatabaseError(new Error('password authentication failed for user "u"')), undefined);
  });

  for (const [mode, ssl, hint] of [
    ['refuse-tls', 'no-verify', /DATABASE_SSL=off/],
    ['require-tls', 'off', /requires TLS: unset DATABASE_SSL or set it to no-verify/],
  ] as const) {
    it(`the release command against a server that ${mode === 'refuse-tls' ? 'refuses' : 'requires'} TLS`, async () => {
      const server = await fakePostgres(mode);
      try {
        const proc = spawnNode(['src/cli.ts', 'migrate'], { ENVIRONMENT: 'production', DATABASE_URL: server.url, DATABASE_SSL: ssl });
        assert.equal(await proc.exit, 1);
        assert.match(proc.output(), hint);
        assert.doesNotMatch(proc.output(), /Cannot run|PORT/, 'the configuration was accepted without PORT');
      } finally {
        await server.close();
      }
    });
  }

  it('the web process logs it at start-up, and every line it writes to stdout is one JSON object', async () => {
    const server = await fakePostgres('refuse-tls');
    const port = await freePort();
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        ...DEPLOYED_WEB,
        DATABASE_URL: server.url,
        PORT: String(port),
        HOST: '127.0.0.1',
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        LOG_LEVEL: 'info',
        RATE_LIMIT_ENABLED: 'false',
        // a loaded machine can take seconds to start the TLS exchange; the hint must not lose to the timeout
        DB_CONNECTION_TIMEOUT_MS: '30000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += String(d)));
    proc.stderr.on('data', (d) => (stderr += String(d)));
    const exit = new Promise<number | null>((resolve) => proc.on('exit', resolve));
    try {
      // as Heroku's router forwards an https request (TRUST_PROXY=1)
      const headers = { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' };
      await waitForHttp(`http://127.0.0.1:${port}/api/v1/health/live`, 120_000, headers);
      assert.equal((await fetch(`http://127.0.0.1:${port}/api/v1/nope`, { headers })).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${port}/favicon.ico`, { headers })).status, 200);
      proc.kill('SIGTERM');
      assert.equal(await exit, 0, stderr);
    } finally {
      proc.kill('SIGKILL');
      await server.close();
    }
    const lines = stdout.split('\n').filter((l) => l !== '');
    assert.ok(lines.length >= 4, stdout);
    for (const line of lines) {
      const parsed: unknown = JSON.parse(line);
      assert.ok(parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed), line);
    }
    const logs = lines.map((l) => JSON.parse(l) as { msg?: string; hint?: string; level?: number });
    const tls = logs.find((l) => l.hint !== undefined);
    assert.ok(tls, stdout);
    assert.match(tls.msg!, /refuses TLS: set DATABASE_SSL=off/);
    assert.ok(logs.some((l) => l.msg === 'shutting down'));
  });
});

// On PGlite the release command is covered by the fake servers above and by scripts/check-release.mjs.
if (usingPostgres) describe('deployment: the release command on PostgreSQL', () => {
  it('migrates in production mode with only DATABASE_URL, twice', async () => {
    const database = await createTestDatabase();
    try {
      for (const run of ['first', 'again']) {
        const proc = spawnNode(['src/cli.ts', 'migrate'], {
          ENVIRONMENT: 'production',
          NODE_ENV: 'production',
          DATABASE_URL: database.url!,
          DATABASE_SSL: 'off',
        });
        assert.equal(await proc.exit, 0, `${run}: ${proc.output()}`);
        assert.deepEqual(JSON.parse(proc.output().trim()), { level: 'info', msg: 'migrations applied', database: 'postgres' });
      }
    } finally {
      await database.drop();
    }
  });
});

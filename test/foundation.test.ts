import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { sql } from '../src/db/orm.js';
import { ConfigError, REQUIRED_IN_PRODUCTION, loadConfig } from '../src/config.js';
import { createPostgres, sslModeFor } from '../src/db/client.js';
import { type TestContext, buildTestApp, registerUser } from './support/app.js';
import { usingPostgres } from './support/database.js';
import { freePort, spawnNode, waitForHttp } from './support/process.js';
import { TcpProxy } from './support/tcp-proxy.js';

describe('foundation', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await buildTestApp();
  });
  after(() => ctx.close());

  it('reports health with every dependency up', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/health' });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.success, true);
    assert.equal(body.data.status, 'ok');
    assert.equal(body.data.checks.database.status, 'up');
    assert.equal(typeof body.data.checks.database.latency_ms, 'number');
    assert.equal(body.data.checks.identity.status, 'up');
    assert.match(body.data.version, /^\d+\.\d+\.\d+/);
    const alias = await ctx.app.inject({ method: 'GET', url: '/health' });
    assert.equal(alias.statusCode, 200);
  });

  it('answers unknown routes with the 404 envelope', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/nope?x=1' });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(Object.keys(res.json()).sort(), ['error', 'success']);
    assert.equal(res.json().success, false);
    assert.equal(res.json().error.code, 'NOT_FOUND');
    assert.match(res.json().error.message, /GET \/api\/v1\/nope/);
  });

  it('refuses unknown body fields and names each invalid field (400)', async () => {
    const user = await registerUser(ctx);
    const res = await ctx.app.inject({
      method: 'PUT',
      url: '/api/v1/users/me',
      headers: user.auth,
      payload: { name: 'Ana', nail_sizes: [1, 2], favourite_colour: 'red' },
    });
    assert.equal(res.statusCode, 400);
    const { error } = res.json();
    assert.equal(error.code, 'VALIDATION_ERROR');
    assert.equal(error.details.favourite_colour, 'is not an accepted field');
    assert.match(error.details.nail_sizes, /fewer than 10/);
  });

  it('keeps the answer to a body full of unknown fields short', async () => {
    const user = await registerUser(ctx);
    const payload: Record<string, string> = { name: 'Ana' };
    for (let i = 0; i < 500; i++) payload[`${i}${'x'.repeat(150)}`] = 'y';
    const res = await ctx.app.inject({ method: 'PUT', url: '/api/v1/users/me', headers: user.auth, payload });
    assert.equal(res.statusCode, 400);
    const { error } = res.json();
    const keys = Object.keys(error.details);
    assert.equal(keys.length, 21, 'twenty fields and a note that there are more');
    assert.equal(error.details['…'], 'more fields are invalid; fix these first');
    assert.ok(keys.every((k) => k.length <= 101));
    assert.ok(res.body.length < 8000, `answer of ${res.body.length} bytes`);
  });

  it('refuses malformed JSON with 400 INVALID_JSON', async () => {
    const user = await registerUser(ctx);
    const res = await ctx.app.inject({
      method: 'PUT',
      url: '/api/v1/users/me',
      headers: { ...user.auth, 'content-type': 'application/json' },
      payload: '{"name": ',
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'INVALID_JSON');
  });

  it('refuses a JSON body over 100 KB with 413 in the envelope', async () => {
    const user = await registerUser(ctx);
    const res = await ctx.app.inject({
      method: 'PUT',
      url: '/api/v1/users/me',
      headers: { ...user.auth, 'content-type': 'application/json' },
      payload: JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }),
    });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().success, false);
    assert.equal(res.json().error.code, 'PAYLOAD_TOO_LARGE');
  });

  it('echoes a valid X-Request-ID and logs it; replaces an invalid one', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/health', headers: { 'x-request-id': 'heroku-req-12345678' } });
    assert.equal(res.headers['x-request-id'], 'heroku-req-12345678');
    const line = ctx.logs.find((l) => l.reqId === 'heroku-req-12345678' && l.msg === 'request completed');
    assert.ok(line, 'request logged with its id');
    assert.equal(line.status, 200);
    assert.equal(line.route, '/api/v1/health');
    assert.equal(typeof line.duration_ms, 'number');
    const bad = await ctx.app.inject({ method: 'GET', url: '/api/v1/health', headers: { 'x-request-id': 'bad id\n<script>' } });
    assert.match(String(bad.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  it('never logs the Authorization header or the token', async () => {
    const user = await registerUser(ctx);
    await ctx.app.inject({ method: 'GET', url: '/api/v1/users/me', headers: user.auth });
    const all = JSON.stringify(ctx.logs);
    assert.ok(!all.includes(user.token), 'token absent from logs');
    assert.ok(!all.includes('test-client-secret-do-not-log'), 'client secret absent from logs');
  });

  it('turns an unexpected failure into 500 INTERNAL_ERROR without SQL, logged with the request id', async () => {
    // A real fault: the users table disappears under the running app.
    const ctx2 = await buildTestApp();
    try {
      const user = await registerUser(ctx2);
      await ctx2.database.handle.db.execute('alter table users rename to users_gone');
      const res = await ctx2.app.inject({ method: 'GET', url: '/api/v1/users/me', headers: { ...user.auth, 'x-request-id': 'fault-req-000001' } });
      assert.equal(res.statusCode, 500);
      const body = res.json();
      assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message']);
      assert.equal(body.error.code, 'INTERNAL_ERROR');
      assert.match(body.error.message, /fault-req-000001/);
      assert.ok(!/users_gone|relation|select|sql/i.test(res.body), 'no SQL in the response');
      assert.ok(ctx2.logs.some((l) => l.reqId === 'fault-req-000001' && l.level === 50 && l.err));
    } finally {
      await ctx2.close();
    }
  });

  it('publishes an OpenAPI 3 document and the reference page', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.match(doc.openapi, /^3\./);
    assert.equal(doc.info.title, "Kendall's Nails API");
    assert.ok(doc.paths['/api/v1/health']);
    assert.ok(doc.paths['/api/v1/users/me'].put.security, 'protected routes declare bearer auth');
    const docs = await ctx.app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(docs.statusCode, 200);
    assert.match(docs.body, /<html/i);
    assert.match(String(docs.headers['content-type']), /^text\/html/);
    // Scalar is loaded on the first visit and answers through its own instance: its redirect and script pass through.
    const bare = await ctx.app.inject({ method: 'GET', url: '/docs' });
    assert.equal(bare.statusCode, 301);
    assert.equal(bare.headers.location, '/docs/');
    const script = await ctx.app.inject({ method: 'GET', url: '/docs/js/scalar.js' });
    assert.equal(script.statusCode, 200);
    assert.match(String(script.headers['content-type']), /^application\/javascript/);
    assert.ok(script.body.length > 1_000_000, 'the whole Scalar bundle is served');
  });
});

describe('configuration', () => {
  it('lists every missing variable at once in production', () => {
    assert.throws(
      () => loadConfig({ ENVIRONMENT: 'production' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        for (const name of REQUIRED_IN_PRODUCTION.filter((n) => n !== 'ENVIRONMENT')) assert.match(err.message, new RegExp(name));
        return true;
      },
    );
  });

  it('stops the process with exit code 1 and one message naming them', async () => {
    const proc = spawnNode(['src/server.ts'], { ENVIRONMENT: 'production', PORT: '0', AUTH0_DOMAIN: 'x.auth0.com' });
    const code = await proc.exit;
    assert.equal(code, 1);
    const lines = proc.output().trim().split('\n');
    assert.equal(lines.length, 1, proc.output());
    for (const name of ['DATABASE_URL', 'AUTH0_AUDIENCE', 'AWS_ACCESS_KEY_ID', 'S3_BUCKET_NAME', 'CORS_ALLOWED_ORIGINS']) {
      assert.match(lines[0]!, new RegExp(name));
    }
    assert.doesNotMatch(lines[0]!, /AUTH0_DOMAIN/);
  });

  it('refuses invalid values with a readable message', () => {
    assert.throws(() => loadConfig({ DB_POOL_MAX: 'lots', LOG_LEVEL: 'loud' }), /DB_POOL_MAX.*LOG_LEVEL|LOG_LEVEL.*DB_POOL_MAX/);
    assert.throws(() => loadConfig({ CORS_ALLOWED_ORIGINS: '*' }), /CORS_ALLOWED_ORIGINS/);
  });

  it('encrypts deployed database connections unless told otherwise', () => {
    const url = 'postgres://u:p@db.example.com:5432/d';
    const dev = loadConfig({ DATABASE_URL: url });
    const prod = { environment: 'production' as const };
    assert.equal(sslModeFor(url, dev, dev.database.ssl), 'off');
    assert.equal(sslModeFor(url, prod), 'no-verify');
    assert.equal(sslModeFor(`${url}?sslmode=require`, dev), 'no-verify');
    assert.equal(sslModeFor(`${url}?sslmode=verify-full`, dev), 'verify');
    assert.equal(sslModeFor(`${url}?sslmode=disable`, prod), 'off');
    const verify = loadConfig({ DATABASE_URL: url, DATABASE_SSL: 'verify' });
    assert.equal(sslModeFor(url, prod, verify.database.ssl), 'verify');
    assert.throws(() => loadConfig({ DATABASE_SSL: 'maybe' }), /DATABASE_SSL must be off, no-verify or verify/);
  });

  it('never runs the development issuer outside development', () => {
    assert.equal(loadConfig({}).devIssuer, true);
    assert.throws(() => loadConfig({ ENVIRONMENT: 'staging' }), /development token issuer/);
  });
});

describe('graceful shutdown', () => {
  it('finishes an in-flight request on SIGTERM, refuses new connections, exits 0', async () => {
    const port = await freePort();
    const dataDir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/kn-sigterm-`);
    const proc = spawnNode(['src/server.ts'], { PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'warn', PUBLIC_URL: `http://127.0.0.1:${port}` });
    try {
      // Generous: start-up includes tsx compiling and PGlite migrating, slow on a loaded 2-core machine.
      await waitForHttp(`http://127.0.0.1:${port}/api/v1/health/live`, 120_000);
      const tokenRes = await fetch(`http://127.0.0.1:${port}/dev/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ role: 'customer', email: 'slow@example.com', name: 'Slow' }),
      });
      const token = ((await tokenRes.json()) as { data: { access_token: string } }).data.access_token;
      const reg = await fetch(`http://127.0.0.1:${port}/api/v1/auth/register`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      assert.equal(reg.status, 201);

      // A slow client: headers and half the body now, the rest after SIGTERM.
      const body = JSON.stringify({ name: 'Slow but steady' });
      const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port, method: 'PUT', path: '/api/v1/users/me', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (res) => {
            let text = '';
            res.on('data', (d) => (text += String(d)));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          },
        );
        req.on('error', reject);
        req.write(body.slice(0, 5));
        setTimeout(() => {
          proc.child.kill('SIGTERM');
          setTimeout(async () => {
            // New connections are refused while the old one is still being served.
            await assert.rejects(fetch(`http://127.0.0.1:${port}/api/v1/health/live`, { signal: AbortSignal.timeout(2000) }));
            req.end(body.slice(5));
          }, 400);
        }, 300);
      });
      const result = await inFlight;
      assert.equal(result.status, 200, result.body);
      assert.equal(JSON.parse(result.body).data.name, 'Slow but steady');
      assert.equal(await proc.exit, 0, proc.output());
    } finally {
      proc.child.kill('SIGKILL');
      (await import('node:fs')).rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

if (usingPostgres) {
  describe('PostgreSQL operations', () => {
    it('health turns 503 naming the database when it is unreachable, and recovers without a restart', async () => {
      const target = new URL(process.env.TEST_DATABASE_URL!);
      const { createTestDatabase } = await import('./support/database.js');
      const base = await createTestDatabase();
      const proxy = await new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) }).start();
      const url = new URL(base.url!);
      url.host = `127.0.0.1:${proxy.port}`;
      const config = loadConfig({ ENVIRONMENT: 'development', DATABASE_URL: url.toString(), DB_CONNECTION_TIMEOUT_MS: '1000', LOG_LEVEL: 'error', DATA_DIR: '/tmp/kn-health-test' });
      const handle = createPostgres(config);
      const ctx = await buildTestApp({ database: { handle, drop: async () => undefined } });
      try {
        const up = await ctx.app.inject({ method: 'GET', url: '/api/v1/health' });
        assert.equal(up.statusCode, 200);
        proxy.cut();
        await new Promise((r) => setTimeout(r, 3100)); // let the cached result expire
        const started = Date.now();
        const down = await ctx.app.inject({ method: 'GET', url: '/api/v1/health' });
        assert.ok(Date.now() - started < 2500, 'the probe times out within 2 s');
        assert.equal(down.statusCode, 503);
        assert.equal(down.json().data.checks.database.status, 'down');
        assert.match(down.json().error.message, /database/);
        assert.equal(down.json().data.checks.identity.status, 'up');
        proxy.restore();
        await new Promise((r) => setTimeout(r, 3100));
        const back = await ctx.app.inject({ method: 'GET', url: '/api/v1/health' });
        assert.equal(back.statusCode, 200);
        assert.equal(back.json().data.checks.database.status, 'up');
      } finally {
        await ctx.close();
        await handle.close().catch(() => undefined);
        await proxy.stop();
        await base.drop();
      }
    });

    it('applies migrations once when two processes run them concurrently', async () => {
      const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
      await admin.connect();
      const name = `kn_m_${process.env.KN_RUN_ID ?? 'x'}_${Date.now()}`;
      await admin.query(`create database ${name}`);
      const url = new URL(process.env.TEST_DATABASE_URL!);
      url.pathname = `/${name}`;
      try {
        const env = { DATABASE_URL: url.toString(), ENVIRONMENT: 'development' };
        const [a, b] = [spawnNode(['src/cli.ts', 'migrate'], env), spawnNode(['src/cli.ts', 'migrate'], env)];
        assert.deepEqual(await Promise.all([a.exit, b.exit]), [0, 0], a.output() + b.output());
        const check = new pg.Client({ connectionString: url.toString() });
        await check.connect();
        const { rows } = await check.query('select count(*)::int as n from drizzle.__drizzle_migrations');
        const { readdirSync } = await import('node:fs');
        const files = readdirSync('src/db/migrations').filter((f) => f.endsWith('.sql'));
        assert.equal(rows[0].n, files.length);
        const tables = await check.query(`select count(*)::int as n from information_schema.tables where table_schema = 'public' and table_name = 'orders'`);
        assert.equal(tables.rows[0].n, 1);
        await check.end();
      } finally {
        await admin.query(`drop database if exists ${name} with (force)`);
        await admin.end();
      }
    });

    it('gives a pooled client back when its connection dies before the transaction begins, so the pool still serves and closes', async () => {
      // drizzle-orm 0.45 sent BEGIN outside its try/finally: the client was never released, the next query waited
      // for a slot forever and pool.end() never returned (the follower chaos test hung CI this way after a restart).
      const config = loadConfig({ ENVIRONMENT: 'development', DATABASE_URL: process.env.TEST_DATABASE_URL!, DB_CONNECTION_TIMEOUT_MS: '1000' });
      const handle = createPostgres(config, undefined, undefined, { max: 1 });
      try {
        await handle.ping();
        handle.pool!.once('acquire', (client: pg.PoolClient) => (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy());
        await assert.rejects(handle.db.transaction(async (tx) => tx.execute(sql`select 1`)));
        await handle.ping();
        assert.equal(handle.pool!.totalCount, 1, 'the dead client was dropped and a new one made');
      } finally {
        await handle.close();
      }
    });

    it('exits non-zero when migrations cannot run', async () => {
      const proc = spawnNode(['src/cli.ts', 'migrate'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere', DB_CONNECTION_TIMEOUT_MS: '500' });
      assert.equal(await proc.exit, 1);
      assert.match(proc.output(), /Failed/);
    });
  });
}


import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { sql } from '../src/db/orm.js';
import { buildTestApp } from './support/app.js';
import { freePort, spawnNode, waitForHttp } from './support/process.js';

/**
 * Every line the server process writes, on stdout and stderr together, is one JSON object (what Heroku's log
 * drain and `heroku logs` filters expect): request lines, start-up, a Node process warning, shutdown, and a
 * failed start.
 */
function jsonLines(output: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      let parsed: unknown;
      assert.doesNotThrow(() => (parsed = JSON.parse(line)), `not JSON: ${line}`);
      assert.ok(parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed), `not an object: ${line}`);
      assert.equal(typeof (parsed as { level?: unknown }).level, 'number', line);
      return parsed as Record<string, unknown>;
    });
}

// Emitted two seconds in, once the server has taken over Node's warnings (Node prints them as text by default).
const WARN_LATER = `data:text/javascript,setTimeout(() => process.emitWarning('a notice from a dependency', 'TestWarning'), 2000).unref();`;

describe('logs over real stdout and stderr', () => {
  it('are one JSON object per line, from start to shutdown, Node warnings included', async () => {
    const port = await freePort();
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kn-logs-'));
    const url = `http://127.0.0.1:${port}`;
    const proc = spawnNode(['--import', WARN_LATER, 'src/server.ts'], {
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      PUBLIC_URL: url,
      RATE_LIMIT_ENABLED: 'false',
    });
    try {
      await waitForHttp(`${url}/api/v1/health/live`, 120_000);
      const token = await fetch(`${url}/dev/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ role: 'customer', email: 'logs@example.com', name: 'Line\nBreak "quoted"' }),
      });
      const auth = { authorization: `Bearer ${((await token.json()) as { data: { access_token: string } }).data.access_token}` };
      assert.equal((await fetch(`${url}/api/v1/auth/register`, { method: 'POST', headers: auth })).status, 201);
      assert.equal((await fetch(`${url}/api/v1/users/me`, { headers: auth })).status, 200);
      assert.equal((await fetch(`${url}/api/v1/nope?secret=1`, { headers: { 'x-forwarded-for': '198.51.100.7' } })).status, 404);
      const invalid = await fetch(`${url}/api/v1/users/me`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: '{"name":' });
      assert.equal(invalid.status, 400);
      assert.equal((await fetch(`${url}/api/v1/users/me`, { headers: { authorization: 'Bearer junk' } })).status, 401);
      // Let the warning fire.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      proc.child.kill('SIGTERM');
      assert.equal(await proc.exit, 0, proc.output());

      const lines = jsonLines(proc.output());
      const requests = lines.filter((l) => l.msg === 'request completed');
      assert.ok(requests.length >= 6, `request lines: ${requests.length}`);
      const notFound = requests.find((l) => l.status === 404)!;
      assert.equal(notFound.path, '/api/v1/nope', 'no query string');
      assert.equal(notFound.ip, '127.0.0.1', 'the socket address: no proxy is trusted in development by default');
      assert.ok(lines.some((l) => l.msg === 'process warning' && (l.warning as { name: string }).name === 'TestWarning'), 'the warning, as JSON');
      assert.ok(lines.some((l) => l.msg === 'shutting down'));
      assert.ok(!proc.output().includes(auth.authorization.slice(7)), 'no token in the logs');
    } finally {
      proc.child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('a start refused for configuration is one JSON line naming every problem', async () => {
    const proc = spawnNode(['src/server.ts'], { ENVIRONMENT: 'production', PORT: '0', TRUST_PROXY: 'everyone' });
    assert.equal(await proc.exit, 1);
    const lines = jsonLines(proc.output());
    assert.equal(lines.length, 1, proc.output());
    assert.equal(lines[0]!.level, 60);
    assert.match(String(lines[0]!.msg), /^Cannot start: .*DATABASE_URL.*TRUST_PROXY must be/);
    assert.ok(Array.isArray(lines[0]!.problems));
  });

  it('a start that fails later (database unreachable) is one JSON line too, stack inside', async () => {
    const proc = spawnNode(['src/server.ts'], {
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: `postgres://nobody@127.0.0.1:${await freePort()}/none`,
      DB_CONNECTION_TIMEOUT_MS: '500',
    });
    assert.equal(await proc.exit, 1);
    const lines = jsonLines(proc.output());
    const fatal = lines.find((l) => l.level === 60);
    assert.ok(fatal, proc.output());
    assert.equal(typeof (fatal.err as { stack?: unknown }).stack, 'string');
  });
});

describe('a failed query in the logs', () => {
  it('keeps the statement and drops its values (a message text, a name, an address)', async () => {
    const ctx = await buildTestApp();
    try {
      const failed = await ctx.database.handle.db.execute(sql`select ${'Ada private note'}::text, ${'12 Rue Secrète'}::text, 1 / 0`).catch((err: unknown) => err);
      assert.ok(failed instanceof Error && /params: Ada private note/.test(failed.message), 'the query should fail with its values in the message');
      ctx.app.log.error({ err: failed }, 'unhandled error');
      ctx.app.log.warn({ err: { message: failed.message } }, 'retrying');
      const [whole, brief] = ctx.logs.slice(-2) as Array<{ err: { message: string; stack?: string; params?: unknown } }>;
      for (const line of [whole!, brief!]) {
        assert.doesNotMatch(JSON.stringify(line), /Ada private note|Rue Secr/);
        assert.match(line.err.message, /^Failed query: select \$1::text, \$2::text, 1 \/ 0\nparams: \[(2|its) values not logged\]/);
      }
      assert.match(whole!.err.stack ?? '', /values not logged/);
      assert.equal(whole!.err.params, undefined);
    } finally {
      await ctx.close();
    }
  });
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { type IncomingMessage, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VERSION } from '../src/app.js';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { TEST_AUDIENCE } from './support/fake-auth0.js';
import { freePort } from './support/process.js';

const SCRIPT = path.resolve(import.meta.dirname, '../scripts/smoke.mjs');

/** Runs scripts/smoke.mjs as the deploy workflow does: its own process, only the given environment. */
function runSmoke(url: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [SCRIPT, url], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += String(d)));
  child.stderr.on('data', (d) => (out += String(d)));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
}

const readBody = async (req: IncomingMessage) => {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return text;
};

describe('scripts/smoke.mjs against a running server', () => {
  let ctx: TestContext;
  let url: string;
  let user: TestUser;
  before(async () => {
    ctx = await buildTestApp();
    url = await ctx.app.listen({ host: '127.0.0.1', port: 0 });
    user = await registerUser(ctx, 'customer');
  });
  after(() => ctx.close());

  it('passes with health up and a valid token, skipping the HTTPS check on an http URL', async () => {
    const { code, out } = await runSmoke(`${url}/`, { SMOKE_TOKEN: user.token, SMOKE_EXPECT_VERSION: VERSION });
    assert.equal(code, 0, out);
    assert.ok(out.includes(`ok   health: 200, every dependency up, version ${VERSION}\n`), out);
    assert.match(out, /^ok {3}authenticated read: GET \/api\/v1\/users\/me 200 \(customer\)$/m);
    assert.match(out, /^skip https only/m);
  });

  it('gets its token with the OAuth password grant from the token endpoint', async () => {
    const seen: Array<Record<string, string>> = [];
    const tokens = createServer(async (req, res) => {
      const form = Object.fromEntries(new URLSearchParams(await readBody(req)));
      seen.push({ path: req.url ?? '', type: String(req.headers['content-type']), ...form });
      const good = form.username === 'smoke@kendallsnails.test' && form.password === 'pw';
      res.writeHead(good ? 200 : 403, { 'content-type': 'application/json' });
      res.end(JSON.stringify(good ? { access_token: user.token, token_type: 'Bearer' } : { error: 'invalid_grant' }));
    });
    await new Promise<void>((resolve) => tokens.listen(0, '127.0.0.1', resolve));
    const tokenUrl = `http://127.0.0.1:${(tokens.address() as AddressInfo).port}/oauth/token`;
    const grant = {
      SMOKE_TOKEN_URL: tokenUrl,
      SMOKE_USERNAME: 'smoke@kendallsnails.test',
      SMOKE_PASSWORD: 'pw',
      SMOKE_CLIENT_ID: 'smoke-client',
      SMOKE_AUDIENCE: TEST_AUDIENCE,
      SMOKE_REALM: 'Username-Password-Authentication',
    };
    try {
      const ok = await runSmoke(url, grant);
      assert.equal(ok.code, 0, ok.out);
      assert.deepEqual(seen[0], {
        path: '/oauth/token',
        type: 'application/x-www-form-urlencoded',
        grant_type: 'http://auth0.com/oauth/grant-type/password-realm',
        username: 'smoke@kendallsnails.test',
        password: 'pw',
        client_id: 'smoke-client',
        audience: TEST_AUDIENCE,
        realm: 'Username-Password-Authentication',
      });
      const refused = await runSmoke(url, { ...grant, SMOKE_PASSWORD: 'wrong' });
      assert.equal(refused.code, 1);
      assert.match(refused.out, /^FAIL authenticated read: token endpoint answered 403 invalid_grant$/m);
      assert.doesNotMatch(refused.out, /wrong/, 'the password is never printed');
    } finally {
      tokens.close();
    }
  });

  it('fails on a token the API refuses, or with no way to get one', async () => {
    const bad = await runSmoke(url, { SMOKE_TOKEN: 'not.a.token' });
    assert.equal(bad.code, 1);
    assert.match(bad.out, /^ok {3}health/m);
    assert.match(bad.out, /^FAIL authenticated read: GET \/api\/v1\/users\/me: 401 .*INVALID_TOKEN/m);
    const none = await runSmoke(url, {});
    assert.equal(none.code, 1);
    assert.match(none.out, /^FAIL authenticated read: no access token: set SMOKE_TOKEN, or SMOKE_TOKEN_URL/m);
  });

  it('fails when the version is not the one expected (the promoted slug is not the one tested)', async () => {
    const { code, out } = await runSmoke(url, { SMOKE_TOKEN: user.token, SMOKE_EXPECT_VERSION: '9.9.9' });
    assert.equal(code, 1);
    assert.ok(out.includes(`FAIL health: version ${VERSION}, expected 9.9.9\n`), out);
  });

  it('fails when a dependency is down (503), and when nothing answers', async () => {
    ctx.auth0.jwksMode = 'down';
    try {
      // Health caches its probes for 3 s.
      await new Promise((resolve) => setTimeout(resolve, 3100));
      const degraded = await runSmoke(url, { SMOKE_TOKEN: user.token });
      assert.equal(degraded.code, 1);
      assert.match(degraded.out, /^FAIL health: 503 .*DEPENDENCY_UNAVAILABLE/m);
    } finally {
      ctx.auth0.jwksMode = 'ok';
    }
    const closed = await runSmoke(`http://127.0.0.1:${await freePort()}`, { SMOKE_TOKEN: user.token });
    assert.equal(closed.code, 1);
    assert.match(closed.out, /^FAIL health: fetch failed$/m);
  });

  it('answers usage with exit code 2 without a URL', async () => {
    const { code, out } = await runSmoke('', {});
    assert.equal(code, 2);
    assert.match(out, /usage: node scripts\/smoke\.mjs/);
  });
});

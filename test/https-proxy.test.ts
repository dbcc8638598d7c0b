import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';
import { DEPLOYED_ENV, type TestContext, buildTestApp } from './support/app.js';

/**
 * TRUST_PROXY (issue 14, defect 4) and HTTPS only (issue 18), over real HTTP: the app listens on loopback and
 * every request comes from 127.0.0.1, which is or is not a trusted proxy depending on TRUST_PROXY.
 */

/** Everything staging needs besides Auth0 (the fake tenant's env) and the database (a test clone). */
const STAGING = { ...DEPLOYED_ENV, ENVIRONMENT: 'staging' };
const PUBLIC = 'https://api.kendallsnails.test';

interface Listening {
  ctx: TestContext;
  url: string;
  send(path: string, init?: { method?: string; headers?: Record<string, string>; body?: string }): Promise<Response>;
}

async function listening(env: Record<string, string>): Promise<Listening> {
  const ctx = await buildTestApp({ env });
  const address = await ctx.app.listen({ host: '127.0.0.1', port: 0 });
  return {
    ctx,
    url: address,
    send: (path, init = {}) => fetch(`${address}${path}`, { redirect: 'manual', ...init }),
  };
}

/** The request-log line of the response `res` (joined by the request id the app echoes). */
function logLine(ctx: TestContext, res: Response) {
  const id = res.headers.get('x-request-id');
  const line = ctx.logs.find((l) => l.reqId === id && l.msg === 'request completed');
  assert.ok(line, `log line of ${id}`);
  return line;
}

describe('trusted proxy: TRUST_PROXY', () => {
  it('is parsed as a hop count or a list of proxy addresses, and refused otherwise', () => {
    assert.equal(loadConfig({}).trustProxy, false);
    assert.equal(loadConfig({ TRUST_PROXY: '1' }).trustProxy, 1);
    assert.deepEqual(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.7,loopback, fd00::/8' }).trustProxy, [
      '10.0.0.0/8',
      '192.168.1.7',
      'loopback',
      'fd00::/8',
    ]);
    for (const bad of ['0', '11', 'true', '10.0.0.0/33', '10.0.0/8', 'router.example.com', '::1/129', ',']) {
      assert.throws(() => loadConfig({ TRUST_PROXY: bad }), /TRUST_PROXY must be|TRUST_PROXY as a hop count/, bad);
    }
  });

  it('is required in staging and production (Heroku: 1), so client addresses and the scheme are never guessed', () => {
    assert.throws(
      () =>
        loadConfig({
          ...STAGING,
          AUTH0_DOMAIN: 'kendalls.us.auth0.com',
          AUTH0_AUDIENCE: 'a',
          AUTH0_CLIENT_ID: 'i',
          AUTH0_CLIENT_SECRET: 's',
          PUBLIC_URL: 'https://staging.kendallsnails.example',
        }),
      (err: unknown) => err instanceof ConfigError && /missing required variables: TRUST_PROXY$/.test(err.message),
    );
  });

  describe('unset: the socket address, whatever X-Forwarded-For says', () => {
    let server: Listening;
    before(async () => {
      server = await listening({ RATE_LIMIT_ENABLED: 'true' });
    });
    after(() => server.ctx.close());

    it('keys the rate limit and the log line on the peer, not on a spoofed X-Forwarded-For', async () => {
      for (let i = 1; i <= 20; i++) {
        const res = await server.send('/api/v1/designs', { headers: { 'x-forwarded-for': `198.51.100.${i}` } });
        assert.equal(res.status, 200, `request ${i}`);
        assert.equal(res.headers.get('x-ratelimit-remaining'), String(20 - i), 'one budget: the peer’s');
        assert.equal(logLine(server.ctx, res).ip, '127.0.0.1');
      }
      const refused = await server.send('/api/v1/designs', { headers: { 'x-forwarded-for': '198.51.100.99' } });
      assert.equal(refused.status, 429);
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'RATE_LIMITED');
    });

    it('ignores a claimed X-Forwarded-Proto: no HSTS for plain HTTP', async () => {
      const res = await server.send('/api/v1/health/live', { headers: { 'x-forwarded-proto': 'https' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('strict-transport-security'), null);
    });
  });

  describe('a CIDR list that does not include the peer', () => {
    let server: Listening;
    before(async () => {
      server = await listening({ RATE_LIMIT_ENABLED: 'true', TRUST_PROXY: '10.0.0.0/8,192.168.0.0/16' });
    });
    after(() => server.ctx.close());

    it('treats the peer as the client', async () => {
      const res = await server.send('/api/v1/designs', { headers: { 'x-forwarded-for': '198.51.100.1', 'x-forwarded-proto': 'https' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-ratelimit-remaining'), '19');
      assert.equal(logLine(server.ctx, res).ip, '127.0.0.1');
      assert.equal(res.headers.get('strict-transport-security'), null);
      const again = await server.send('/api/v1/designs', { headers: { 'x-forwarded-for': '198.51.100.2' } });
      assert.equal(again.headers.get('x-ratelimit-remaining'), '18', 'the same budget');
    });
  });

  for (const trust of ['1', '127.0.0.0/8']) {
    describe(`TRUST_PROXY=${trust}: the peer is the proxy`, () => {
      let server: Listening;
      before(async () => {
        server = await listening({ RATE_LIMIT_ENABLED: 'true', TRUST_PROXY: trust });
      });
      after(() => server.ctx.close());

      it('keys on the address the proxy appended, so each client behind it has its own budget', async () => {
        for (let i = 1; i <= 25; i++) {
          // What the client sent first is ignored; the proxy's own entry is the last one.
          const res = await server.send('/api/v1/designs', { headers: { 'x-forwarded-for': `192.0.2.1, 198.51.100.${i}` } });
          assert.equal(res.status, 200, `request ${i}`);
          assert.equal(res.headers.get('x-ratelimit-remaining'), '19', `client ${i} starts a fresh budget`);
          assert.equal(logLine(server.ctx, res).ip, `198.51.100.${i}`);
        }
        // One client cannot escape its budget by varying the part it controls.
        for (let i = 1; i < 20; i++) await server.send('/api/v1/designs', { headers: { 'x-forwarded-for': `192.0.2.${i}, 198.51.100.1` } });
        assert.equal((await server.send('/api/v1/designs', { headers: { 'x-forwarded-for': '192.0.2.99, 198.51.100.1' } })).status, 429);
      });

      it('sends HSTS when the proxy says the client used HTTPS', async () => {
        const https = await server.send('/api/v1/health/live', { headers: { 'x-forwarded-proto': 'https' } });
        assert.equal(https.headers.get('strict-transport-security'), 'max-age=31536000; includeSubDomains');
        const http = await server.send('/api/v1/health/live', { headers: { 'x-forwarded-proto': 'http' } });
        assert.equal(http.headers.get('strict-transport-security'), null);
        // Development serves plain HTTP (no redirect outside staging and production).
        assert.equal(http.status, 200);
      });
    });
  }
});

describe('HTTPS only in staging and production', () => {
  let server: Listening;
  before(async () => {
    server = await listening({ ...STAGING, TRUST_PROXY: '1', PUBLIC_URL: PUBLIC });
  });
  after(() => server.ctx.close());

  it('redirects a plain-HTTP GET or HEAD with 308 to the same path and query on PUBLIC_URL', async () => {
    for (const method of ['GET', 'HEAD']) {
      for (const path of ['/api/v1/designs?limit=5&cursor=abc', '/health', '/api/v1/health', '/docs/']) {
        const res = await server.send(path, { method, headers: { 'x-forwarded-proto': 'http' } });
        assert.equal(res.status, 308, `${method} ${path}`);
        assert.equal(res.headers.get('location'), `${PUBLIC}${path}`);
        assert.equal(res.headers.get('strict-transport-security'), null);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff', 'security headers on the redirect too');
        assert.equal(await res.text(), '');
      }
    }
  });

  it('refuses any other plain-HTTP method with 403 HTTPS_REQUIRED, before rate limits and authentication', async () => {
    for (const [method, path] of [
      ['POST', '/api/v1/auth/register'],
      ['PUT', '/api/v1/users/me'],
      ['DELETE', '/api/v1/orders/00000000-0000-4000-8000-000000000000'],
      ['PATCH', '/api/v1/nope'],
    ] as const) {
      const res = await server.send(path, {
        method,
        headers: { 'x-forwarded-proto': 'http', 'content-type': 'application/json' },
        body: '{"name":"Kendall"}',
      });
      assert.equal(res.status, 403, `${method} ${path}`);
      const body = (await res.json()) as { success: boolean; error: { code: string; message: string } };
      assert.equal(body.success, false);
      assert.equal(body.error.code, 'HTTPS_REQUIRED');
      assert.match(body.error.message, /https:\/\//);
      assert.equal(res.headers.get('x-ratelimit-limit'), null, 'not counted');
    }
  });

  it('serves HTTPS (per the trusted proxy) with HSTS', async () => {
    const res = await server.send('/api/v1/designs', { headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('strict-transport-security'), 'max-age=31536000; includeSubDomains');
    const post = await server.send('/api/v1/auth/register', { method: 'POST', headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(post.status, 401, 'reaches authentication');
  });

  it('treats a request without X-Forwarded-Proto as what its socket is: plain HTTP', async () => {
    const res = await server.send('/api/v1/designs');
    assert.equal(res.status, 308);
    assert.equal(res.headers.get('location'), `${PUBLIC}/api/v1/designs`);
  });
});

describe('HTTPS only: redirect target and untrusted peers', () => {
  it('uses the request’s host when PUBLIC_URL is not an https URL', async () => {
    const server = await listening({ ...STAGING, TRUST_PROXY: '1' });
    try {
      const res = await server.send('/api/v1/designs', { headers: { 'x-forwarded-proto': 'http' } });
      assert.equal(res.status, 308);
      assert.equal(res.headers.get('location'), `${server.url.replace('http://', 'https://')}/api/v1/designs`);
    } finally {
      await server.ctx.close();
    }
  });

  it('does not believe X-Forwarded-Proto: https from a peer TRUST_PROXY does not list', async () => {
    const server = await listening({ ...STAGING, TRUST_PROXY: '10.0.0.0/8', PUBLIC_URL: PUBLIC });
    try {
      const get = await server.send('/api/v1/designs', { headers: { 'x-forwarded-proto': 'https' } });
      assert.equal(get.status, 308);
      assert.equal(get.headers.get('strict-transport-security'), null);
      const post = await server.send('/api/v1/auth/register', { method: 'POST', headers: { 'x-forwarded-proto': 'https' } });
      assert.equal(post.status, 403);
    } finally {
      await server.ctx.close();
    }
  });
});

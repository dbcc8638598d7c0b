import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { type TestContext, buildTestApp, registerUser } from './support/app.js';
import { createTestDatabase } from './support/database.js';
import type { ApiResponse } from './support/http.js';
import { createOrder, submitOrder } from './support/orders.js';
import { freePort } from './support/process.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { startTlsRedis } from './support/private-redis.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ORIGIN = 'https://app.kendallsnails.test';
const RATE_LIMITED = { RATE_LIMIT_ENABLED: 'true' };

/** A documentation address (RFC 5737) per test, so each starts with a fresh anonymous budget. */
let nextHost = 1;
const clientIp = () => `203.0.113.${nextHost++}`;

function getAs(ctx: TestContext, ip: string, url = '/api/v1/designs', headers: Record<string, string> = {}) {
  return ctx.app.inject({ method: 'GET', url, remoteAddress: ip, headers });
}

function assertRateLimited(res: ApiResponse, limit: number) {
  assert.equal(res.statusCode, 429);
  assert.equal(res.json().success, false);
  assert.equal(res.json().error.code, 'RATE_LIMITED');
  const retryAfter = Number(res.headers['retry-after']);
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${res.headers['retry-after']}`);
  assert.equal(res.headers['x-ratelimit-limit'], String(limit));
  assert.equal(res.headers['x-ratelimit-remaining'], '0');
  assert.ok(Number(res.headers['x-ratelimit-reset']) >= 1);
}

/** Polls until `check` holds; generous bound because the machine is shared. */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`${what} did not happen within ${timeoutMs} ms`);
}

describe('edge: rate limits (in memory)', () => {
  let ctx: TestContext;
  before(async () => {
    // Behind one proxy, as on Heroku (test/https-proxy.test.ts covers the other TRUST_PROXY settings).
    ctx = await buildTestApp({ env: { ...RATE_LIMITED, CORS_ALLOWED_ORIGINS: ORIGIN, TRUST_PROXY: '1' } });
  });
  after(() => ctx.close());

  it('refuses the 21st anonymous request in a minute with 429 RATE_LIMITED, Retry-After and CORS headers', async () => {
    const ip = clientIp();
    for (let i = 1; i <= 20; i++) {
      const res = await getAs(ctx, ip);
      assert.equal(res.statusCode, 200, `request ${i}`);
      assert.equal(res.headers['x-ratelimit-limit'], '20');
      assert.equal(res.headers['x-ratelimit-remaining'], String(20 - i));
    }
    const refused = await getAs(ctx, ip, '/api/v1/designs', { origin: ORIGIN });
    assertRateLimited(refused, 20);
    // The front end can read the refusal and when to retry.
    assert.equal(refused.headers['access-control-allow-origin'], ORIGIN);
    assert.match(String(refused.headers['access-control-expose-headers']), /Retry-After/);
    assert.ok(refused.headers['x-request-id']);

    // Health, the OpenAPI document and the reference page stay reachable; another client is unaffected.
    for (const url of ['/api/v1/health', '/health', '/api/v1/health/live', '/api/v1/openapi.json', '/docs/']) {
      assert.equal((await getAs(ctx, ip, url)).statusCode, 200, url);
    }
    assert.equal((await getAs(ctx, clientIp())).statusCode, 200);
  });

  it('never counts CORS preflights, from a listed or a foreign origin (defect 7)', async () => {
    const ip = clientIp();
    for (const origin of ['https://evil.example', ORIGIN]) {
      for (let i = 1; i <= 25; i++) {
        const res = await ctx.app.inject({
          method: 'OPTIONS',
          url: '/api/v1/orders',
          remoteAddress: ip,
          headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
        });
        assert.notEqual(res.statusCode, 429, `${origin} preflight ${i}`);
        assert.equal(res.headers['x-ratelimit-remaining'], undefined, `${origin} preflight ${i} was counted`);
      }
    }
    const real = await getAs(ctx, ip);
    assert.equal(real.statusCode, 200, 'the budget is untouched after 50 preflights');
    assert.equal(real.headers['x-ratelimit-remaining'], '19');
    // Only a preflight is exempt: a plain OPTIONS request without Access-Control-Request-Method still counts.
    const plain = await ctx.app.inject({ method: 'OPTIONS', url: '/api/v1/orders', remoteAddress: ip });
    assert.equal(plain.headers['x-ratelimit-remaining'], '18');
  });

  it('keys anonymous clients by the address Heroku’s router appended, not by what they put in X-Forwarded-For', async () => {
    const router = '10.1.2.3';
    const client = clientIp();
    for (let i = 1; i <= 20; i++) {
      const spoofed = `198.18.${i}.${i}`;
      const res = await getAs(ctx, router, '/api/v1/designs', { 'x-forwarded-for': `${spoofed}, ${client}` });
      assert.equal(res.statusCode, 200, `request ${i}`);
    }
    assertRateLimited(await getAs(ctx, router, '/api/v1/designs', { 'x-forwarded-for': `192.0.2.99, ${client}` }), 20);
    // A genuinely different client behind the same router still has its own budget.
    assert.equal((await getAs(ctx, router, '/api/v1/designs', { 'x-forwarded-for': clientIp() })).statusCode, 200);
  });

  it('counts requests with invalid tokens against the IP, so junk tokens buy no fresh budget', async () => {
    const ip = clientIp();
    for (let i = 1; i <= 20; i++) {
      const res = await getAs(ctx, ip, '/api/v1/users/me', { authorization: `Bearer ${randomBytes(24).toString('base64url')}` });
      assert.equal(res.statusCode, 401, `request ${i}`);
      assert.equal(res.headers['x-ratelimit-limit'], '20');
    }
    assertRateLimited(await getAs(ctx, ip, '/api/v1/users/me', { authorization: 'Bearer another.fresh.token' }), 20);
  });

  it('gives a signed-in user 100 requests a minute wherever they come from, then 429', async () => {
    const token = await ctx.auth0.token({ role: 'customer' });
    const auth = { authorization: `Bearer ${token}` };
    const ip = clientIp();
    for (let i = 1; i <= 100; i++) {
      // A phone changing networks keeps its budget: the key is the token's subject, not the address.
      const res = await getAs(ctx, i % 2 ? ip : clientIp(), '/api/v1/designs', auth);
      assert.equal(res.statusCode, 200, `request ${i}`);
      assert.equal(res.headers['x-ratelimit-limit'], '100');
      assert.equal(res.headers['x-ratelimit-remaining'], String(100 - i));
    }
    assertRateLimited(await getAs(ctx, clientIp(), '/api/v1/designs', auth), 100);
    // Anonymous traffic from the same address and another user keep their own budgets.
    assert.equal((await getAs(ctx, ip)).statusCode, 200);
    const other = await ctx.auth0.token({ role: 'customer' });
    assert.equal((await getAs(ctx, ip, '/api/v1/designs', { authorization: `Bearer ${other}` })).statusCode, 200);
  });

  it('refuses the 11th upload of a user in a minute, with its own budget on top of the general one', async () => {
    const customer = await registerUser(ctx, 'customer');
    let order: { id: string } | undefined;
    for (let i = 1; i <= 10; i++) order = await createOrder(ctx, customer);
    const eleventh = await submitOrder(ctx, customer);
    assertRateLimited(eleventh, 10);
    assert.match(eleventh.json().error.message, /10 uploads per minute/);
    // A design revision is an upload too.
    const revise = await ctx.app.inject({
      method: 'PUT',
      url: `/api/v1/orders/${order!.id}/design`,
      headers: customer.auth,
      payload: { description: 'A revision' },
    });
    assertRateLimited(revise, 10);
    // Other requests of the same user still pass, counted in the general budget (1 + 10 + 2 + this one).
    const me = await ctx.app.inject({ method: 'GET', url: '/api/v1/users/me', headers: customer.auth });
    assert.equal(me.statusCode, 200);
    assert.equal(me.headers['x-ratelimit-remaining'], String(100 - 14));
    // And another customer uploads freely.
    assert.equal((await submitOrder(ctx, await registerUser(ctx, 'customer'))).statusCode, 201);
  });
});

describe('edge: rate limits switched off', () => {
  it('serves every request without limit headers when RATE_LIMIT_ENABLED=false', async () => {
    const ctx = await buildTestApp({ env: { RATE_LIMIT_ENABLED: 'false' } });
    try {
      const ip = clientIp();
      for (let i = 1; i <= 25; i++) {
        const res = await getAs(ctx, ip);
        assert.equal(res.statusCode, 200, `request ${i}`);
        assert.equal(res.headers['x-ratelimit-limit'], undefined);
      }
    } finally {
      await ctx.close();
    }
  });
});

describe('edge: rate limits in Redis', () => {
  const prefix = `kn:test:${process.env.KN_RUN_ID ?? 'x'}:${randomBytes(4).toString('hex')}:`;
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const env = (url = REDIS_URL) => ({ ...RATE_LIMITED, REDIS_URL: url, RATE_LIMIT_KEY_PREFIX: prefix, REDIS_TIMEOUT_MS: '500' });

  before(() => redis.connect());
  after(async () => {
    // Only this run's keys; the shared Redis is never flushed.
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  it('shares one budget between two app instances (two dynos)', async () => {
    const a = await buildTestApp({ env: env() });
    const b = await buildTestApp({ env: env(), auth0: a.auth0, database: a.database });
    try {
      const ip = clientIp();
      for (let i = 1; i <= 20; i++) {
        const res = await getAs(i % 2 ? a : b, ip);
        assert.equal(res.statusCode, 200, `request ${i}`);
        assert.equal(res.headers['x-ratelimit-remaining'], String(20 - i));
      }
      assertRateLimited(await getAs(a, ip), 20);
      assertRateLimited(await getAs(b, ip), 20);
      // The counter lives in Redis under the configured prefix, expiring with the window.
      const keys = await redis.keys(`${prefix}*${ip}`);
      assert.equal(keys.length, 1);
      const ttl = await redis.pttl(keys[0]!);
      assert.ok(ttl > 0 && ttl <= 60_000, `ttl ${ttl}`);
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('counts over TLS (rediss://) against a self-signed certificate, as Heroku Redis presents one', async () => {
    const redisTls = await startTlsRedis();
    const a = await buildTestApp({ env: env(redisTls.url) });
    const b = await buildTestApp({ env: env(redisTls.url), auth0: a.auth0, database: a.database });
    try {
      // One budget across both instances: the counts can only come from the TLS-only Redis.
      const ip = clientIp();
      for (let i = 1; i <= 20; i++) assert.equal((await getAs(i % 2 ? a : b, ip)).headers['x-ratelimit-remaining'], String(20 - i), `request ${i}`);
      assertRateLimited(await getAs(b, ip), 20);
      assert.deepEqual([...a.logs, ...b.logs].filter((l) => /rate-limit store/.test(String(l.msg))), [], 'no store failure');
    } finally {
      await b.close();
      await a.close();
      await redisTls.stop();
    }
  });

  it('serves requests (fail open, logged) when Redis refuses connections, without hanging', async () => {
    const ctx = await buildTestApp({ env: env(`redis://127.0.0.1:${await freePort()}`) });
    try {
      const started = Date.now();
      const ip = clientIp();
      for (let i = 1; i <= 25; i++) assert.equal((await getAs(ctx, ip)).statusCode, 200, `request ${i}`);
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
      assert.ok(ctx.logs.some((l) => /rate-limit store/.test(String(l.msg)) && l.level === 40), 'the failure is logged');
    } finally {
      await ctx.close();
    }
  });

  it('serves requests when Redis accepts connections but never answers', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const ctx = await buildTestApp({ env: env(`redis://127.0.0.1:${(silent.address() as { port: number }).port}`) });
    try {
      const started = Date.now();
      const ip = clientIp();
      for (let i = 1; i <= 25; i++) assert.equal((await getAs(ctx, ip)).statusCode, 200, `request ${i}`);
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    } finally {
      await ctx.close();
      silent.close();
    }
  });

  it('serves requests within the command timeout when Redis stops answering mid-connection', async () => {
    const relay = await new TcpProxy({ host: '127.0.0.1', port: Number(new URL(REDIS_URL).port || 6379) }).start();
    const ctx = await buildTestApp({ env: env(`redis://127.0.0.1:${relay.port}`) });
    try {
      const ip = clientIp();
      assert.equal((await getAs(ctx, ip)).headers['x-ratelimit-remaining'], '19', 'counted in Redis while it answers');
      relay.freeze();
      const started = Date.now();
      const res = await getAs(ctx, ip);
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-ratelimit-remaining'], undefined, 'served without a count');
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    } finally {
      await ctx.close();
      await relay.stop();
    }
  });
});

describe('edge: CORS', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await buildTestApp({ env: { CORS_ALLOWED_ORIGINS: `${ORIGIN},http://localhost:5173` } });
  });
  after(() => ctx.close());

  const preflight = (origin: string) =>
    ctx.app.inject({
      method: 'OPTIONS',
      url: '/api/v1/orders',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,idempotency-key' },
    });

  it('answers an allowed origin’s preflight with 204 and the SPEC §6 methods and headers', async () => {
    const res = await preflight(ORIGIN);
    assert.equal(res.statusCode, 204);
    assert.equal(res.headers['access-control-allow-origin'], ORIGIN);
    assert.equal(res.headers['access-control-allow-credentials'], 'true');
    assert.deepEqual(String(res.headers['access-control-allow-methods']).split(', '), ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
    const allowed = String(res.headers['access-control-allow-headers']).toLowerCase().split(', ');
    for (const h of ['authorization', 'content-type', 'idempotency-key']) assert.ok(allowed.includes(h), h);
    assert.equal(res.headers['access-control-max-age'], String(12 * 3600));
    assert.match(String(res.headers.vary), /Origin/);
  });

  it('lets an allowed origin read responses and the headers clients need', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/designs', headers: { origin: 'http://localhost:5173' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['access-control-allow-origin'], 'http://localhost:5173');
    const exposed = String(res.headers['access-control-expose-headers']).toLowerCase();
    for (const h of ['x-request-id', 'retry-after', 'x-ratelimit-remaining', 'idempotent-replayed']) assert.ok(exposed.includes(h), h);
  });

  it('gives any other origin no CORS headers, on a preflight or a request, and never a wildcard', async () => {
    for (const origin of ['https://evil.example', `${ORIGIN}.evil.example`, 'null', ORIGIN.replace('https', 'http')]) {
      for (const res of [await preflight(origin), await ctx.app.inject({ method: 'GET', url: '/api/v1/designs', headers: { origin } })]) {
        assert.equal(res.headers['access-control-allow-origin'], undefined, origin);
        assert.equal(res.headers['access-control-allow-credentials'], undefined, origin);
      }
      assert.notEqual((await preflight(origin)).statusCode, 204);
    }
  });
});

describe('edge: security headers, body limits and timeouts', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await buildTestApp({ env: { TRUST_PROXY: '10.0.0.0/8' } });
  });
  after(() => ctx.close());

  it('sends helmet’s security headers and a deny-all CSP on API responses, errors included', async () => {
    for (const url of ['/api/v1/designs', '/api/v1/nope']) {
      const res = await ctx.app.inject({ method: 'GET', url });
      assert.equal(res.headers['content-security-policy'], "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'");
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['x-frame-options'], 'DENY');
      assert.equal(res.headers['referrer-policy'], 'no-referrer');
      assert.equal(res.headers['cross-origin-opener-policy'], 'same-origin');
      assert.equal(res.headers['cross-origin-resource-policy'], 'same-origin');
      assert.equal(res.headers['x-powered-by'], undefined);
    }
  });

  it('sends HSTS only when a trusted proxy says the request came over HTTPS', async () => {
    const router = '10.1.2.3';
    const https = await ctx.app.inject({ method: 'GET', url: '/api/v1/designs', remoteAddress: router, headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(https.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
    const http = await ctx.app.inject({ method: 'GET', url: '/api/v1/designs', remoteAddress: router, headers: { 'x-forwarded-proto': 'http' } });
    assert.equal(http.headers['strict-transport-security'], undefined);
    const direct = await ctx.app.inject({ method: 'GET', url: '/api/v1/designs' });
    assert.equal(direct.headers['strict-transport-security'], undefined);
    // A peer that is not a trusted proxy cannot claim HTTPS.
    const claimed = await ctx.app.inject({ method: 'GET', url: '/api/v1/designs', remoteAddress: '192.0.2.7', headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(claimed.headers['strict-transport-security'], undefined);
  });

  it('gives the reference page a policy that allows its own scripts by hash, not unsafe-inline', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(res.statusCode, 200);
    const csp = String(res.headers['content-security-policy']);
    const scriptSrc = csp.split('; ').find((d) => d.startsWith('script-src '))!;
    assert.ok(!scriptSrc.includes('unsafe'), scriptSrc);
    const inline = [...res.body.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    assert.ok(inline.length > 0);
    for (const body of inline) assert.ok(scriptSrc.includes(`'sha256-${createHash('sha256').update(body).digest('base64')}'`));
    assert.match(csp, /connect-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    // The bundle is served locally, not from a CDN.
    assert.match(res.body, /<script src="js\/scalar\.js">/);
    assert.equal((await ctx.app.inject({ method: 'GET', url: '/docs/js/scalar.js' })).statusCode, 200);
  });

  it('lets another origin embed signed image links (Cross-Origin-Resource-Policy)', async () => {
    const customer = await registerUser(ctx, 'customer');
    const order = await createOrder(ctx, customer);
    const link = new URL(order.image_url as string);
    const res = await ctx.app.inject({ method: 'GET', url: link.pathname + link.search });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['cross-origin-resource-policy'], 'cross-origin');
  });

  it('refuses a 2 MB JSON body with 413 PAYLOAD_TOO_LARGE in the envelope', async () => {
    const user = await registerUser(ctx, 'customer');
    const res = await ctx.app.inject({
      method: 'PUT',
      url: '/api/v1/users/me',
      headers: { ...user.auth, 'content-type': 'application/json' },
      payload: JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }),
    });
    assert.equal(res.statusCode, 413);
    assert.deepEqual(Object.keys(res.json()).sort(), ['error', 'success']);
    assert.equal(res.json().error.code, 'PAYLOAD_TOO_LARGE');
  });

  it('listens with timeouts under Heroku’s 30 s and keep-alive longer than the router’s 90 s', async () => {
    await ctx.app.listen({ port: 0, host: '127.0.0.1' });
    const server = ctx.app.server;
    assert.equal(server.keepAliveTimeout, 95_000);
    assert.equal(server.requestTimeout, 25_000);
    assert.equal(server.timeout, 25_000);
    assert.ok(server.headersTimeout <= 60_000);
  });
});

describe('edge: handler timeout', () => {
  it('answers 503 SERVICE_UNAVAILABLE with Retry-After when a route runs past REQUEST_TIMEOUT_MS', async () => {
    const ctx = await buildTestApp({ env: { REQUEST_TIMEOUT_MS: '1000' } });
    try {
      // The identity provider answers after 5 s and health waits up to 2 s for it: longer than 1 s.
      ctx.auth0.jwksMode = 'slow';
      const started = Date.now();
      const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/health' });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().error.code, 'SERVICE_UNAVAILABLE');
      assert.match(res.json().error.message, /took too long/);
      assert.equal(res.headers['retry-after'], '5');
      assert.ok(Date.now() - started < 1900, `answered after ${Date.now() - started} ms, not at the route's own 2 s`);
    } finally {
      await ctx.close();
    }
  });

  it('leaves alone a request whose client hung up: no 503 sent to nobody, no timeout logged', async () => {
    const ctx = await buildTestApp({ env: { REQUEST_TIMEOUT_MS: '1000' } });
    try {
      ctx.auth0.jwksMode = 'slow';
      await ctx.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = ctx.app.server.address() as AddressInfo;
      const hangUp = new AbortController();
      const gone = fetch(`http://127.0.0.1:${port}/api/v1/health`, { signal: hangUp.signal }).then(
        () => 'answered',
        () => 'hung up',
      );
      setTimeout(() => hangUp.abort(), 100);
      assert.equal(await gone, 'hung up');
      // Past the 1 s timeout and a sweep or two after it.
      await new Promise((resolve) => setTimeout(resolve, 1600));
      assert.deepEqual(ctx.logs.filter((line) => line.msg === 'request timed out'), []);
    } finally {
      await ctx.close();
    }
  });
});

describe('edge: load shedding', () => {
  it('answers 503 SERVICE_UNAVAILABLE with Retry-After when memory is over the limit, and health still answers', async () => {
    const ctx = await buildTestApp({ env: { LOAD_MAX_HEAP_USED_MB: '1', LOAD_SAMPLE_INTERVAL_MS: '20' } });
    try {
      let res = await ctx.app.inject({ method: 'GET', url: '/api/v1/designs' });
      await eventually(async () => {
        res = await ctx.app.inject({ method: 'GET', url: '/api/v1/designs' });
        return res.statusCode === 503;
      }, 'shedding');
      assert.equal(res.json().success, false);
      assert.equal(res.json().error.code, 'SERVICE_UNAVAILABLE');
      assert.equal(res.headers['retry-after'], '5');
      for (const url of ['/api/v1/health', '/health', '/api/v1/health/live']) {
        assert.equal((await ctx.app.inject({ method: 'GET', url })).statusCode, 200, url);
      }
      assert.ok(ctx.logs.some((l) => l.msg === 'under pressure: shedding load' && l.type === 'heapUsedBytes'));
    } finally {
      await ctx.close();
    }
  });

  it('answers 503 after the event loop was blocked for longer than LOAD_MAX_EVENT_LOOP_DELAY_MS', async () => {
    const ctx = await buildTestApp({ env: { LOAD_MAX_EVENT_LOOP_DELAY_MS: '200', LOAD_SAMPLE_INTERVAL_MS: '1000' } });
    try {
      // Start-up (compiling every route) blocks the loop too; that is not counted for two sample periods.
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal((await ctx.app.inject({ method: 'GET', url: '/api/v1/designs' })).statusCode, 200);
      // Synchronous stalls longer than a sample period. The plugin averages each period, so the first stall
      // may be diluted by the quiet samples before it; the second fills a period that starts right after
      // the overdue sample (it runs before this 0 ms timer, being due earlier) and holds nothing else.
      for (let stall = 0; stall < 2; stall++) {
        const until = Date.now() + 1500;
        while (Date.now() < until);
        await new Promise((r) => setTimeout(r, 0));
      }
      const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/designs' });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().error.code, 'SERVICE_UNAVAILABLE');
      assert.equal((await ctx.app.inject({ method: 'GET', url: '/api/v1/health/live' })).statusCode, 200);
      assert.ok(ctx.logs.some((l) => l.msg === 'under pressure: shedding load' && l.type === 'eventLoopDelay'));
    } finally {
      await ctx.close();
    }
  });

  it('answers 503 while requests queue for a database connection, and recovers when the queue drains', async () => {
    // A real pg pool of one connection whose server never answers: every checkout after the first waits,
    // which is what an exhausted pool looks like (waitingCount), on either test database.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const pool = new pg.Pool({
      host: '127.0.0.1',
      port: (silent.address() as { port: number }).port,
      max: 1,
      connectionTimeoutMillis: 1000,
    });
    const database = await createTestDatabase();
    const ctx = await buildTestApp({
      // The job queue would be on the silent pool too: no worker in this process, so it starts in the background.
      env: { LOAD_MAX_DB_WAITING: '1', LOAD_SAMPLE_INTERVAL_MS: '20', WORKER_IN_PROCESS: 'false' },
      database: { ...database, handle: { ...database.handle, pool } },
    });
    try {
      assert.equal((await ctx.app.inject({ method: 'GET', url: '/api/v1/designs' })).statusCode, 200);
      const checkouts = [pool.connect(), pool.connect(), pool.connect()].map((p) => p.then((c) => c.release(), () => undefined));
      assert.ok(pool.waitingCount >= 2);
      let res = await ctx.app.inject({ method: 'GET', url: '/api/v1/designs' });
      await eventually(async () => {
        res = await ctx.app.inject({ method: 'GET', url: '/api/v1/designs' });
        return res.statusCode === 503;
      }, 'shedding');
      assert.equal(res.json().error.code, 'SERVICE_UNAVAILABLE');
      assert.equal(res.headers['retry-after'], '5');
      assert.equal((await ctx.app.inject({ method: 'GET', url: '/api/v1/health/live' })).statusCode, 200);

      await Promise.all(checkouts);
      await eventually(async () => (await ctx.app.inject({ method: 'GET', url: '/api/v1/designs' })).statusCode === 200, 'recovery');
    } finally {
      await ctx.close();
      await database.drop();
      await pool.end();
      silent.close();
    }
  });
});

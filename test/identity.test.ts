import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eq } from '../src/db/orm.js';
import { SignJWT, decodeJwt, exportSPKI, importJWK } from 'jose';
import { ConfigError, loadConfig } from '../src/config.js';
import { createPglite } from '../src/db/client.js';
import { invitations, outboxEvents, users } from '../src/db/schema.js';
import { DEPLOYED_ENV, type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { type TestDatabase, createTestDatabase, usingPostgres } from './support/database.js';
import { FAKE_CLIENT_SECRET, FAKE_CONNECTION, FakeAuth0, TEST_AUDIENCE } from './support/fake-auth0.js';
import type { Api } from './support/http.js';
import { createOrder, put } from './support/orders.js';
import { spawnNode } from './support/process.js';

const INVITE = '/api/v1/auth/technicians/invite';
const ME = '/api/v1/users/me';
const DAY_MS = 24 * 3600 * 1000;

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
let seq = 0;
const uniqueEmail = (prefix: string) => `${prefix}${++seq}${Math.random().toString(36).slice(2, 7)}@example.com`;

function invite(ctx: TestContext, auth: Record<string, string>, payload: unknown, headers: Record<string, string> = {}) {
  return ctx.app.inject({ method: 'POST', url: INVITE, headers: { ...auth, ...headers }, payload: payload as object });
}

async function invitationRows(ctx: Pick<TestContext, 'database'>, email: string) {
  return ctx.database.handle.db.select().from(invitations).where(eq(invitations.email, email.toLowerCase()));
}

/** Asserts the refusal is generic to the client while its real reason reaches the log. */
function assertRefused(ctx: TestContext, res: { statusCode: number; json(): { error: { code: string; message: string } }; body: string }, reqId: string, reason?: RegExp) {
  assert.equal(res.statusCode, 401, `${reqId}: ${res.body}`);
  assert.equal(res.json().error.code, 'INVALID_TOKEN', reqId);
  assert.doesNotMatch(res.body, /ERR_|JWS|JWK|signature|kid|alg|nbf|exp"/i, `${reqId}: the reason is not echoed`);
  if (reason) {
    const line = ctx.logs.find((l) => l.reqId === reqId && l.msg === 'access token refused');
    assert.ok(line, `${reqId}: the refusal is logged`);
    assert.match(String(line.reason), reason, reqId);
  }
}

describe('identity: access tokens', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await buildTestApp();
  });
  after(() => ctx.close());

  it('answers 401 UNAUTHORIZED without a token, and accepts a valid one', async () => {
    const none = await ctx.app.inject({ method: 'GET', url: ME });
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().success, false);
    assert.equal(none.json().error.code, 'UNAUTHORIZED');
    assert.match(none.json().error.message, /Bearer/);
    const user = await registerUser(ctx);
    assert.equal((await ctx.app.inject({ method: 'GET', url: ME, headers: user.auth })).statusCode, 200);
  });

  it('refuses every kind of bad token with 401 INVALID_TOKEN, logging the reason without echoing it', async () => {
    const { auth0 } = ctx;
    const valid = await auth0.token({ role: 'customer' });
    const payload = decodeJwt(valid);
    const realKey = auth0.keys[0]!;
    const publicPem = await exportSPKI((await importJWK(realKey.publicJwk, 'RS256')) as Parameters<typeof exportSPKI>[0]);
    const now = Math.floor(Date.now() / 1000);
    const otherKey = await auth0.newKey();

    const cases: Array<{ id: string; header: string; reason?: RegExp }> = [
      { id: 'malformed-1', header: 'Bearer not-a-token' },
      { id: 'malformed-2', header: 'Bearer a.b.c', reason: /ERR_/ },
      { id: 'malformed-3', header: `Bearer ${valid.split('.').slice(0, 2).join('.')}` },
      { id: 'malformed-4', header: 'Basic dXNlcjpwYXNzd29yZA==' },
      { id: 'malformed-5', header: `Bearer ${valid} extra` },
      { id: 'alg-none', header: `Bearer ${b64({ alg: 'none', typ: 'JWT', kid: realKey.kid })}.${b64(payload)}.`, reason: /ALG_NOT_ALLOWED|not allowed/i },
      {
        id: 'hs256-public-key',
        header: `Bearer ${await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: realKey.kid }).sign(new TextEncoder().encode(publicPem))}`,
        reason: /ALG_NOT_ALLOWED|not allowed/i,
      },
      { id: 'expired', header: `Bearer ${await auth0.token({ expiresIn: -120 })}`, reason: /EXPIRED/ },
      { id: 'not-yet-valid', header: `Bearer ${await auth0.token({ notBefore: 300 })}`, reason: /nbf|CLAIM_VALIDATION/ },
      { id: 'wrong-audience', header: `Bearer ${await auth0.token({ audience: 'https://someone-else.example' })}`, reason: /aud/ },
      { id: 'wrong-issuer', header: `Bearer ${await auth0.token({ issuer: 'https://evil.example/' })}`, reason: /iss/ },
      { id: 'unknown-kid', header: `Bearer ${await auth0.token({ key: otherKey })}`, reason: /NO_MATCHING_KEY/ },
      { id: 'other-key-same-kid', header: `Bearer ${await auth0.token({ key: { ...otherKey, kid: realKey.kid } })}`, reason: /SIGNATURE_VERIFICATION_FAILED/ },
      {
        id: 'no-subject',
        header: `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: realKey.kid }).setIssuer(auth0.url).setAudience(TEST_AUDIENCE).setIssuedAt(now).setExpirationTime(now + 600).sign(realKey.privateKey)}`,
        reason: /sub/,
      },
    ];
    for (const c of cases) {
      const res = await ctx.app.inject({ method: 'GET', url: ME, headers: { authorization: c.header, 'x-request-id': `bad-token-${c.id}` } });
      assertRefused(ctx, res, `bad-token-${c.id}`, c.reason);
    }
  });

  it('allows 60 s of clock skew on exp and nbf', async () => {
    for (const token of [await ctx.auth0.token({ expiresIn: -30 }), await ctx.auth0.token({ notBefore: 30 })]) {
      const res = await ctx.app.inject({ method: 'GET', url: ME, headers: bearer(token) });
      assert.equal(res.statusCode, 404, 'valid token, no profile yet');
      assert.equal(res.json().error.code, 'USER_NOT_FOUND');
    }
  });
});

describe('identity: signing keys', () => {
  it('accepts a key added to the JWKS without a restart, and keeps the old one', async () => {
    const ctx = await buildTestApp({ overrides: { jwks: { cooldownMs: 0 } } });
    try {
      const first = await registerUser(ctx);
      const jwksCalls = ctx.auth0.countCalls('GET', '/.well-known/jwks.json');
      await ctx.auth0.rotate();
      const second = await registerUser(ctx);
      assert.notEqual(decodeJwtHeader(second.token).kid, decodeJwtHeader(first.token).kid);
      assert.equal(ctx.auth0.countCalls('GET', '/.well-known/jwks.json'), jwksCalls + 1, 'one refetch for the new kid');
      assert.equal((await ctx.app.inject({ method: 'GET', url: ME, headers: first.auth })).statusCode, 200);
    } finally {
      await ctx.close();
    }
  });

  it('keeps verifying with known keys while the JWKS endpoint is down, even past their refresh age', async () => {
    // maxAgeMs 0: every request tries a background refresh, which fails while the endpoint is down.
    const ctx = await buildTestApp({ overrides: { jwks: { cooldownMs: 0, maxAgeMs: 0 } } });
    try {
      await registerUser(ctx);
      const before = ctx.auth0.countCalls('GET', '/.well-known/jwks.json');
      for (const mode of ['down', 'garbage'] as const) {
        ctx.auth0.jwksMode = mode;
        const user = await registerUser(ctx); // a new token, so no cached verification
        assert.equal((await ctx.app.inject({ method: 'GET', url: ME, headers: user.auth })).statusCode, 200, mode);
      }
      assert.ok(ctx.auth0.countCalls('GET', '/.well-known/jwks.json') > before, 'refreshes were attempted and failed');
    } finally {
      await ctx.close();
    }
  });

  it('answers 503 IDENTITY_PROVIDER_UNAVAILABLE when no key set was ever loaded, and recovers by itself', async () => {
    const ctx = await buildTestApp({ overrides: { jwks: { retryAfterFailureMs: 0 } } });
    try {
      ctx.auth0.jwksMode = 'garbage';
      const token = await ctx.auth0.token({ role: 'customer' });
      const res = await ctx.app.inject({ method: 'GET', url: ME, headers: bearer(token) });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().error.code, 'IDENTITY_PROVIDER_UNAVAILABLE');
      assert.ok(res.headers['retry-after']);
      ctx.auth0.jwksMode = 'ok';
      const again = await ctx.app.inject({ method: 'GET', url: ME, headers: bearer(token) });
      assert.equal(again.statusCode, 404, 'verified once the JWKS answers (no profile yet)');
    } finally {
      await ctx.close();
    }
  });
});

function decodeJwtHeader(token: string): { kid?: string } {
  return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid?: string };
}

describe('identity: token attacks', () => {
  let ctx: TestContext;
  let user: TestUser;
  before(async () => {
    ctx = await buildTestApp();
    user = await registerUser(ctx);
  });
  after(() => ctx.close());

  it('ignores a token in the query string, and does not log it', async () => {
    for (const name of ['access_token', 'token', 'authorization']) {
      const res = await ctx.app.inject({ method: 'GET', url: `${ME}?${name}=${user.token}` });
      assert.equal(res.statusCode, 401, name);
      assert.equal(res.json().error.code, 'UNAUTHORIZED', name);
    }
    assert.ok(!JSON.stringify(ctx.logs).includes(user.token), 'the token never reaches the log');
  });

  it('refuses oversized tokens with 401 without trying to verify them', async () => {
    for (const size of [9_000, 100_000]) {
      const huge = await ctx.auth0.token({ sub: user.sub, claims: { padding: 'x'.repeat(size) } });
      const started = Date.now();
      const res = await ctx.app.inject({ method: 'GET', url: ME, headers: { ...bearer(huge), 'x-request-id': `huge-token-${size}` } });
      assertRefused(ctx, res, `huge-token-${size}`, /too long/);
      assert.ok(Date.now() - started < 10_000, 'answered within 10 s');
    }
  });

  it('refuses kids carrying path, SQL or other junk, fetching the JWKS at most once for the whole burst', async () => {
    const jwksCalls = ctx.auth0.countCalls('GET', '/.well-known/jwks.json');
    const key = ctx.auth0.keys[0]!;
    const kids = ['../../../../etc/passwd', "' OR '1'='1' --", '"; DROP TABLE users; --', '%00', '..%2f..%2fjwks', '{"$ne":null}', 'k'.repeat(2000), ''];
    for (const [i, kid] of kids.entries()) {
      const token = await ctx.auth0.token({ sub: user.sub, key: { ...key, kid } });
      const res = await ctx.app.inject({ method: 'GET', url: ME, headers: { ...bearer(token), 'x-request-id': `junk-kid-${i}` } });
      assertRefused(ctx, res, `junk-kid-${i}`);
    }
    assert.ok(ctx.auth0.countCalls('GET', '/.well-known/jwks.json') <= jwksCalls + 1, 'unknown kids refetch at most once a minute');
    const [row] = await ctx.database.handle.db.select().from(users).where(eq(users.id, user.id));
    assert.ok(row, 'the users table is intact');
  });

  it('ignores jku, x5u and embedded jwk headers that point at an attacker key', async () => {
    const attacker = await FakeAuth0.start();
    try {
      const attackerKey = attacker.keys[0]!;
      const headers = [
        { jku: `${attacker.url}.well-known/jwks.json` },
        { x5u: `${attacker.url}cert.pem` },
        { jwk: { kty: attackerKey.publicJwk.kty, n: attackerKey.publicJwk.n, e: attackerKey.publicJwk.e } },
        { jku: `${attacker.url}.well-known/jwks.json`, x5u: `${attacker.url}cert.pem` },
      ];
      for (const [i, header] of headers.entries()) {
        // Everything else is right: our issuer, our audience, a registered subject.
        const token = await attacker.token({ sub: user.sub, issuer: ctx.auth0.url, header });
        const res = await ctx.app.inject({ method: 'GET', url: ME, headers: { ...bearer(token), 'x-request-id': `attacker-header-${i}` } });
        assertRefused(ctx, res, `attacker-header-${i}`);
      }
      assert.deepEqual(attacker.calls, [], 'the attacker URLs were never fetched');
    } finally {
      await attacker.stop();
    }
  });

  it('answers within a bounded time when the JWKS endpoint is slow or answers garbage', async () => {
    for (const mode of ['slow', 'garbage'] as const) {
      const fresh = await buildTestApp();
      try {
        fresh.auth0.jwksMode = mode;
        const started = Date.now();
        const res = await fresh.app.inject({ method: 'GET', url: ME, headers: bearer(await fresh.auth0.token({ role: 'customer' })) });
        assert.ok(Date.now() - started < 10_000, `${mode}: answered within 10 s`);
        assert.equal(res.statusCode, 503, `${mode}: ${res.body}`);
        assert.equal(res.json().error.code, 'IDENTITY_PROVIDER_UNAVAILABLE');
      } finally {
        await fresh.close();
      }
    }
  });
});

const decodeSub = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string }).sub;

describe('identity: profiles and roles', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await buildTestApp();
  });
  after(() => ctx.close());

  it('registers once (201), then answers 409 USER_EXISTS on both registration routes', async () => {
    const token = await ctx.auth0.token({ role: 'customer', email: 'Mixed.Case@Example.com', name: 'Mia' });
    const first = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/register', headers: bearer(token) });
    assert.equal(first.statusCode, 201);
    assert.equal(first.json().data.email, 'mixed.case@example.com');
    assert.equal(first.json().data.name, 'Mia');
    assert.equal(first.json().data.role, 'customer');
    for (const url of ['/api/v1/auth/register', '/api/v1/users']) {
      const again = await ctx.app.inject({ method: 'POST', url, headers: bearer(token) });
      assert.equal(again.statusCode, 409, url);
      assert.equal(again.json().error.code, 'USER_EXISTS');
    }
  });

  it('never stores an unverified email: the verified owner registers it later without 409 (defect 2)', async () => {
    const email = `claimed${Date.now()}@example.com`;
    const squatter = await ctx.auth0.token({ role: 'customer', email, name: 'Sam Squatter', claims: { email_verified: false } });
    const first = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/register', headers: bearer(squatter) });
    assert.equal(first.statusCode, 201, first.body);
    assert.equal(first.json().data.email, null, 'an unverified address is not the account’s email');

    const owner = await ctx.auth0.token({ role: 'customer', email, name: 'Olga Owner', claims: { email_verified: true } });
    const second = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/register', headers: bearer(owner) });
    assert.equal(second.statusCode, 201, second.body);
    assert.equal(second.json().data.email, email, 'the verified owner is never locked out');

    // Signing in again with the address still unverified changes nothing; once verified, a free address is taken up.
    const stillUnverified = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: bearer(squatter) });
    assert.equal(stillUnverified.json().data.email, null);
    const squatterVerified = await ctx.auth0.token({ sub: decodeSub(squatter), role: 'customer', email, claims: { email_verified: true } });
    const taken = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: bearer(squatterVerified) });
    assert.equal(taken.statusCode, 200, 'another account holding the address is no reason to refuse a sign-in');
    assert.equal(taken.json().data.email, null, 'the address stays with the account that registered it verified');

    const later = `later${Date.now()}@example.com`;
    const pending = await ctx.auth0.token({ role: 'customer', email: later, claims: { email_verified: false } });
    assert.equal((await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/register', headers: bearer(pending) })).json().data.email, null);
    const verified = await ctx.auth0.token({ sub: decodeSub(pending), role: 'customer', email: later, claims: { email_verified: true } });
    const login = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: bearer(verified) });
    assert.equal(login.json().data.email, later, 'verified since: the address is now the account’s');
  });

  it('takes email and name from /userinfo when the token has none, and calls it only at registration', async () => {
    const sub = `auth0|noemail${Date.now()}`;
    const token = await ctx.auth0.token({ sub, role: 'customer', email: null });
    ctx.auth0.profiles.set(sub, { email: 'From.Userinfo@example.com', name: 'Uma Userinfo' });
    const userinfoCalls = () => ctx.auth0.countCalls('GET', '/userinfo');
    const before = userinfoCalls();
    const res = await ctx.app.inject({ method: 'POST', url: '/api/v1/users', headers: bearer(token) });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().data.email, 'from.userinfo@example.com');
    assert.equal(res.json().data.name, 'Uma Userinfo');
    assert.equal(userinfoCalls(), before + 1);
    for (const [method, url] of [['POST', '/api/v1/auth/login'], ['GET', ME], ['GET', ME]] as const) {
      assert.equal((await ctx.app.inject({ method, url, headers: bearer(token) })).statusCode, 200);
    }
    assert.equal(userinfoCalls(), before + 1, 'Auth0 allows 5 /userinfo calls a minute: only registration uses it');
  });

  it('answers 502 when /userinfo fails, and creates no profile', async () => {
    ctx.auth0.userinfoFailure = 429;
    try {
      const token = await ctx.auth0.token({ role: 'customer', email: null });
      const res = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/register', headers: bearer(token) });
      assert.equal(res.statusCode, 502);
      assert.equal(res.json().error.code, 'IDENTITY_PROVIDER_ERROR');
      const me = await ctx.app.inject({ method: 'GET', url: ME, headers: bearer(token) });
      assert.equal(me.json().error.code, 'USER_NOT_FOUND');
      assert.match(me.json().error.message, /register/i);
    } finally {
      ctx.auth0.userinfoFailure = undefined;
    }
  });

  it('round-trips the profile, records sign-ins, and never lets the user change email or role', async () => {
    const user = await registerUser(ctx);
    const profile = {
      name: 'Ana Lima',
      phone: '+1 555 0100',
      shipping_address: { line1: '1 Main St', line2: null, city: 'Austin', region: 'TX', postal_code: '78701', country: 'US' },
      nail_sizes: [3, 5, 4, 5, 8, 3, 5, 4, 5, 8],
      preferred_shape: 'almond',
      preferred_length: 'medium',
    };
    const saved = await put(ctx, user, ME, { ...profile, email: 'attacker@example.com', role: 'nail_technician' });
    assert.equal(saved.statusCode, 200, saved.body);
    const read = await ctx.app.inject({ method: 'GET', url: ME, headers: user.auth });
    const data = read.json().data;
    for (const [field, value] of Object.entries(profile)) assert.deepEqual(data[field], value, field);
    assert.equal(data.email, user.email, 'email unchanged');
    assert.equal(data.role, 'customer', 'role unchanged');
    const [row] = await ctx.database.handle.db.select().from(users).where(eq(users.id, user.id));
    assert.equal(row!.role, 'customer');
    assert.equal(row!.email, user.email);

    const login = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: user.auth });
    assert.equal(login.statusCode, 200);
    assert.ok(Date.parse(login.json().data.last_login_at) > Date.now() - 60_000);
    const logout = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: user.auth });
    assert.equal(logout.statusCode, 204);
  });

  it('reads the role from AUTH0_ROLE_CLAIM, then kendalls_nails_role; anything else is a customer', async () => {
    const cases: Array<{ claims: Record<string, unknown>; expected: string }> = [
      { claims: { 'https://kendallsnails.com/role': 'nail_technician' }, expected: 'nail_technician' },
      { claims: { kendalls_nails_role: 'nail_technician' }, expected: 'nail_technician' },
      { claims: { 'https://kendallsnails.com/role': 'customer', kendalls_nails_role: 'nail_technician' }, expected: 'customer' },
      { claims: { 'https://kendallsnails.com/role': 'admin' }, expected: 'customer' },
      { claims: { kendalls_nails_role: 'superuser' }, expected: 'customer' },
      { claims: {}, expected: 'customer' },
    ];
    for (const { claims, expected } of cases) {
      const token = await ctx.auth0.token({ claims });
      const res = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/register', headers: bearer(token) });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().data.role, expected, JSON.stringify(claims));
    }
  });

  it('guards the invitation route: anonymous 401, customer 403, technician without a profile 404', async () => {
    const anonymous = await invite(ctx, {}, { email: uniqueEmail('g'), name: 'G' });
    assert.equal(anonymous.statusCode, 401);
    assert.equal(anonymous.json().error.code, 'UNAUTHORIZED');
    const customer = await registerUser(ctx, 'customer');
    const forbidden = await invite(ctx, customer.auth, { email: uniqueEmail('g'), name: 'G' });
    assert.equal(forbidden.statusCode, 403);
    assert.equal(forbidden.json().error.code, 'FORBIDDEN');
    const unregistered = await invite(ctx, bearer(await ctx.auth0.token({ role: 'nail_technician' })), { email: uniqueEmail('g'), name: 'G' });
    assert.equal(unregistered.statusCode, 404);
    assert.equal(unregistered.json().error.code, 'USER_NOT_FOUND');
    assert.equal(ctx.auth0.countCalls('POST', '/api/v2/users'), 0, 'nothing reached Auth0');
  });
});

describe('identity: the token role is authoritative', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await buildTestApp(); // no technician on record, so new orders stay unassigned
  });
  after(() => ctx.close());

  it("takes the role from the token's claim over the stored profile, in guards and in services", async () => {
    const customer = await registerUser(ctx, 'customer');
    const order = await createOrder(ctx, customer);
    assert.equal(order.technician_id, null, 'no technician on record, so unassigned');
    const promoted = await registerUser(ctx, 'customer');
    const hidden = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}`, headers: promoted.auth });
    assert.equal(hidden.statusCode, 404, 'as a customer, another customer\'s order is hidden');

    // Auth0 now issues a technician token for the same account; the stored profile still says customer.
    const techToken = await ctx.auth0.token({ sub: promoted.sub, role: 'nail_technician', email: promoted.email, name: promoted.name });
    const asTech: TestUser = { ...promoted, token: techToken, role: 'nail_technician', auth: bearer(techToken) };
    const seen = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}`, headers: asTech.auth });
    assert.equal(seen.statusCode, 200, 'the orders service treats the caller as a technician');
    const list = await ctx.app.inject({ method: 'GET', url: '/api/v1/orders', headers: asTech.auth });
    assert.ok(list.json().data.some((o: { id: string }) => o.id === order.id), 'technician view lists unassigned orders');
    const taken = await put(ctx, asTech, `/api/v1/orders/${order.id}/assign`, {});
    assert.equal(taken.statusCode, 200, taken.body);
    assert.equal(taken.json().data.technician_id, promoted.id);

    const invited = await invite(ctx, asTech.auth, { email: uniqueEmail('promo'), name: 'Promo' });
    assert.equal(invited.statusCode, 201, invited.body);
    assert.deepEqual(invited.json().data.invited_by, { id: promoted.id, name: promoted.name });

    // And the other way: a stored technician whose token now says customer is refused technician routes.
    const demoted = await registerUser(ctx, 'nail_technician');
    const customerToken = await ctx.auth0.token({ sub: demoted.sub, role: 'customer', email: demoted.email });
    const refused = await invite(ctx, bearer(customerToken), { email: uniqueEmail('demo'), name: 'Demo' });
    assert.equal(refused.statusCode, 403);
  });
});

describe('identity: technician invitations', () => {
  let ctx: TestContext;
  let tech: TestUser;
  before(async () => {
    ctx = await buildTestApp();
    tech = await registerUser(ctx, 'nail_technician', 'Kendall');
  });
  after(() => ctx.close());

  it('creates the Auth0 user and a 7-day ticket, and answers 201 with the invitation', async () => {
    const email = uniqueEmail('New.Tech');
    const res = await invite(ctx, tech.auth, { email, name: ' Nia Nails ' });
    assert.equal(res.statusCode, 201, res.body);
    const data = res.json().data;
    assert.deepEqual(Object.keys(data).sort(), ['created_at', 'email', 'expires_at', 'id', 'invited_by', 'name', 'status', 'ticket_url']);
    assert.equal(data.email, email.toLowerCase());
    assert.equal(data.name, 'Nia Nails');
    assert.equal(data.status, 'pending');
    assert.match(data.ticket_url, /^https:\/\/kendalls-test\.auth0\.local\/lo\/reset\?ticket=/);
    assert.ok(Math.abs(Date.parse(data.expires_at) - Date.now() - 7 * DAY_MS) < 60_000, 'expires in 7 days');
    assert.deepEqual(data.invited_by, { id: tech.id, name: 'Kendall' }, 'a summary: never the inviter\'s email');

    const created = ctx.auth0.createdUsers.find((u) => u.email === email.toLowerCase());
    assert.ok(created, 'the fake Auth0 saw the user creation');
    assert.equal(created.connection, FAKE_CONNECTION);
    assert.deepEqual(created.app_metadata, { role: 'nail_technician' });
    assert.equal(created.email_verified, false);
    assert.equal(created.name, 'Nia Nails');
    const password = String(created.password);
    assert.ok(password.length >= 32 && /[a-z]/.test(password) && /[A-Z]/.test(password) && /\d/.test(password) && /[^\w]/.test(password), 'a strong random password');
    const ticket = ctx.auth0.tickets.find((t) => t.user_id === created.user_id);
    assert.equal(ticket?.ttl_sec, 7 * 24 * 3600);

    const [row] = await invitationRows(ctx, email);
    assert.equal(row!.id, data.id);
    assert.equal(row!.status, 'pending');
    assert.equal(row!.auth0UserId, created.user_id);
    assert.equal(row!.invitedById, tech.id);
  });

  it('reuses the Management API token for later invitations', async () => {
    const before = ctx.auth0.countCalls('POST', '/oauth/token');
    for (let i = 0; i < 2; i++) assert.equal((await invite(ctx, tech.auth, { email: uniqueEmail('reuse'), name: 'Reuse' })).statusCode, 201);
    assert.ok(before <= 1);
    assert.equal(ctx.auth0.countCalls('POST', '/oauth/token'), Math.max(before, 1), 'one client-credentials token for all calls');
  });

  it('answers 409 for a pending invitation or a registered email, without touching Auth0 again', async () => {
    const email = uniqueEmail('dup');
    assert.equal((await invite(ctx, tech.auth, { email, name: 'Dup' })).statusCode, 201);
    const creations = ctx.auth0.countCalls('POST', '/api/v2/users');
    const again = await invite(ctx, tech.auth, { email: email.toUpperCase(), name: 'Dup Again' });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().error.code, 'ALREADY_INVITED');
    assert.ok(Date.parse(again.json().error.details.expires_at) > Date.now());
    const registered = await invite(ctx, tech.auth, { email: tech.email, name: 'Myself' });
    assert.equal(registered.statusCode, 409);
    assert.equal(registered.json().error.code, 'USER_EXISTS');
    assert.equal(ctx.auth0.countCalls('POST', '/api/v2/users'), creations);
    assert.equal((await invitationRows(ctx, email)).length, 1);
  });

  it('answers 409 when Auth0 already has an account with the email, and stores nothing', async () => {
    const email = uniqueEmail('existing');
    ctx.auth0.addUser(email);
    const res = await invite(ctx, tech.auth, { email, name: 'Existing' });
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().error.code, 'USER_EXISTS');
    assert.match(res.json().error.message, /app_metadata\.role/);
    assert.equal((await invitationRows(ctx, email)).length, 0);
  });

  for (const status of [500, 429]) {
    it(`answers 502 after the SDK's retries when Auth0 answers ${status}, and stores nothing`, async () => {
      const email = uniqueEmail(`fail${status}`);
      const before = ctx.auth0.countCalls('POST', '/api/v2/users');
      // A 429 asks for a minute's wait; the request must not hang that long.
      ctx.auth0.fail('POST /api/v2/users', status);
      const started = Date.now();
      try {
        const res = await invite(ctx, tech.auth, { email, name: 'Unlucky' });
        assert.equal(res.statusCode, 502, res.body);
        assert.equal(res.json().error.code, 'IDENTITY_PROVIDER_ERROR');
      } finally {
        ctx.auth0.fail('POST /api/v2/users', status, { times: 0 });
      }
      assert.ok(Date.now() - started < 20_000, 'answered within 20 s');
      assert.equal(ctx.auth0.countCalls('POST', '/api/v2/users'), before + 3, 'the first attempt and two SDK retries');
      assert.equal((await invitationRows(ctx, email)).length, 0);
      assert.ok(!ctx.auth0.createdUsers.some((u) => u.email === email));
      const line = ctx.logs.find((l) => l.msg === 'Auth0 Management API call failed' && (l.auth0 as { status?: number }).status === status);
      assert.ok(line, 'the Auth0 status is logged');
    });
  }

  it('deletes the Auth0 user again when the ticket cannot be made, so a retry starts clean', async () => {
    const email = uniqueEmail('noticket');
    const [creations, deletions] = [ctx.auth0.countCalls('POST', '/api/v2/users'), ctx.auth0.deletedUsers.length];
    ctx.auth0.fail('POST /api/v2/tickets/password-change', 503);
    try {
      const res = await invite(ctx, tech.auth, { email, name: 'No Ticket' });
      assert.equal(res.statusCode, 502);
      assert.equal(res.json().error.code, 'IDENTITY_PROVIDER_ERROR');
    } finally {
      ctx.auth0.fail('POST /api/v2/tickets/password-change', 503, { times: 0 });
    }
    assert.equal((await invitationRows(ctx, email)).length, 0, 'no invitation row');
    assert.equal(ctx.auth0.countCalls('POST', '/api/v2/users'), creations + 1, 'the Auth0 user was created');
    assert.equal(ctx.auth0.deletedUsers.length, deletions + 1);
    assert.ok(!ctx.auth0.createdUsers.some((u) => u.email === email), 'and is gone again');
    const retry = await invite(ctx, tech.auth, { email, name: 'No Ticket' });
    assert.equal(retry.statusCode, 201, retry.body);
  });

  it('logs an Auth0 user it could not clean up, for removal by hand', async () => {
    const email = uniqueEmail('orphan');
    ctx.auth0.fail('POST /api/v2/tickets/password-change', 400);
    ctx.auth0.fail('DELETE /api/v2/users/', 400);
    try {
      const res = await invite(ctx, tech.auth, { email, name: 'Orphan' });
      assert.equal(res.statusCode, 502);
    } finally {
      ctx.auth0.fail('POST /api/v2/tickets/password-change', 400, { times: 0 });
      ctx.auth0.fail('DELETE /api/v2/users/', 400, { times: 0 });
    }
    const orphan = ctx.auth0.createdUsers.find((u) => u.email === email);
    assert.ok(orphan);
    const line = ctx.logs.find((l) => l.auth0_user_id === orphan.user_id);
    assert.ok(line, 'the orphan is named in the log');
    assert.equal(line.level, 50);
    assert.equal((await invitationRows(ctx, email)).length, 0);
  });

  it('renews an expired pending invitation with a new ticket for the same Auth0 user', async () => {
    const email = uniqueEmail('expired');
    const first = (await invite(ctx, tech.auth, { email, name: 'Late' })).json().data;
    await ctx.database.handle.db.update(invitations).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(invitations.id, first.id));
    const creations = ctx.auth0.countCalls('POST', '/api/v2/users');
    const renewed = await invite(ctx, tech.auth, { email, name: 'Late Again' });
    assert.equal(renewed.statusCode, 201, renewed.body);
    const data = renewed.json().data;
    assert.equal(data.id, first.id);
    assert.notEqual(data.ticket_url, first.ticket_url);
    assert.ok(Date.parse(data.expires_at) > Date.now() + 6 * DAY_MS);
    assert.equal(ctx.auth0.countCalls('POST', '/api/v2/users'), creations, 'no second Auth0 user');
    const [row] = await invitationRows(ctx, email);
    assert.equal(ctx.auth0.tickets.filter((t) => t.user_id === row!.auth0UserId).length, 2);
  });

  it('marks the invitation accepted when the invitee registers with a technician token', async () => {
    const email = uniqueEmail('joiner');
    const invited = (await invite(ctx, tech.auth, { email, name: 'Joiner' })).json().data;
    const auth0User = ctx.auth0.createdUsers.find((u) => u.email === email)!;
    const token = await ctx.auth0.token({ sub: String(auth0User.user_id), role: 'nail_technician', email, name: 'Joiner' });
    const res = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/register', headers: bearer(token) });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().data.role, 'nail_technician');
    const [row] = await invitationRows(ctx, email);
    assert.equal(row!.id, invited.id);
    assert.equal(row!.status, 'accepted');
    assert.ok(row!.acceptedAt);
    const again = await invite(ctx, tech.auth, { email, name: 'Joiner' });
    assert.equal(again.json().error.code, 'USER_EXISTS');
  });

  it('leaves the invitation pending when the same email registers as a customer', async () => {
    const email = uniqueEmail('notyet');
    await invite(ctx, tech.auth, { email, name: 'Not Yet' });
    const token = await ctx.auth0.token({ role: 'customer', email });
    assert.equal((await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/register', headers: bearer(token) })).statusCode, 201);
    const [row] = await invitationRows(ctx, email);
    assert.equal(row!.status, 'pending');
  });

  it('returns the first invitation again for a retried Idempotency-Key', async () => {
    const email = uniqueEmail('idem');
    const headers = { 'idempotency-key': `invite-${email}` };
    const first = await invite(ctx, tech.auth, { email, name: 'Idem' }, headers);
    const second = await invite(ctx, tech.auth, { email, name: 'Idem' }, headers);
    assert.equal(first.statusCode, 201);
    assert.equal(second.statusCode, 201);
    assert.equal(second.headers['idempotent-replayed'], 'true');
    assert.equal(second.json().data.id, first.json().data.id);
    assert.equal(second.json().data.ticket_url, first.json().data.ticket_url);
    assert.equal(ctx.auth0.createdUsers.filter((u) => u.email === email).length, 1);
  });

  it('refuses invalid input with 400 and field details', async () => {
    const cases: Array<[unknown, string]> = [
      [{ email: 'not-an-email', name: 'X' }, 'email'],
      [{ email: uniqueEmail('v'), name: '   ' }, 'name'],
      [{ email: uniqueEmail('v'), name: 'x'.repeat(101) }, 'name'],
      [{ email: uniqueEmail('v') }, 'name'],
      [{ email: uniqueEmail('v'), name: 'X', role: 'admin' }, 'role'],
    ];
    for (const [payload, field] of cases) {
      const res = await invite(ctx, tech.auth, payload);
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
      assert.equal(res.json().error.code, 'VALIDATION_ERROR');
      assert.ok(res.json().error.details[field], `${field} named in ${res.body}`);
    }
  });

  it('documents the route in the OpenAPI document', async () => {
    const doc = (await ctx.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json();
    const op = doc.paths['/api/v1/auth/technicians/invite'].post;
    assert.ok(op.security, 'bearer auth');
    assert.match(op.description, /IDENTITY_PROVIDER_NOT_CONFIGURED/);
    assert.ok(op.responses['201'] && op.responses['409'] && op.responses['502'] && op.responses['503']);
  });

  it('never writes the client secret, the random password or the ticket URL to the log', () => {
    const all = JSON.stringify(ctx.logs);
    assert.ok(!all.includes(FAKE_CLIENT_SECRET), 'client secret');
    for (const user of ctx.auth0.createdUsers) if (user.password) assert.ok(!all.includes(String(user.password)), 'password');
    assert.ok(!all.includes('lo/reset?ticket='), 'ticket URLs');
    assert.ok(ctx.logs.length > 10, 'there were log lines to check');
  });
});

describe('identity: invitations without a usable Management API', () => {
  it('answers 502 without leaking the secret when Auth0 refuses the client credentials', async () => {
    const secret = 'wrong-secret-7f3a9c1e5b';
    const ctx = await buildTestApp({ env: { AUTH0_CLIENT_SECRET: secret } });
    try {
      const tech = await registerUser(ctx, 'nail_technician');
      const res = await invite(ctx, tech.auth, { email: uniqueEmail('creds'), name: 'Creds' });
      assert.equal(res.statusCode, 502);
      assert.equal(res.json().error.code, 'IDENTITY_PROVIDER_ERROR');
      assert.ok(!res.body.includes(secret));
      const line = ctx.logs.find((l) => l.msg === 'Auth0 Management API call failed');
      assert.equal((line?.auth0 as { status?: number }).status, 401);
      assert.ok(!JSON.stringify(ctx.logs).includes(secret), 'the secret is not logged');
      assert.equal(ctx.auth0.countCalls('POST', '/api/v2/users'), 0);
    } finally {
      await ctx.close();
    }
  });

  it('answers 503 IDENTITY_PROVIDER_NOT_CONFIGURED with the development issuer', async () => {
    const ctx = await buildTestApp({ env: { AUTH0_DOMAIN: '', AUTH0_ISSUER_BASE_URL: '', AUTH0_CLIENT_ID: '', AUTH0_CLIENT_SECRET: '' } });
    try {
      assert.equal(ctx.config.devIssuer, true);
      const issued = await ctx.app.inject({ method: 'POST', url: '/dev/token', payload: { role: 'nail_technician', email: 'dev-tech@example.com', name: 'Dev Tech' } });
      const auth = bearer(issued.json().data.access_token);
      assert.equal((await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/register', headers: auth })).statusCode, 201);
      const res = await invite(ctx, auth, { email: uniqueEmail('dev'), name: 'Dev' });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().error.code, 'IDENTITY_PROVIDER_NOT_CONFIGURED');
      assert.match(res.json().error.message, /AUTH0_CLIENT_ID.*\/dev\/token/s);
      assert.equal(ctx.auth0.calls.length, 0, 'nothing was sent anywhere');
    } finally {
      await ctx.close();
    }
  });
});

describe('identity: development issuer in production', () => {
  it('does not exist: /dev/token and its JWKS answer 404', async () => {
    const ctx = await buildTestApp({
      env: { ...DEPLOYED_ENV, ENVIRONMENT: 'production', TRUST_PROXY: '1' },
    });
    // Production answers HTTPS only: every request arrives through the (trusted) router over HTTPS.
    const app: Api = {
      inject: (request) => ctx.app.inject({ ...request, headers: { ...request.headers, 'x-forwarded-proto': 'https' } }),
    };
    try {
      assert.equal(ctx.config.devIssuer, false);
      const token = await app.inject({ method: 'POST', url: '/dev/token', payload: { role: 'nail_technician', email: 'x@example.com' } });
      assert.equal(token.statusCode, 404);
      assert.equal(token.json().error.code, 'NOT_FOUND');
      assert.equal((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).statusCode, 404);
      const user = await registerUser({ app, auth0: ctx.auth0 });
      assert.equal((await app.inject({ method: 'GET', url: ME, headers: user.auth })).statusCode, 200, 'Auth0 tokens work');
    } finally {
      await ctx.close();
    }
  });

  it('refuses to start without AUTH0_DOMAIN rather than fall back to it', () => {
    const env = {
      ENVIRONMENT: 'production',
      PORT: '8080',
      PUBLIC_URL: 'https://api.kendallsnails.example',
      DATABASE_URL: 'postgres://u@db.example/kn',
      AUTH0_AUDIENCE: TEST_AUDIENCE,
      AUTH0_CLIENT_ID: 'id',
      AUTH0_CLIENT_SECRET: 'secret',
      AWS_ACCESS_KEY_ID: 'a',
      AWS_SECRET_ACCESS_KEY: 'b',
      AWS_REGION: 'us-east-1',
      S3_BUCKET_NAME: 'bucket',
      CORS_ALLOWED_ORIGINS: 'https://kendallsnails.example',
      TRUST_PROXY: '1',
    };
    assert.throws(
      () => loadConfig(env),
      (err: unknown) => err instanceof ConfigError && /AUTH0_DOMAIN/.test(err.message) && /development token issuer/.test(err.message),
    );
    assert.equal(loadConfig({ ...env, AUTH0_DOMAIN: 'kendalls.us.auth0.com' }).devIssuer, false);
  });
});

describe('identity: invite-technician command', () => {
  let auth0: FakeAuth0;
  let database: TestDatabase | undefined;
  let dataDir: string;
  let env: Record<string, string>;
  before(async () => {
    auth0 = await FakeAuth0.start();
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'kn-cli-'));
    // PostgreSQL: a test database the command and the test share. PGlite is single-process, so the command
    // gets its own embedded database under DATA_DIR, which the test opens once the command has exited.
    database = usingPostgres ? await createTestDatabase() : undefined;
    env = { ...auth0.env(), DATA_DIR: dataDir, ...(database?.url ? { DATABASE_URL: database.url } : {}) };
  });
  after(async () => {
    await database?.drop();
    await auth0.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('invites the first technician through Auth0 and stores the invitation with no inviter', async () => {
    const first = spawnNode(['src/cli.ts', 'invite-technician', '--email', 'Kendall@KendallsNails.example', '--name', 'Kendall'], env);
    assert.equal(await first.exit, 0, first.output());
    const printed = JSON.parse(first.output().trim().split('\n').at(-1)!) as { invitation: Record<string, unknown> };
    assert.equal(printed.invitation.email, 'kendall@kendallsnails.example');
    assert.equal(printed.invitation.invited_by, null);
    assert.match(String(printed.invitation.ticket_url), /lo\/reset\?ticket=/);
    const created = auth0.createdUsers.find((u) => u.email === 'kendall@kendallsnails.example');
    assert.deepEqual(created?.app_metadata, { role: 'nail_technician' });
    assert.ok(!first.output().includes(FAKE_CLIENT_SECRET));

    const again = spawnNode(['src/cli.ts', 'invite-technician', '--email', 'kendall@kendallsnails.example', '--name', 'Kendall'], env);
    assert.equal(await again.exit, 1);
    assert.match(again.output(), /ALREADY_INVITED/);

    const handle = database?.handle ?? (await createPglite({ dataDir: path.join(dataDir, 'pglite') }));
    try {
      const rows = await handle.db.select().from(invitations).where(eq(invitations.email, 'kendall@kendallsnails.example'));
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.id, printed.invitation.id);
      assert.equal(rows[0]!.invitedById, null);
      assert.equal(rows[0]!.auth0UserId, created?.user_id);
      // Told like an invitation through the API: its event in the outbox, for the worker to email.
      const events = await handle.db.select().from(outboxEvents).where(eq(outboxEvents.type, 'technician.invited'));
      assert.deepEqual(events.map((e) => e.data.invitation_id), [rows[0]!.id]);
    } finally {
      if (!database) await handle.close();
    }
  });

  it('exits 1 with usage or a clear reason when it cannot invite', async () => {
    const usage = spawnNode(['src/cli.ts', 'invite-technician', '--email', 'a@example.com'], env);
    assert.equal(await usage.exit, 1);
    assert.match(usage.output(), /needs --email and --name[\s\S]*Usage:/);
    const unconfigured = spawnNode(['src/cli.ts', 'invite-technician', '--email', 'b@example.com', '--name', 'B'], {
      ...env,
      AUTH0_CLIENT_SECRET: '',
    });
    assert.equal(await unconfigured.exit, 1);
    assert.match(unconfigured.output(), /IDENTITY_PROVIDER_NOT_CONFIGURED/);
  });
});

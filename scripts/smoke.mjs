#!/usr/bin/env node
// Smoke test of a deployed (or local) API: the deploy workflow runs it against staging before promoting the
// same slug to production, and test/smoke.test.ts runs it against a test server.
//
//   node scripts/smoke.mjs https://kendalls-nails-api-staging.herokuapp.com
//
// Checks, each printed on one line, exit code 1 if any fails:
//   1. GET /api/v1/health answers 200 with every dependency up (retried for SMOKE_WAIT_S seconds, default 0,
//      while a fresh release boots); SMOKE_EXPECT_VERSION, when set, must equal the version it reports.
//   2. An authenticated read: GET /api/v1/users/me with a real access token answers 200 (token verified against
//      the identity provider's keys, profile read from the database). The token is SMOKE_TOKEN, or one fetched
//      with the OAuth password grant from SMOKE_TOKEN_URL (https://<tenant>/oauth/token) for a dedicated smoke
//      user: SMOKE_USERNAME, SMOKE_PASSWORD, SMOKE_CLIENT_ID, SMOKE_CLIENT_SECRET (optional), SMOKE_AUDIENCE,
//      SMOKE_REALM (optional: the Auth0 connection, used with the password-realm grant).
//   3. For an https:// base URL: plain HTTP is redirected (308 to https://) — HTTPS only is in force.
// Node 22+ built-ins only, so it runs on a bare runner without `npm ci`.

const TIMEOUT_MS = 10_000;

/** @param {string} message */
function fail(message) {
  throw Object.assign(new Error(message), { smoke: true });
}

/** @param {string} url @param {RequestInit} [init] */
async function request(url, init = {}) {
  return fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS), ...init });
}

/** @param {Response} res */
async function bodyOf(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text.slice(0, 300);
  }
}

/** @param {string} base @param {NodeJS.ProcessEnv} env */
async function health(base, env) {
  const deadline = Date.now() + Number(env.SMOKE_WAIT_S ?? 0) * 1000;
  for (;;) {
    let problem;
    try {
      const res = await request(`${base}/api/v1/health`);
      const body = await bodyOf(res);
      if (res.status === 200 && body?.data?.status === 'ok') {
        if (env.SMOKE_EXPECT_VERSION && body.data.version !== env.SMOKE_EXPECT_VERSION) {
          problem = `version ${body.data.version}, expected ${env.SMOKE_EXPECT_VERSION}`;
        } else {
          return `200, every dependency up, version ${body.data.version}`;
        }
      } else {
        problem = `${res.status} ${JSON.stringify(body)}`;
      }
    } catch (err) {
      problem = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) fail(problem);
    await new Promise((resolve) => setTimeout(resolve, 5000));
  }
}

/** @param {NodeJS.ProcessEnv} env */
async function accessToken(env) {
  if (env.SMOKE_TOKEN) return env.SMOKE_TOKEN;
  const missing = ['SMOKE_TOKEN_URL', 'SMOKE_USERNAME', 'SMOKE_PASSWORD', 'SMOKE_CLIENT_ID', 'SMOKE_AUDIENCE'].filter((n) => !env[n]);
  if (missing.length > 0) fail(`no access token: set SMOKE_TOKEN, or ${missing.join(', ')} for the password grant`);
  const form = {
    grant_type: env.SMOKE_REALM ? 'http://auth0.com/oauth/grant-type/password-realm' : 'password',
    username: env.SMOKE_USERNAME,
    password: env.SMOKE_PASSWORD,
    client_id: env.SMOKE_CLIENT_ID,
    audience: env.SMOKE_AUDIENCE,
    ...(env.SMOKE_CLIENT_SECRET ? { client_secret: env.SMOKE_CLIENT_SECRET } : {}),
    ...(env.SMOKE_REALM ? { realm: env.SMOKE_REALM } : {}),
  };
  const res = await request(/** @type {string} */ (env.SMOKE_TOKEN_URL), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(/** @type {Record<string, string>} */ (form)),
  });
  const body = await bodyOf(res);
  if (res.status !== 200 || typeof body?.access_token !== 'string') {
    // The identity provider's error code only; never the request (it holds the password).
    fail(`token endpoint answered ${res.status} ${typeof body === 'object' ? (body?.error ?? '') : ''}`.trim());
  }
  return body.access_token;
}

/** @param {string} base @param {NodeJS.ProcessEnv} env */
async function authenticatedRead(base, env) {
  const token = await accessToken(env);
  const res = await request(`${base}/api/v1/users/me`, { headers: { authorization: `Bearer ${token}` } });
  const body = await bodyOf(res);
  if (res.status !== 200 || body?.success !== true) fail(`GET /api/v1/users/me: ${res.status} ${JSON.stringify(body?.error ?? body)}`);
  return `GET /api/v1/users/me 200 (${body.data.role})`;
}

/** @param {string} base */
async function httpsOnly(base) {
  const url = new URL('/api/v1/health/live', base);
  if (url.protocol !== 'https:') return undefined;
  url.protocol = 'http:';
  const res = await request(url);
  const location = res.headers.get('location') ?? '';
  if (res.status !== 308 || !location.startsWith('https://')) fail(`plain HTTP answered ${res.status} ${location}`.trim());
  return `plain HTTP → 308 ${location}`;
}

/**
 * Runs every check against `base`; returns the lines printed and whether all passed.
 * @param {string} base @param {NodeJS.ProcessEnv} env
 */
export async function smoke(base, env = process.env) {
  const root = base.replace(/\/+$/, '');
  const lines = [];
  let ok = true;
  for (const [name, check] of /** @type {const} */ ([
    ['health', () => health(root, env)],
    ['authenticated read', () => authenticatedRead(root, env)],
    ['https only', () => httpsOnly(root)],
  ])) {
    try {
      const detail = await check();
      lines.push(detail === undefined ? `skip ${name}: not an https URL` : `ok   ${name}: ${detail}`);
    } catch (err) {
      ok = false;
      lines.push(`FAIL ${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { ok, lines };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const base = process.argv[2] ?? process.env.SMOKE_URL;
  if (!base || !/^https?:\/\//.test(base)) {
    console.error('usage: node scripts/smoke.mjs <base URL, e.g. https://kendalls-nails-api-staging.herokuapp.com>');
    process.exit(2);
  }
  const { ok, lines } = await smoke(base);
  for (const line of lines) console.log(line);
  process.exit(ok ? 0 : 1);
}

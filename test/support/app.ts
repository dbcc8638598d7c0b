import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { LightMyRequestResponse } from 'fastify';
import { type App, type AppOverrides, buildApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import { ResponseContract } from './contract.js';
import { type TestDatabase, createTestDatabase } from './database.js';
import { FakeAuth0 } from './fake-auth0.js';
import type { Api } from './http.js';

/**
 * What a deployed web process needs besides ENVIRONMENT, Auth0 (the fake tenant's env), TRUST_PROXY and PUBLIC_URL:
 * placeholders, never called (buildTestApp swaps in a test database clone; the storage is the test's own).
 */
export const DEPLOYED_ENV = {
  PORT: '8080',
  DATABASE_URL: 'postgres://unused@127.0.0.1:1/unused',
  AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'example',
  AWS_REGION: 'us-east-1',
  S3_BUCKET_NAME: 'kendalls-test',
  CORS_ALLOWED_ORIGINS: 'https://kendallsnails.example',
};

export interface TestContext {
  app: App;
  auth0: FakeAuth0;
  database: TestDatabase;
  config: Config;
  dataDir: string;
  /** Every log line the app wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** The app's OpenAPI document as a response checker; app.inject already applies it to every answer. */
  contract: ResponseContract;
  close(): Promise<void>;
}

export interface TestAppOptions {
  env?: Record<string, string>;
  auth0?: FakeAuth0;
  database?: TestDatabase;
  overrides?: AppOverrides;
}

/** A real app on a fresh cloned database, trusting a local fake Auth0 over HTTP. */
export async function buildTestApp(opts: TestAppOptions = {}): Promise<TestContext> {
  const auth0 = opts.auth0 ?? (await FakeAuth0.start());
  const database = opts.database ?? (await createTestDatabase());
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kn-app-'));
  const config = loadConfig({
    ENVIRONMENT: 'development',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    RATE_LIMIT_ENABLED: 'false',
    // A test awaiting app.inject in a loop runs as one chain of microtasks and really does hold the event
    // loop for seconds, which event-loop-delay shedding would answer with 503; test/edge.test.ts covers it.
    LOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
    PUBLIC_URL: 'http://127.0.0.1:8080',
    ...auth0.env(),
    ...opts.env,
  });
  const logs: Array<Record<string, unknown>> = [];
  const logStream = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const app = await buildApp(config, {
    database: database.handle,
    logStream,
    fetch: auth0.fetch,
    skipMigrations: true,
    ...opts.overrides,
  });
  const contract = await checkResponses(app);
  return {
    app,
    contract,
    auth0,
    database,
    config,
    dataDir,
    logs,
    async close() {
      await app.close();
      if (!opts.database) await database.drop();
      if (!opts.auth0) await auth0.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Makes app.inject check every answer against the OpenAPI document the app serves (test/support/contract.ts):
 * a status the document does not list for the operation, or a JSON body outside its schema, fails the test.
 */
async function checkResponses(app: App): Promise<ResponseContract> {
  const inject = app.inject.bind(app);
  // The document the app serves at /api/v1/openapi.json, read directly: a staging or production app answers a plain
  // HTTP request with a redirect (HTTPS only).
  const contract = ResponseContract.for(JSON.stringify(app.swagger()));
  app.inject = ((opts?: unknown, callback?: unknown) => {
    // The chained and callback forms are left as they are; every test here awaits inject(options).
    if (opts === undefined || callback !== undefined) return (inject as (...args: unknown[]) => unknown)(opts, callback);
    const request = typeof opts === 'string' ? { method: 'GET', url: opts } : (opts as { method?: string; url?: unknown; path?: unknown });
    return (inject as (o: unknown) => Promise<LightMyRequestResponse>)(opts).then((res) => {
      const url = request.url ?? request.path;
      // A streamed answer has no body yet: whoever asked for the stream reads it and checks it (test/fuzz.test.ts).
      if (typeof url === 'string' && !(opts as { payloadAsStream?: boolean }).payloadAsStream) {
        contract.check({ method: (request.method ?? 'GET').toUpperCase(), url, statusCode: res.statusCode, headers: res.headers, body: res.body });
      }
      return res;
    });
  }) as typeof app.inject;
  return contract;
}

export interface TestUser {
  id: string;
  token: string;
  sub: string;
  email: string;
  name: string;
  role: 'customer' | 'nail_technician';
  auth: { authorization: string };
}

let counter = 0;

/** Signs a token for a new person and registers their profile through the API. */
export async function registerUser(
  ctx: { app: Api; auth0: FakeAuth0 },
  role: 'customer' | 'nail_technician' = 'customer',
  name?: string,
): Promise<TestUser> {
  counter += 1;
  const slug = `${role === 'customer' ? 'cust' : 'tech'}${counter}${Math.random().toString(36).slice(2, 7)}`;
  const email = `${slug}@example.com`;
  const sub = `auth0|${slug}`;
  const displayName = name ?? `${role === 'customer' ? 'Customer' : 'Tech'} ${slug}`;
  const token = await ctx.auth0.token({ sub, role, email, name: displayName });
  const res = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/register', headers: { authorization: `Bearer ${token}` } });
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`);
  return { id: res.json().data.id, token, sub, email, name: displayName, role, auth: { authorization: `Bearer ${token}` } };
}

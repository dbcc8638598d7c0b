import { loadConfig } from '../../src/config.js';
import { type DatabaseHandle, createPostgres } from '../../src/db/client.js';
import type { TestUser } from './app.js';
import { registerUser } from './app.js';
import { FakeAuth0 } from './fake-auth0.js';
import { type Api, httpApi } from './http.js';
import { invariantViolations } from './invariants.js';
import { type PrivatePostgres, startPrivatePostgres } from './private-postgres.js';
import { type S3rverHandle, startS3rver } from './s3rver.js';
import { type RunningServer, startServer } from './server.js';
import { s3Keys } from './store.js';
import { TcpProxy } from './tcp-proxy.js';

/**
 * Everything a fault or soak test runs against, all private to it: a PostgreSQL cluster, an s3rver, a
 * fake Auth0 and `servers` real server processes sharing them.
 */
export interface Stack {
  pg: PrivatePostgres;
  s3: S3rverHandle;
  /** With `proxyS3`: the servers reach the s3rver through it, so a test can black-hole the store. */
  s3Proxy?: TcpProxy;
  auth0: FakeAuth0;
  servers: RunningServer[];
  /** The environment every server was started with. */
  env: Record<string, string>;
  /** A client of server `i`, for the test helpers (registerUser, createOrder, …). */
  client(i?: number): { app: Api; auth0: FakeAuth0 };
  register(role: TestUser['role'], name?: string): Promise<TestUser>;
  startServer(): Promise<RunningServer>;
  /** Stops server `i` with SIGTERM (a dyno restart) and starts a new one in its place, on a new port. */
  restartServer(i: number): Promise<{ exitCode: number | null; server: RunningServer }>;
  /** The test's own connection to the private database. */
  db: DatabaseHandle;
  violations(): Promise<string[]>;
  close(): Promise<void>;
}

export async function startStack(opts: { servers?: number; env?: Record<string, string>; proxyS3?: boolean; heapProbe?: boolean } = {}): Promise<Stack> {
  const pg = await startPrivatePostgres();
  const s3 = await startS3rver();
  const s3Proxy = opts.proxyS3 ? await new TcpProxy({ host: '127.0.0.1', port: Number(new URL(s3.endpoint).port) }).start() : undefined;
  const auth0 = await FakeAuth0.start();
  const env = {
    DATABASE_URL: pg.url,
    DB_CONNECTION_TIMEOUT_MS: '1000',
    DB_STATEMENT_TIMEOUT_MS: '2000',
    ...s3.env,
    ...(s3Proxy ? { S3_ENDPOINT: `http://127.0.0.1:${s3Proxy.port}` } : {}),
    ...auth0.env(),
    ...opts.env,
  };
  const db = createPostgres(loadConfig({ ENVIRONMENT: 'development', DATABASE_URL: pg.url, DB_POOL_MAX: '2' }));
  const stack: Stack = {
    pg,
    s3,
    s3Proxy,
    auth0,
    servers: [],
    env,
    db,
    client: (i = 0) => ({ app: httpApi(stack.servers[i]!.url), auth0 }),
    register: (role, name) => registerUser(stack.client(), role, name),
    async startServer() {
      const server = await startServer(env, { heapProbe: opts.heapProbe });
      stack.servers.push(server);
      return server;
    },
    async restartServer(i) {
      const exitCode = await stack.servers[i]!.stop('SIGTERM');
      const server = await startServer(env, { heapProbe: opts.heapProbe });
      stack.servers[i] = server;
      return { exitCode, server };
    },
    violations: () => invariantViolations(db.db, () => s3Keys(s3)),
    async close() {
      await Promise.all(stack.servers.map((s) => s.stop('SIGKILL')));
      await db.close().catch(() => undefined);
      await auth0.stop();
      await s3Proxy?.stop();
      await s3.stop();
      await pg.destroy();
    },
  };
  try {
    // The first server migrates the empty database; the others find nothing to do.
    await stack.startServer();
    for (let i = 1; i < (opts.servers ?? 1); i++) await stack.startServer();
  } catch (err) {
    await stack.close();
    throw err;
  }
  return stack;
}

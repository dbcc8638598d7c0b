import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startPgbouncer } from '../scripts/pgbouncer.mjs';
import { loadConfig } from '../src/config.js';
import { type DatabaseHandle, createDatabase, createPostgres } from '../src/db/client.js';
import { runMigrations, runMigrationsDirect } from '../src/db/migrate.js';
import { type TestContext, buildTestApp, registerUser } from './support/app.js';
import { createTestDatabase, usingPostgres } from './support/database.js';
import { createOrder, put } from './support/orders.js';
import { type PrivatePostgres, startPrivatePostgres } from './support/private-postgres.js';

type Bouncer = Awaited<ReturnType<typeof startPgbouncer>>;

/**
 * DATABASE_CONNECTION_POOL_URL through a real PgBouncer in transaction mode (Heroku's connection pooling):
 * its admin console proves the app's queries went through it, and that the app sends nothing it refuses.
 * On PostgreSQL the pooler fronts a cloned test database; on PGlite runs, a private PostgreSQL.
 */
describe('connection pooling through PgBouncer (transaction mode)', () => {
  let bouncer: Bouncer;
  let privatePg: PrivatePostgres | undefined;
  let dropDatabase: () => Promise<void>;
  let directUrl: string;
  let name: string;
  let ctx: TestContext;
  let pooled: DatabaseHandle;

  const admin = async <T extends Record<string, unknown>>(command: string): Promise<T[]> => {
    const client = new pg.Client({ connectionString: bouncer.adminUrl });
    await client.connect();
    try {
      return (await client.query<T>(command)).rows;
    } finally {
      await client.end();
    }
  };
  const stats = async () => {
    const row = (await admin<{ database: string; total_xact_count: string; total_query_count: string }>('SHOW STATS')).find((r) => r.database === name);
    return { xacts: Number(row?.total_xact_count ?? 0), queries: Number(row?.total_query_count ?? 0) };
  };
  const configFor = () => loadConfig({ ENVIRONMENT: 'development', DATABASE_URL: directUrl, DATABASE_CONNECTION_POOL_URL: bouncer.url(name) });

  before(async () => {
    if (usingPostgres) {
      const database = await createTestDatabase();
      await database.handle.close();
      directUrl = database.url!;
      dropDatabase = () => database.drop();
    } else {
      privatePg = await startPrivatePostgres();
      directUrl = privatePg.url;
      const handle = createPostgres(loadConfig({ ENVIRONMENT: 'development', DATABASE_URL: directUrl }));
      await runMigrations(handle);
      await handle.close();
      dropDatabase = async () => undefined;
    }
    name = new URL(directUrl).pathname.slice(1);
    bouncer = await startPgbouncer({ upstream: directUrl });
    pooled = await createDatabase(configFor());
    // No worker in this process: its polling would go through the pooler too and blur the counts the tests compare
    // (events are still recorded through it: the outbox row and its job, in the change's transaction).
    ctx = await buildTestApp({ env: { WORKER_IN_PROCESS: 'false' }, database: { handle: pooled, url: directUrl, drop: async () => undefined } });
  });

  after(async () => {
    await ctx?.close();
    await pooled?.close();
    await dropDatabase?.();
    await bouncer?.stop();
    await privatePg?.destroy();
  });

  it('runs the app through the pooler: its queries and transactions are counted on the admin console', async () => {
    const before = await stats();
    const owner = await registerUser(ctx, 'customer');
    const order = await createOrder(ctx, owner, { description: 'Through the pooler' });
    assert.equal((await put(ctx, owner, `/api/v1/designs/${order.design_id}/visibility`, { is_public: true })).statusCode, 200);
    const comment = await ctx.app.inject({
      method: 'POST',
      url: `/api/v1/designs/${order.design_id}/comments`,
      headers: { ...owner.auth, 'idempotency-key': 'pooled-comment-1' },
      payload: { text: 'Pooled' },
    });
    assert.equal(comment.statusCode, 201, comment.body);
    const gallery = await ctx.app.inject({ method: 'GET', url: '/api/v1/designs?search=pooler' });
    assert.equal(gallery.json().data.length, 1, gallery.body);
    const mine = await ctx.app.inject({ method: 'GET', url: '/api/v1/orders', headers: owner.auth });
    assert.equal(mine.json().data.length, 1, mine.body);

    const afterwards = await stats();
    // Register, the order (with its design), publishing, the idempotent comment: each a transaction of several statements.
    assert.ok(afterwards.xacts - before.xacts >= 10, `transactions through PgBouncer: ${afterwards.xacts - before.xacts}`);
    assert.ok(afterwards.queries - before.queries >= afterwards.xacts - before.xacts, 'queries went through PgBouncer');
    const clients = await admin<{ database: string; application_name: string }>('SHOW CLIENTS');
    const ours = clients.filter((c) => c.database === name);
    assert.ok(ours.length >= 1, 'the app holds client connections to the pooler');
    assert.ok(ours.every((c) => c.application_name === 'kendalls-nails-api'), JSON.stringify(ours));
    // PgBouncer multiplexes: the app's clients share the server connections of one pool (default_pool_size 10).
    const [pool] = (await admin<{ database: string; sv_active: string; sv_idle: string; sv_used: string; pool_mode: string }>('SHOW POOLS')).filter((p) => p.database === name);
    assert.equal(pool?.pool_mode, 'transaction');
  });

  it('sends no startup parameter PgBouncer refuses: statement_timeout would be', async () => {
    const config = configFor();
    const unpooled = createPostgres(config, undefined, config.database.poolUrl);
    await assert.rejects(unpooled.ping(), /unsupported startup parameter: statement_timeout/);
    await unpooled.close();
    await pooled.ping();
  });

  it('migrates over the direct DATABASE_URL, never through the pooler', async () => {
    const before = await stats();
    // The migration's session advisory lock would be held by whichever server connection PgBouncer lent.
    await runMigrationsDirect(configFor(), pooled);
    const afterwards = await stats();
    assert.equal(afterwards.xacts, before.xacts, 'no migration statement went through PgBouncer');
  });
});

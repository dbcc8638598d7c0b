import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createPostgres } from '../../src/db/client.js';
import { runMigrations } from '../../src/db/migrate.js';
import { type TestContext, type TestUser, buildTestApp, registerUser } from '../support/app.js';
import type { TestDatabase } from '../support/database.js';
import { FakeAuth0 } from '../support/fake-auth0.js';
import { sleep } from '../support/load.js';
import { createOrder, put } from '../support/orders.js';
import { type PrivatePostgres, replicaOf, startPrivatePostgres } from '../support/private-postgres.js';

/**
 * DATABASE_READ_URL against a real streaming replica (initdb, pg_basebackup -R, a second postgres). What
 * the replica answers is told apart from the primary by pausing its replay (pg_wal_replay_pause): a write
 * made on the primary meanwhile is invisible there. Two apps share both servers: `lenient` tolerates any
 * lag (so it keeps reading the paused replica), `strict` at most 1 s.
 */
describe('follower database (DATABASE_READ_URL) on a real streaming replica', () => {
  let primary: PrivatePostgres;
  let replica: PrivatePostgres;
  let auth0: FakeAuth0;
  let database: TestDatabase;
  let lenient: TestContext;
  let strict: TestContext;
  let owner: TestUser;
  let designId: string;

  const description = async (ctx: TestContext) => {
    const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/designs' });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().data.find((d: { id: string }) => d.id === designId)?.description as string | undefined;
  };
  const commentCount = async (ctx: TestContext) => {
    const res = await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${designId}/comments` });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().data.length as number;
  };
  const follower = async (ctx: TestContext) => {
    const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/health' });
    return res.json().data.follower as { status: string; lag_s: number | null; max_lag_s: number };
  };
  const until = async (what: string, check: () => Promise<boolean>, ms = 15_000) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  };
  /** Everything the primary wrote so far is replayed on the replica. */
  const caughtUp = async () => {
    const [current] = await primary.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
    await until('the replica to replay the primary', async () => {
      const [row] = await replica.query<{ ok: boolean }>('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [current!.lsn]);
      return row!.ok;
    });
  };
  /** With the primary stopped, `ctx` still answers the gallery and its comments: they come from the replica. */
  const servedByReplicaAlone = async (ctx: TestContext) => {
    await primary.stop('fast');
    try {
      assert.equal(await description(ctx), 'on both');
      assert.equal(await commentCount(ctx), 1);
    } finally {
      await primary.start();
    }
  };

  before(async () => {
    primary = await startPrivatePostgres();
    const config = loadConfig({ ENVIRONMENT: 'development', DATABASE_URL: primary.url });
    const handle = createPostgres(config);
    await runMigrations(handle);
    database = { handle, url: primary.url, drop: () => handle.close() };
    replica = await replicaOf(primary);
    auth0 = await FakeAuth0.start();
    const env = (maxLag: string) => ({ DATABASE_URL: primary.url, DATABASE_READ_URL: replica.url, DATABASE_READ_MAX_LAG_S: maxLag });
    lenient = await buildTestApp({ auth0, database, env: env('3600') });
    strict = await buildTestApp({ auth0, database, env: env('1') });
    owner = await registerUser(strict, 'customer');
    const order = await createOrder(strict, owner, { description: 'on both' });
    designId = order.design_id;
    assert.equal((await put(strict, owner, `/api/v1/designs/${designId}/visibility`, { is_public: true })).statusCode, 200);
  });

  after(async () => {
    await lenient?.close();
    await strict?.close();
    await database?.drop();
    await auth0?.stop();
    await replica?.destroy();
    await primary?.destroy();
  });

  it('serves anonymous reads from the replica, and from the primary once its lag passes the limit, until it catches up', async () => {
    await caughtUp();
    assert.equal(await description(strict), 'on both');
    assert.deepEqual(await follower(strict), { status: 'up', lag_s: 0, max_lag_s: 1 });

    await replica.query('select pg_wal_replay_pause()');
    await primary.query(`update designs set description = 'on the primary only' where id = $1`, [designId]);
    const posted = await strict.app.inject({
      method: 'POST',
      url: `/api/v1/designs/${designId}/comments`,
      headers: { ...owner.auth, 'idempotency-key': 'follower-comment-1' },
      payload: { text: 'Lovely' },
    });
    assert.equal(posted.statusCode, 201, posted.body);

    // The lenient app reads the paused replica: neither the new description nor the comment are there.
    assert.equal(await description(lenient), 'on both', 'the gallery is read from the replica');
    assert.equal(await commentCount(lenient), 0, 'comments are read from the replica');
    // The strict app sees the replica fall behind and reads the primary instead.
    await until('the strict app to see the replica lagging', async () => (await follower(strict)).status === 'lagging');
    const lagging = await follower(strict);
    assert.ok(lagging.lag_s! > 1, `lag ${lagging.lag_s}`);
    assert.equal(await description(strict), 'on the primary only', 'a lagging replica is skipped');
    assert.equal(await commentCount(strict), 1);
    assert.equal((await follower(lenient)).status, 'up', 'within its own limit the lenient app keeps the replica');

    await primary.query(`update designs set description = 'on both' where id = $1`, [designId]);
    await replica.query('select pg_wal_replay_resume()');
    await caughtUp();
    await until('the strict app to take the replica back', async () => (await follower(strict)).status === 'up');
    await servedByReplicaAlone(strict);
  });

  it('falls back to the primary within the same request when the replica stops, and returns to it when it is back', async () => {
    await caughtUp();
    assert.equal(await description(strict), 'on both');
    await replica.stop('fast');
    // The first request after the stop still answers: on the primary, whether the failed query or the probe noticed.
    assert.equal(await description(strict), 'on both');
    assert.equal(await commentCount(strict), 1);
    assert.equal((await follower(strict)).status, 'down');
    assert.ok(
      strict.logs.some((l) => String(l.msg).startsWith('follower database down')),
      'the switch to the primary is logged',
    );
    const health = await strict.app.inject({ method: 'GET', url: '/api/v1/health' });
    assert.equal(health.statusCode, 200, 'a follower down is not an outage: the primary answers');

    await replica.start();
    await until('the strict app to take the replica back', async () => (await follower(strict)).status === 'up');
    assert.ok(strict.logs.some((l) => l.msg === 'follower database back in use'));
    await servedByReplicaAlone(strict);
  });
});

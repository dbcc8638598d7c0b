import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { LiveItem } from '../src/modules/live/live.domain.js';
import type { Notice } from '../src/modules/notifications/events.js';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { type TestDatabase, createTestDatabase, usingPostgres } from './support/database.js';
import { FakeAuth0 } from './support/fake-auth0.js';
import { startTlsRedis } from './support/private-redis.js';
import { SseClient } from './support/sse.js';

/**
 * The live stream over real HTTP (app.listen on port 0, fetch reading the body as it comes): what is published
 * reaches the right person on whichever app instance they are connected to, through PostgreSQL LISTEN/NOTIFY
 * (PGlite's in-process NOTIFY on the embedded default) or Redis pub/sub; tickets; resume; limits; shutdown.
 */

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function notice(recipientId: string, title = 'Order #3F9A12BC was shipped', extra: Partial<Notice> = {}): LiveItem {
  const id = randomUUID();
  return {
    id,
    type: 'notification',
    data: {
      id,
      eventId: randomUUID(),
      type: 'order.shipped',
      recipientId,
      createdAt: new Date().toISOString(),
      title,
      body: 'Your nails are on their way.',
      link: `/orders/${randomUUID()}`,
      ...extra,
    },
  };
}

/** A backlog over an array, in publication order (what the notifications table gives in production). */
class ArrayBacklog {
  readonly items: Array<{ userId: string; item: LiveItem }> = [];
  gate: Promise<void> | undefined;
  calls = 0;
  add(userId: string, item: LiveItem) {
    this.items.push({ userId, item });
    return item;
  }
  readonly read = async (userId: string, afterId: string, limit: number): Promise<LiveItem[]> => {
    this.calls += 1;
    await this.gate;
    const mine = this.items.filter((i) => i.userId === userId).map((i) => i.item);
    const at = mine.findIndex((i) => i.id === afterId);
    return at < 0 ? [] : mine.slice(at + 1, at + 1 + limit);
  };
}

interface Running {
  ctx: TestContext;
  base: string;
}

async function start(opts: { env?: Record<string, string>; database?: TestDatabase; auth0?: FakeAuth0; backlog?: ArrayBacklog } = {}): Promise<Running> {
  const ctx = await buildTestApp({
    env: { STREAM_HEARTBEAT_MS: '15000', ...opts.env },
    database: opts.database,
    auth0: opts.auth0,
    overrides: opts.backlog ? { liveBacklog: opts.backlog.read } : {},
  });
  await ctx.app.listen({ port: 0, host: '127.0.0.1' });
  return { ctx, base: `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}` };
}

const bearer = (user: TestUser) => ({ authorization: `Bearer ${user.token}` });

async function errorOf(res: Response): Promise<{ status: number; code: string }> {
  const body = (await res.json()) as { success: boolean; error: { code: string } };
  assert.equal(body.success, false);
  return { status: res.status, code: body.error.code };
}

async function ticketFor(run: Running, user: TestUser): Promise<{ ticket: string; expires_at: string }> {
  const res = await fetch(`${run.base}/api/v1/stream/tickets`, { method: 'POST', headers: bearer(user) });
  const text = await res.text();
  run.ctx.contract.check({ method: 'POST', url: '/api/v1/stream/tickets', statusCode: res.status, headers: Object.fromEntries(res.headers), body: text });
  assert.equal(res.status, 201, text);
  return (JSON.parse(text) as { data: { ticket: string; expires_at: string } }).data;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('live stream on one instance', () => {
  let run: Running;
  let backlog: ArrayBacklog;
  let ada: TestUser;
  let bea: TestUser;
  const open: SseClient[] = [];
  const stream = async (headers: Record<string, string>, query = '') => {
    const client = await SseClient.open(`${run.base}/api/v1/stream${query}`, headers);
    open.push(client);
    return client;
  };

  before(async () => {
    backlog = new ArrayBacklog();
    run = await start({ backlog, env: { STREAM_HEARTBEAT_MS: '50', STREAM_RETRY_MS: '2500', STREAM_TICKET_TTL_S: '1', STREAM_MAX_PER_USER: '3' } });
    ada = await registerUser(run.ctx, 'customer', 'Ada');
    bea = await registerUser(run.ctx, 'customer', 'Bea');
  });
  after(async () => {
    for (const c of open) c.close();
    await run.ctx.close();
  });

  it('sends a published item to its person only, as id/event/data, with the SSE headers, retry hint and heartbeats', async () => {
    const a = await stream(bearer(ada));
    const b = await stream(bearer(bea));
    assert.equal(a.status, 200);
    assert.match(a.response.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.match(a.response.headers.get('cache-control') ?? '', /no-cache/);
    assert.equal(a.response.headers.get('x-accel-buffering'), 'no');
    assert.ok(a.response.headers.get('x-request-id'), 'the request id goes out on a stream too');
    // The document lists the answer (status and content type) for the operation.
    run.ctx.contract.check({ method: 'GET', url: '/api/v1/stream', statusCode: 200, headers: Object.fromEntries(a.response.headers), body: '' });

    await a.until(() => a.retry !== undefined, 'the retry hint');
    assert.equal(a.retry, 2500);
    await a.until(() => a.comments.includes('heartbeat'), 'a heartbeat');

    const forAda = notice(ada.id, 'Order #AAAA0001 was shipped');
    await run.ctx.app.live.publish(ada.id, forAda);
    await a.until(() => a.events.length === 1, "Ada's item");
    assert.deepEqual(a.events[0], { id: forAda.id, event: 'notification', data: JSON.stringify(forAda.data) });

    const forBea = notice(bea.id, 'Order #BBBB0002 was accepted');
    await run.ctx.app.live.publish(bea.id, forBea);
    await b.until(() => b.events.length === 1, "Bea's item");
    // Bea's first and only event is her own: Ada's never reached her stream.
    assert.deepEqual(b.ids(), [forBea.id]);
    await sleep(100);
    assert.deepEqual(a.ids(), [forAda.id]);
    a.close();
    b.close();
  });

  it('carries an item larger than a NOTIFY payload (8000 bytes) intact', async () => {
    const a = await stream(bearer(ada));
    const big = notice(ada.id, 'Big', { body: `Ünïcødé 💅 ${'x'.repeat(12_000)} ${'é'.repeat(5000)}💅` });
    await run.ctx.app.live.publish(ada.id, big);
    await a.until(() => a.events.length === 1, 'the large item');
    assert.deepEqual(JSON.parse(a.events[0]!.data), big.data);
    a.close();
  });

  it('refuses a caller without a token or ticket (401), and opens with a ticket once only', async () => {
    const none = await fetch(`${run.base}/api/v1/stream`);
    assert.deepEqual(await errorOf(none), { status: 401, code: 'UNAUTHORIZED' });

    const { ticket, expires_at } = await ticketFor(run, ada);
    const lifetime = Date.parse(expires_at) - Date.now();
    assert.ok(lifetime > 0 && lifetime <= 1500, `a ticket lives STREAM_TICKET_TTL_S (1 s here), not ${lifetime} ms`);
    const first = await stream({}, `?ticket=${ticket}`);
    assert.equal(first.status, 200);
    const item = notice(ada.id);
    await run.ctx.app.live.publish(ada.id, item);
    await first.until(() => first.events.length === 1, 'the item on the ticket-opened stream');
    assert.equal(first.events[0]!.id, item.id);
    first.close();

    const again = await fetch(`${run.base}/api/v1/stream?ticket=${ticket}`);
    const refused = await errorOf(again);
    assert.deepEqual(refused, { status: 401, code: 'INVALID_STREAM_TICKET' }, 'a ticket works once');
    run.ctx.contract.check({ method: 'GET', url: '/api/v1/stream', statusCode: 401, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ success: false, error: { code: 'INVALID_STREAM_TICKET', message: 'x' } }) });

    const forged = await fetch(`${run.base}/api/v1/stream?ticket=${randomBytes(32).toString('base64url')}`);
    assert.deepEqual(await errorOf(forged), { status: 401, code: 'INVALID_STREAM_TICKET' });
    const garbage = await fetch(`${run.base}/api/v1/stream?ticket=not-a-ticket`);
    assert.deepEqual(await errorOf(garbage), { status: 401, code: 'INVALID_STREAM_TICKET' });
  });

  it('refuses an expired ticket (401)', async () => {
    const { ticket } = await ticketFor(run, bea);
    await sleep(1300);
    const res = await fetch(`${run.base}/api/v1/stream?ticket=${ticket}`);
    assert.deepEqual(await errorOf(res), { status: 401, code: 'INVALID_STREAM_TICKET' });
  });

  it('resumes after Last-Event-ID: the missed items first, in order, then live ones, each once', async () => {
    const seen = [1, 2, 3, 4, 5].map((n) => backlog.add(ada.id, notice(ada.id, `Missed ${n}`)));
    backlog.add(bea.id, notice(bea.id, 'Not for Ada'));
    // The backlog is slow; meanwhile item 6 is stored and published live, and item 5 is published again (at least once).
    let release!: () => void;
    backlog.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const calls = backlog.calls;
    const a = await stream({ ...bearer(ada), 'last-event-id': seen[1]!.id });
    await a.until(() => backlog.calls > calls, 'the backlog read');
    const sixth = backlog.add(ada.id, notice(ada.id, 'Live 6'));
    await run.ctx.app.live.publish(ada.id, sixth);
    await run.ctx.app.live.publish(ada.id, seen[4]!);
    await sleep(100);
    assert.deepEqual(a.ids(), [], 'live items wait for the resume');
    release();
    backlog.gate = undefined;
    await a.until(() => a.events.length >= 4, 'the missed items and the live one');
    await run.ctx.app.live.publish(ada.id, sixth);
    const seventh = backlog.add(ada.id, notice(ada.id, 'Live 7'));
    await run.ctx.app.live.publish(ada.id, seventh);
    await a.until(() => a.events.length >= 5, 'item 7');
    await sleep(100);
    assert.deepEqual(a.ids(), [seen[2]!.id, seen[3]!.id, seen[4]!.id, sixth.id, seventh.id]);
    a.close();

    // EventSource polyfills that cannot send the header use the query.
    const polyfill = await stream(bearer(ada), `?last_event_id=${sixth.id}`);
    await polyfill.until(() => polyfill.events.length === 1, 'the item after 6');
    assert.deepEqual(polyfill.ids(), [seventh.id]);
    polyfill.close();
  });

  it('limits open streams per person (429 TOO_MANY_STREAMS) and frees the place when one closes', async () => {
    const carl = await registerUser(run.ctx, 'nail_technician', 'Carl');
    const streams = [await stream(bearer(carl)), await stream(bearer(carl)), await stream(bearer(carl))];
    for (const s of streams) assert.equal(s.status, 200);
    const fourth = await fetch(`${run.base}/api/v1/stream`, { headers: bearer(carl) });
    assert.deepEqual(await errorOf(fourth), { status: 429, code: 'TOO_MANY_STREAMS' });
    streams[0]!.close();
    // The server notices the client left and frees its place.
    let reopened: SseClient | undefined;
    for (let i = 0; i < 50 && !reopened; i++) {
      const s = await stream(bearer(carl));
      if (s.status === 200) reopened = s;
      else await sleep(50);
    }
    assert.ok(reopened, 'a place frees up when a stream closes');
    for (const s of [...streams, reopened]) s.close();
  });
});

describe('live stream limits per process and shutdown', () => {
  it('refuses past STREAM_MAX_PER_PROCESS with 503 and Retry-After, and app.close() ends open streams at once', async () => {
    const run = await start({ env: { STREAM_MAX_PER_PROCESS: '2' } });
    const [a, b, c] = [await registerUser(run.ctx), await registerUser(run.ctx), await registerUser(run.ctx)];
    const sa = await SseClient.open(`${run.base}/api/v1/stream`, bearer(a));
    const sb = await SseClient.open(`${run.base}/api/v1/stream`, bearer(b));
    assert.equal(sa.status, 200);
    assert.equal(sb.status, 200);
    const third = await fetch(`${run.base}/api/v1/stream`, { headers: bearer(c) });
    assert.ok(third.headers.get('retry-after'));
    assert.deepEqual(await errorOf(third), { status: 503, code: 'STREAM_CAPACITY_REACHED' });

    const started = Date.now();
    await run.ctx.close();
    const took = Date.now() - started;
    assert.ok(took < 3000, `app.close() waited ${took} ms for open streams`);
    await sa.until(() => sa.ended, 'the first stream to end');
    await sb.until(() => sb.ended, 'the second stream to end');
  });

  it('is not cut by the request time limit (REQUEST_TIMEOUT_MS) while quiet', async () => {
    const run = await start({ env: { REQUEST_TIMEOUT_MS: '1000', STREAM_HEARTBEAT_MS: '5000' } });
    try {
      const user = await registerUser(run.ctx);
      const s = await SseClient.open(`${run.base}/api/v1/stream`, bearer(user));
      assert.equal(s.status, 200);
      await sleep(2500);
      assert.equal(s.ended, false, 'the stream outlived the request time limit');
      const item = notice(user.id);
      await run.ctx.app.live.publish(user.id, item);
      await s.until(() => s.events.length === 1, 'an item after the time limit');
      s.close();
    } finally {
      await run.ctx.close();
    }
  });
});

describe('live stream across two instances on one database (LISTEN/NOTIFY)', () => {
  let database: TestDatabase;
  let auth0: FakeAuth0;
  let one: Running;
  let two: Running;
  let backlog: ArrayBacklog;

  before(async () => {
    database = await createTestDatabase();
    auth0 = await FakeAuth0.start();
    backlog = new ArrayBacklog();
    // On PostgreSQL the bus listens on the direct URL (DATABASE_URL); on PGlite both apps share the embedded database.
    const env: Record<string, string> = database.url ? { DATABASE_URL: database.url } : {};
    one = await start({ database, auth0, env, backlog });
    two = await start({ database, auth0, env, backlog });
  });
  after(async () => {
    await one.ctx.close();
    await two.ctx.close();
    await database.drop();
    await auth0.stop();
  });

  it('delivers what one instance publishes to a stream on the other', async () => {
    assert.equal(two.ctx.app.live.kind, usingPostgres ? 'postgres' : 'pglite');
    const user = await registerUser(one.ctx);
    const s = await SseClient.open(`${two.base}/api/v1/stream`, bearer(user));
    assert.equal(s.status, 200);
    const item = backlog.add(user.id, notice(user.id));
    await one.ctx.app.live.publish(user.id, item);
    await s.until(() => s.events.length === 1, 'the item published on the other instance');
    assert.equal(s.events[0]!.id, item.id);

    const big = backlog.add(user.id, notice(user.id, 'Large', { body: 'y'.repeat(20_000) }));
    await one.ctx.app.live.publish(user.id, big);
    await s.until(() => s.events.length === 2, 'the large item');
    assert.deepEqual(JSON.parse(s.events[1]!.data), big.data);
    s.close();
  });

  it('reconnects after losing its LISTEN connection, logs it, and sends what was published meanwhile', { skip: !usingPostgres && 'PostgreSQL only' }, async () => {
    const user = await registerUser(one.ctx);
    const s = await SseClient.open(`${two.base}/api/v1/stream`, bearer(user));
    const first = backlog.add(user.id, notice(user.id, 'Before'));
    await one.ctx.app.live.publish(user.id, first);
    await s.until(() => s.events.length === 1, 'the first item');

    // As when the server restarts: every listening session of this database is cut.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const { rowCount } = await admin.query(
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'kendalls-nails-api-live' and datname = current_database()",
      );
      assert.ok(rowCount && rowCount >= 1);
    } finally {
      await admin.end();
    }
    // Published while the listener is away: only the store has it.
    const missed = backlog.add(user.id, notice(user.id, 'While away'));
    await one.ctx.app.live.publish(user.id, missed);
    await s.until(() => s.events.length === 2, 'the item published while the listener was away', 10_000);
    assert.equal(s.events[1]!.id, missed.id);
    const logs = two.ctx.logs.map((l) => l.msg);
    assert.ok(logs.includes('live bus (PostgreSQL LISTEN) lost its connection; reconnecting'), 'the loss is logged');
    assert.ok(logs.includes('live bus (PostgreSQL LISTEN) reconnected'), 'the recovery is logged');

    const after = backlog.add(user.id, notice(user.id, 'After'));
    await one.ctx.app.live.publish(user.id, after);
    await s.until(() => s.events.length === 3, 'an item after the reconnect');
    assert.deepEqual(s.ids(), [first.id, missed.id, after.id]);
    s.close();
  });
});

describe('live stream across two instances through Redis', () => {
  let database: TestDatabase;
  let auth0: FakeAuth0;
  let one: Running;
  let two: Running;
  let backlog: ArrayBacklog;
  const channel = `kn_live_test_${randomBytes(4).toString('hex')}`;

  before(async () => {
    database = await createTestDatabase();
    auth0 = await FakeAuth0.start();
    backlog = new ArrayBacklog();
    const env = { REDIS_URL, LIVE_CHANNEL: channel, RATE_LIMIT_ENABLED: 'false' };
    one = await start({ database, auth0, env, backlog });
    two = await start({ database, auth0, env, backlog });
  });
  after(async () => {
    await one.ctx.close();
    await two.ctx.close();
    await database.drop();
    await auth0.stop();
  });

  it('delivers what one instance publishes to a stream on the other, and resumes after the subscriber connection is cut', async () => {
    assert.equal(two.ctx.app.live.kind, 'redis');
    const user = await registerUser(one.ctx);
    const other = await registerUser(one.ctx);
    const s = await SseClient.open(`${two.base}/api/v1/stream`, bearer(user));
    const o = await SseClient.open(`${two.base}/api/v1/stream`, bearer(other));
    const item = backlog.add(user.id, notice(user.id));
    await one.ctx.app.live.publish(user.id, item);
    await s.until(() => s.events.length === 1, 'the item through Redis');
    assert.equal(s.events[0]!.id, item.id);

    // Cut this test's subscriber connection only (its name carries the random channel): others share this Redis.
    const admin = new Redis(REDIS_URL);
    try {
      const list = (await admin.client('LIST')) as string;
      const ids = list.split('\n').filter((l) => l.includes(`name=${channel}_sub`)).map((l) => /id=(\d+)/.exec(l)![1]!);
      assert.ok(ids.length >= 1, 'the subscriber connection is named after its channel');
      for (const id of ids) await admin.client('KILL', 'ID', id);
    } finally {
      admin.disconnect();
    }
    const missed = backlog.add(user.id, notice(user.id, 'While away'));
    await one.ctx.app.live.publish(user.id, missed);
    await s.until(() => s.events.length === 2, 'the item published around the cut', 10_000);
    assert.equal(s.events[1]!.id, missed.id);
    await s.until(() => two.ctx.logs.some((l) => l.msg === 'live bus (Redis) subscriber reconnected'), 'the reconnect log line');

    const after = backlog.add(user.id, notice(user.id, 'After'));
    await one.ctx.app.live.publish(user.id, after);
    await s.until(() => s.events.length === 3, 'an item after the reconnect');
    assert.deepEqual(s.ids(), [item.id, missed.id, after.id]);
    assert.deepEqual(o.ids(), [], "another person's stream received none of it");
    s.close();
    o.close();
  });
});

describe('live stream over rediss:// (TLS, self-signed certificate)', () => {
  it('publishes and receives through a TLS-only Redis, as Heroku Redis presents one', async () => {
    const redis = await startTlsRedis();
    const run = await start({ env: { REDIS_URL: redis.url, LIVE_CHANNEL: `kn_live_tls_${randomBytes(4).toString('hex')}` } });
    try {
      assert.equal(run.ctx.app.live.kind, 'redis');
      const user = await registerUser(run.ctx);
      const s = await SseClient.open(`${run.base}/api/v1/stream`, bearer(user));
      const item = notice(user.id);
      await run.ctx.app.live.publish(user.id, item);
      await s.until(() => s.events.length === 1, 'the item over TLS');
      assert.equal(s.events[0]!.id, item.id);
      s.close();
    } finally {
      await run.ctx.close();
      await redis.stop();
    }
  });
});

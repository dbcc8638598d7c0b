import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { TestUser } from '../support/app.js';
import { type Action, Load, sleep, tally } from '../support/load.js';
import { createOrder, png, submitOrder } from '../support/orders.js';
import { type PrivateRedis, startPrivateRedis } from '../support/private-redis.js';
import { recordResults } from '../support/results.js';
import { type Stack, startStack } from '../support/stack.js';
import { LIMITS } from '../../src/plugins/rate-limit.js';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Spawned, spawnNode } from '../support/process.js';
import { SseClient } from '../support/sse.js';

/**
 * Several dynos (issue 18): two web processes and the worker (src/worker.ts, WORKER_IN_PROCESS=false on the web
 * processes) share one PostgreSQL, one Redis and one S3 store, as Heroku's web and worker dynos do. Whatever one
 * process promises must hold across all: a user's rate limit is counted once, a retried request with the same
 * Idempotency-Key makes one order whichever process each attempt reaches, automatic assignment balances
 * technicians as a single process does, a live event reaches a stream on whichever web process it is open on
 * (Redis pub/sub) before and after a restart, and a process restarted in the middle of a mixed load loses
 * nothing it answered 2xx.
 */
describe('several dynos: two web processes on one PostgreSQL, Redis and S3 store', () => {
  let redis: PrivateRedis;
  let stack: Stack;
  let worker: Spawned;
  const workerDir = mkdtempSync(path.join(os.tmpdir(), 'kn-worker-'));
  const figures: Record<string, unknown> = {};

  before(async () => {
    redis = await startPrivateRedis();
    stack = await startStack({ servers: 2, env: { REDIS_URL: redis.url, RATE_LIMIT_ENABLED: 'true', WORKER_IN_PROCESS: 'false', WORKER_POLL_INTERVAL_MS: '500' } });
    worker = spawnNode(['src/worker.ts'], { ...stack.env, ENVIRONMENT: 'development', DATA_DIR: workerDir, LOG_LEVEL: 'warn' });
  });
  after(async () => {
    recordResults('dynos', figures);
    worker?.child.kill('SIGKILL');
    await stack?.close();
    await redis?.stop();
    rmSync(workerDir, { recursive: true, force: true });
  });

  let liveOrder: { id: string; customer: TestUser; tech: TestUser } | undefined;

  /** A message from `from` on `orderId` through process `via`; `to`'s stream on another process must show it. */
  async function liveAcross(via: number, streamOn: number, from: { auth: Record<string, string> }, to: { token: string }, orderId: string) {
    const stream = await SseClient.open(`${stack.servers[streamOn]!.url}/api/v1/stream`, { authorization: `Bearer ${to.token}` });
    try {
      assert.equal(stream.status, 200);
      await stream.until(() => stream.retry !== undefined, 'the stream to open');
      const text = `Live across dynos ${Math.random()}`;
      const sent = await on(via).app.inject({ method: 'POST', url: `/api/v1/orders/${orderId}/messages`, headers: from.auth, payload: { text } });
      assert.equal(sent.statusCode, 201, sent.body);
      const t0 = Date.now();
      await stream.until(() => stream.events.some((e) => e.data.includes(text)), `the message on process ${streamOn}'s stream`, 15_000);
      return Date.now() - t0;
    } finally {
      stream.close();
    }
  }

  const on = (i: number) => stack.client(i);
  const techs = new Map<string, TestUser>();
  const registerTech = async (name: string) => {
    const tech = await stack.register('nail_technician', name);
    techs.set(tech.id, tech);
    return tech;
  };

  it("counts a user's rate limit once across both processes", async () => {
    const user = await stack.register('customer', 'Rita');
    const statuses: number[] = [];
    // One more than the budget, alternating processes, a few at a time as a browser would send them.
    for (let i = 0; i < LIMITS.authenticated + 1; i += 4) {
      const batch = Array.from({ length: Math.min(4, LIMITS.authenticated + 1 - i) }, (_, j) =>
        on((i + j) % 2).app.inject({ method: 'GET', url: '/api/v1/users/me', headers: user.auth }),
      );
      statuses.push(...(await Promise.all(batch)).map((r) => r.statusCode));
    }
    const counts = tally(statuses.map((status) => ({ action: 'me', started: 0, ms: 0, status })));
    // Registration spent one request of the budget on the first process.
    assert.deepEqual(counts, { 200: LIMITS.authenticated - 1, 429: 2 }, JSON.stringify(counts));
    figures.rate_limit = counts;
  });

  it('makes one order of concurrent retries with one Idempotency-Key, whichever process each reaches', async () => {
    const customer = await stack.register('customer', 'Ida');
    const image = await png(120, 120, 7);
    const headers = { 'idempotency-key': `retry-${randomUUID()}` };
    const answers = await Promise.all([0, 1, 0, 1].map((i) => submitOrder(on(i), customer, { image, headers })));
    const created = answers.filter((r) => r.statusCode === 201).map((r) => r.json().data.id as string);
    const others = answers.filter((r) => r.statusCode !== 201);
    // A retry that overlaps the first attempt is told so (409); one that comes after replays its answer.
    assert.ok(others.every((r) => r.statusCode === 409 && r.json().error.code === 'IDEMPOTENCY_REQUEST_IN_PROGRESS'), others.map((r) => r.body).join('\n'));
    assert.equal(new Set(created).size, 1, `one order (${created.join(', ')})`);
    const rows = await stack.pg.query<{ n: number }>('select count(*)::int as n from orders where customer_id = $1', [customer.id]);
    assert.deepEqual(rows, [{ n: 1 }]);
  });

  it('assigns concurrent submissions through both processes to the least-loaded technicians, evenly', async () => {
    await registerTech('Tam');
    await registerTech('Toni');
    const fresh = await stack.pg.query<{ technician_id: string | null; n: number }>(
      `select technician_id, count(*)::int as n from orders where status not in ('delivered', 'rejected') group by 1`,
    );
    const customers = await Promise.all([0, 1, 2, 3].map((i) => stack.register('customer', `Asha ${i}`)));
    const image = await png(120, 120, 3);
    // Three submissions each per customer (under the upload budget), half through each process, all at once.
    const made = await Promise.all(customers.flatMap((c, i) => [0, 1, 2].map((k) => createOrder(on((i + k) % 2), c, { image }))));
    const load = await stack.pg.query<{ technician_id: string; n: number }>(
      `select technician_id, count(*)::int as n from orders where id = any($1::uuid[]) group by 1`,
      [made.map((o) => o.id)],
    );
    const before = new Map(fresh.map((r) => [r.technician_id, r.n]));
    const totals = load.map((r) => (before.get(r.technician_id) ?? 0) + r.n);
    assert.equal(made.filter((o) => !o.technician_id).length, 0, 'every order assigned');
    assert.ok(Math.max(...totals) - Math.min(...totals) <= 1, `open orders per technician stay within one of each other: ${JSON.stringify(load)} on top of ${JSON.stringify(fresh)}`);
  });

  it('carries live events from one web process to a stream on the other, through the worker', async () => {
    const customer = await stack.register('customer', 'Liv');
    const order = await createOrder(on(0), customer, { image: await png(120, 120, 9) });
    const tech = techs.get(order.technician_id)!;
    // The technician writes through process 0; the customer listens on process 1.
    figures.live_ms = await liveAcross(0, 1, tech, customer, order.id);
    liveOrder = { id: order.id, customer, tech };
  });

  it('loses nothing answered 2xx when one process restarts under a mixed load', async (t) => {
    await registerTech('Tess');
    const customers = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => stack.register('customer', `Load ${i}`)));
    const orders = new Map<string, string>();
    for (const c of customers) orders.set(c.id, (await createOrder(on(0), c)).id);
    const image = await png(120, 120, 5);
    const written = { orders: [] as string[], messages: [] as string[] };
    const any = () => customers[Math.floor(Math.random() * customers.length)]!;
    const refusals: string[] = [];
    const seen = (res: { statusCode: number; body: string }) => {
      if (res.statusCode === 503) refusals.push(String(JSON.parse(res.body).error?.code));
      return res.statusCode;
    };
    // Like the router: every kind of request to either process (named `…@1` for the one restarted).
    const kinds = (i: number): Action[] => [
      {
        name: `post a message@${i}`,
        weight: 5,
        run: async () => {
          const c = any();
          const res = await on(i).app.inject({ method: 'POST', url: `/api/v1/orders/${orders.get(c.id)}/messages`, headers: c.auth, payload: { text: 'Any news?' } });
          if (res.statusCode === 201) written.messages.push(res.json().data.id);
          return seen(res);
        },
      },
      {
        // Weight 2: at 1 the ~6 expected submissions of a run fell to 2 in a CI run (a Poisson draw, not a fault).
        name: `submit an order@${i}`,
        weight: 2,
        run: async () => {
          const res = await submitOrder(on(i), any(), { image });
          if (res.statusCode === 201) written.orders.push(res.json().data.id);
          return seen(res);
        },
      },
      { name: `list orders@${i}`, weight: 3, run: async () => seen(await on(i).app.inject({ method: 'GET', url: '/api/v1/orders?limit=5', headers: any().auth })) },
      { name: `browse the gallery@${i}`, weight: 1, run: async () => seen(await on(i).app.inject({ method: 'GET', url: '/api/v1/designs' })) },
    ];
    const actions = [...kinds(0), ...kinds(1)];
    const load = new Load(actions).openLoop(8);
    await sleep(3000);
    const restarting = Date.now();
    const { exitCode } = await stack.restartServer(1);
    const restarted = Date.now();
    await sleep(3000);
    await load.stop();

    assert.equal(exitCode, 0, 'the restarted process shut down cleanly');
    const statuses = tally(load.outcomes);
    // A request to the restarting process is refused (503 while it closes, then no connection; a keep-alive
    // socket can be closed under a request sent at that instant); any other answer is a bug, and so is a rate
    // limit: 6 users stay far under their budget however the two processes count.
    const wrong = Object.keys(statuses).filter((s) => /^\d+$/.test(s) && !['200', '201', '503'].includes(s));
    assert.deepEqual(wrong, [], JSON.stringify(statuses));
    // Unanswered requests went to the process being restarted, while it restarted (give or take the second a
    // request takes to be sent on this busy machine); a 503 anywhere says
    // "busy, retry" (a cold process under this machine's load sheds some), never that something broke.
    const unanswered = load.outcomes.filter((o) => o.status === undefined);
    assert.deepEqual(unanswered.filter((o) => o.started < restarting - 1000 || o.started > restarted + 1000 || !o.action.endsWith('@1')), [], 'connections refused only by the restarting process');
    assert.deepEqual(refusals.filter((code) => code !== 'SERVICE_UNAVAILABLE'), [], `503s: ${refusals.join(', ')}`);
    const messages = await stack.pg.query<{ id: string }>('select id from messages where id = any($1::uuid[])', [written.messages]);
    const placed = await stack.pg.query<{ id: string }>('select id from orders where id = any($1::uuid[])', [written.orders]);
    assert.equal(messages.length, written.messages.length, 'every 201 message is stored');
    assert.equal(placed.length, written.orders.length, 'every 201 order is stored');
    // A floor, not an expectation: it only guards that the checks above had writes to check. A run sends ~75
    // requests, ~27 messages and ~11 orders expected (binomial draws); a CI run answered 20 and 16, which an
    // earlier floor of 21 messages refused. These floors are several standard deviations under the draws.
    assert.ok(written.messages.length >= 5 && written.orders.length >= 1, `writes happened (${written.messages.length} messages, ${written.orders.length} orders; ${JSON.stringify(statuses)})`);
    assert.deepEqual(await stack.violations(), []);
    // The restarted process serves streams and sends events like the other.
    figures.live_after_restart_ms = [
      await liveAcross(1, 0, liveOrder!.tech, liveOrder!.customer, liveOrder!.id),
      await liveAcross(0, 1, liveOrder!.customer, liveOrder!.tech, liveOrder!.id),
    ];
    figures.restart = { requests: load.outcomes.length, statuses, restart_ms: restarted - restarting, refusals, acknowledged_writes: written.messages.length + written.orders.length };
    t.diagnostic(JSON.stringify(figures.restart));
  });
});

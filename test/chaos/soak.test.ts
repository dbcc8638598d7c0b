import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestUser } from '../support/app.js';
import type { ApiResponse } from '../support/http.js';
import { type Action, Load, sleep, tally } from '../support/load.js';
import { createOrder, png, put, submitOrder } from '../support/orders.js';
import { recordResults } from '../support/results.js';
import { type Stack, startStack } from '../support/stack.js';

/**
 * Soak: SOAK_SECONDS (default 300) of mixed traffic at SOAK_RATE requests a second (default 10)
 * against two server processes sharing one private database and one s3rver: browsing, uploads,
 * reviews, revisions, payments, production steps, messages and comments, plus a few requests meant
 * to be refused. Every answer must be the one the action expects, each process's resident memory must
 * stay flat after warm-up (median of the last quarter within 10 % of the first quarter), and at the
 * end every order answered 201 exists in the status the traffic left it in, with the invariants held.
 */

const SECONDS = Number(process.env.SOAK_SECONDS ?? 300);
const RATE = Number(process.env.SOAK_RATE ?? 10);
// Measured over 600 s: RSS climbs for about two minutes (code and caches warming, the heap settling),
// then holds within ~1 %. Warm-up is 40 % of the run, at least a minute.
const WARM_UP_MS = Math.max(60_000, SECONDS * 400);
const SAMPLE_MS = 5000;

type Status = 'under_review' | 'rejected' | 'accepted' | 'paid' | 'in_production' | 'shipped' | 'delivered';

interface Tracked {
  id: string;
  designId: string;
  customer: TestUser;
  tech: TestUser;
  status: Status;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

describe(`soak: ${SECONDS} s at ${RATE} requests/s on two processes`, () => {
  let stack: Stack;
  let load: Load;
  const figures: Record<string, unknown> = {};

  before(async () => {
    stack = await startStack({ servers: 2 });
  });
  after(async () => {
    await load?.stop();
    recordResults('soak', figures);
    await stack?.close();
  });

  it('answers every request as expected, keeps memory flat and accounts for every order', async (t) => {
    const techs = [await stack.register('nail_technician', 'Tia'), await stack.register('nail_technician', 'Ted')];
    const customers: TestUser[] = [];
    for (let i = 0; i < 6; i++) customers.push(await stack.register('customer', `Customer ${i}`));
    const images = await Promise.all([1, 2, 3, 4, 5].map((seed) => png(120, 120, seed)));
    const orders = new Map<string, Tracked>();
    const busy = new Set<string>();
    const publicDesigns: string[] = [];
    const written = { messages: 0, comments: 0 };
    const unexpected: string[] = [];
    let turn = 0;
    const client = () => stack.client(turn++ % 2);
    const any = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];
    const techById = (id: string) => techs.find((x) => x.id === id)!;

    const track = (data: { id: string; design_id: string; technician_id: string }, customer: TestUser) =>
      orders.set(data.id, { id: data.id, designId: data.design_id, customer, tech: techById(data.technician_id), status: 'under_review' });
    for (const c of customers) {
      const order = await createOrder(client(), c, { description: `Starter set of ${c.name}`, image: any(images) });
      track(order, c);
      const shared = await put(client(), c, `/api/v1/designs/${order.design_id}/visibility`, { is_public: true });
      assert.equal(shared.statusCode, 200);
      publicDesigns.push(order.design_id);
    }

    const expect = (name: string, res: ApiResponse, ...statuses: number[]) => {
      if (!statuses.includes(res.statusCode)) unexpected.push(`${name}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      return res.statusCode;
    };
    /** Runs `act` on an order in `status` that no other action holds; a read when there is none. */
    const onOrder = async (statuses: Status[], act: (o: Tracked) => Promise<number>) => {
      const candidates = [...orders.values()].filter((o) => statuses.includes(o.status) && !busy.has(o.id));
      const order = any(candidates);
      if (!order) return browse();
      busy.add(order.id);
      try {
        return await act(order);
      } finally {
        busy.delete(order.id);
      }
    };
    const browse = async () =>
      expect('browse', await client().app.inject({ method: 'GET', url: `/api/v1/designs?sort=${any(['-published_at', '-reuse_count', '-comment_count'])}` }), 200);
    const step = (order: Tracked, to: Status, user: TestUser, url: string, payload: unknown, name: string) =>
      put(client(), user, url, payload).then((res) => {
        if (res.statusCode === 200) order.status = to;
        return expect(name, res, 200);
      });

    const actions: Action[] = [
      { name: 'browse the gallery', weight: 4, run: browse },
      { name: 'open a design', weight: 2, run: async () => expect('design', await client().app.inject({ method: 'GET', url: `/api/v1/designs/${any(publicDesigns)}` }), 200) },
      { name: 'read comments', weight: 1, run: async () => expect('comments', await client().app.inject({ method: 'GET', url: `/api/v1/designs/${any(publicDesigns)}/comments` }), 200) },
      {
        name: 'submit an order',
        weight: 2,
        run: async () => {
          const customer = any(customers)!;
          const res = await submitOrder(client(), customer, { image: any(images), quantity: 1 + Math.floor(Math.random() * 3) });
          if (res.statusCode === 201) track(res.json().data, customer);
          return expect('submit', res, 201);
        },
      },
      {
        name: 'review',
        weight: 2,
        run: () =>
          onOrder(['under_review'], (o) =>
            Math.random() < 0.7
              ? step(o, 'accepted', o.tech, `/api/v1/orders/${o.id}/review`, { action: 'accept', complexity_multiplier: 1.25 }, 'accept')
              : step(o, 'rejected', o.tech, `/api/v1/orders/${o.id}/review`, { action: 'reject', feedback: 'Sharper lines, please' }, 'reject'),
          ),
      },
      { name: 'revise', weight: 1, run: () => onOrder(['rejected'], (o) => step(o, 'under_review', o.customer, `/api/v1/orders/${o.id}/design`, { description: 'Sharper lines now' }, 'revise')) },
      { name: 'record payment', weight: 1, run: () => onOrder(['accepted'], (o) => step(o, 'paid', o.tech, `/api/v1/orders/${o.id}/payment`, { payment_status: 'paid' }, 'pay')) },
      {
        name: 'move forward',
        weight: 2,
        run: () =>
          onOrder(['paid', 'in_production', 'shipped'], (o) => {
            const url = `/api/v1/orders/${o.id}/status`;
            if (o.status === 'paid') return step(o, 'in_production', o.tech, url, { status: 'in_production' }, 'production');
            if (o.status === 'in_production') return step(o, 'shipped', o.tech, url, { status: 'shipped', carrier: 'USPS', tracking_number: '9400 1000' }, 'ship');
            return step(o, 'delivered', o.customer, url, { status: 'delivered' }, 'deliver');
          }),
      },
      {
        name: 'message',
        weight: 3,
        run: () =>
          onOrder(['under_review', 'rejected', 'accepted', 'paid', 'in_production', 'shipped', 'delivered'], async (o) => {
            const from = Math.random() < 0.5 ? o.customer : o.tech;
            const res = await client().app.inject({ method: 'POST', url: `/api/v1/orders/${o.id}/messages`, headers: from.auth, payload: { text: 'How is it going?' } });
            if (res.statusCode === 201) written.messages++;
            return expect('message', res, 201);
          }),
      },
      {
        name: 'comment',
        weight: 1,
        run: async () => {
          const res = await client().app.inject({ method: 'POST', url: `/api/v1/designs/${any(publicDesigns)}/comments`, headers: any(customers)!.auth, payload: { text: 'Gorgeous' } });
          if (res.statusCode === 201) written.comments++;
          return expect('comment', res, 201);
        },
      },
      {
        name: 'list orders',
        weight: 2,
        run: async () => expect('list', await client().app.inject({ method: 'GET', url: '/api/v1/orders?limit=20', headers: any([...customers, ...techs])!.auth }), 200),
      },
      {
        name: 'read an order',
        weight: 2,
        run: () => onOrder(['under_review', 'rejected', 'accepted', 'paid', 'in_production', 'shipped', 'delivered'], async (o) =>
          expect('read', await client().app.inject({ method: 'GET', url: `/api/v1/orders/${o.id}`, headers: o.customer.auth }), 200),
        ),
      },
      {
        name: "peek at another customer's order (refused)",
        weight: 0.5,
        run: () =>
          onOrder(['under_review', 'accepted', 'delivered'], async (o) => {
            const other = customers.find((c) => c.id !== o.customer.id)!;
            return expect('peek', await client().app.inject({ method: 'GET', url: `/api/v1/orders/${o.id}`, headers: other.auth }), 404);
          }),
      },
      {
        name: 'skip a step (refused)',
        weight: 0.5,
        run: () => onOrder(['under_review'], async (o) => expect('skip', await put(client(), o.tech, `/api/v1/orders/${o.id}/status`, { status: 'shipped' }), 422)),
      },
    ];

    const rss: Array<{ at: number; kb: number[] }> = [];
    const started = Date.now();
    const sampler = setInterval(() => rss.push({ at: Date.now() - started, kb: stack.servers.map((s) => s.rssKb()) }), SAMPLE_MS);
    load = new Load(actions).openLoop(RATE, 40);
    try {
      await sleep(SECONDS * 1000);
    } finally {
      clearInterval(sampler);
      await load.stop();
    }

    // Every answer as expected: 2xx for the work, 404 and 422 for the requests meant to be refused.
    assert.deepEqual(unexpected.slice(0, 10), [], `${unexpected.length} unexpected answers`);
    assert.deepEqual(tally(load.outcomes.filter((o) => o.status === undefined)), {}, 'no request failed without an answer');
    const requests = load.outcomes.length;
    assert.ok(requests >= SECONDS * RATE * 0.8, `the rate held (${requests} requests, ${load.skipped} ticks skipped)`);

    // Memory: after warm-up, the last quarter's median within 10 % of the first quarter's.
    const settled = rss.filter((s) => s.at >= WARM_UP_MS);
    assert.ok(settled.length >= 4, `enough memory samples after warm-up (${settled.length})`);
    const quarter = Math.max(1, Math.floor(settled.length / 4));
    const memory = stack.servers.map((_, i) => {
      const first = median(settled.slice(0, quarter).map((s) => s.kb[i]!));
      const last = median(settled.slice(-quarter).map((s) => s.kb[i]!));
      return {
        rss_mb_after_warm_up: Math.round(first / 1024),
        rss_mb_at_end: Math.round(last / 1024),
        rss_mb_max: Math.round(Math.max(...rss.map((s) => s.kb[i]!)) / 1024),
        growth_pct: Math.round((last / first - 1) * 1000) / 10,
      };
    });
    for (const [i, m] of memory.entries()) assert.ok(m.growth_pct <= 10, `process ${i + 1} grew ${m.growth_pct} % after warm-up: ${JSON.stringify(m)}`);

    // Every order accounted for, in the status the traffic left it in.
    const rows = await stack.pg.query<{ id: string; status: string; payment_status: string }>('select id, status, payment_status from orders');
    assert.equal(rows.length, orders.size, 'exactly the orders answered 201 exist');
    const inDb = new Map(rows.map((r) => [r.id, r.status === 'accepted' && r.payment_status === 'paid' ? 'paid' : r.status]));
    const mismatched = [...orders.values()].filter((o) => inDb.get(o.id) !== o.status).map((o) => `${o.id}: ${inDb.get(o.id)} ≠ ${o.status}`);
    assert.deepEqual(mismatched, [], 'every order is where the traffic left it');
    const [counts] = await stack.pg.query<{ messages: number; comments: number }>('select (select count(*)::int from messages) as messages, (select count(*)::int from comments) as comments');
    assert.deepEqual(counts, { messages: written.messages, comments: written.comments });
    assert.deepEqual(await stack.violations(), []);

    Object.assign(figures, {
      duration_s: SECONDS,
      target_rate_per_s: RATE,
      processes: stack.servers.length,
      requests,
      statuses: tally(load.outcomes),
      unexpected: unexpected.length,
      orders: orders.size,
      orders_by_status: [...orders.values()].reduce<Record<string, number>>((acc, o) => ({ ...acc, [o.status]: (acc[o.status] ?? 0) + 1 }), {}),
      messages: written.messages,
      comments: written.comments,
      p95_ms: Math.round([...load.outcomes].map((o) => o.ms).sort((a, b) => a - b)[Math.floor(requests * 0.95)] ?? 0),
      memory,
    });
    t.diagnostic(JSON.stringify(figures));
    t.diagnostic(`RSS MB every 30 s: ${JSON.stringify(rss.filter((_, i) => i % 6 === 5).map((s) => s.kb.map((kb) => Math.round(kb / 1024))))}`);
  });
});

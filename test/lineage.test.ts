import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { invariantViolations } from './support/invariants.js';
import { advanceOrder, createOrder, put } from './support/orders.js';
import { rows } from './support/store.js';
import { sql } from '../src/db/orm.js';
import { createDesignsRepository } from '../src/modules/designs/designs.repository.js';
import { lineageCounter } from '../src/modules/designs/lineage.js';
import { createOrdersRepository } from '../src/modules/orders/orders.repository.js';
import { PAYMENT_MOVES, createWorkflow } from '../src/modules/orders/workflow.js';

/**
 * Lineage (issue 19): reuses and reuses of reuses keep their chain back to the original design; paid
 * orders count once on every design of the chain (ordered_count), by hand or through Stripe's move.
 */

interface DesignOut {
  id: string;
  ordered_count: number;
  reuse_count: number;
  root_design_id: string | null;
  parent_design_id: string | null;
  rating_count: number;
  rating_average: number | null;
}

describe('lineage', () => {
  let ctx: TestContext;
  let tech: TestUser;
  let owner: TestUser;
  let fan: TestUser;
  let fan2: TestUser;
  /** The original, a reuse of it (fan's), and a reuse of that reuse (fan2's): all public. */
  let d0: string;
  let d1: string;
  let d2: string;
  let r1: string;
  let r2: string;

  before(async () => {
    ctx = await buildTestApp();
    tech = await registerUser(ctx, 'nail_technician', 'Tia Tech');
    owner = await registerUser(ctx, 'customer', 'Olivia Owner');
    fan = await registerUser(ctx, 'customer', 'Fay Fan');
    fan2 = await registerUser(ctx, 'customer', 'Gus Second');
    d0 = await publish(owner, (await createOrder(ctx, owner, { description: 'Original galaxy french' })).design_id);
    const first = await reuse(fan, d0);
    r1 = first.id;
    d1 = await publish(fan, first.design_id);
    const second = await reuse(fan2, d1);
    r2 = second.id;
    d2 = await publish(fan2, second.design_id);
  });
  after(() => ctx.close());

  async function publish(user: TestUser, designId: string): Promise<string> {
    const res = await put(ctx, user, `/api/v1/designs/${designId}/visibility`, { is_public: true });
    assert.equal(res.statusCode, 200, res.body);
    return designId;
  }

  async function reuse(user: TestUser, designId: string): Promise<{ id: string; design_id: string }> {
    const res = await ctx.app.inject({ method: 'POST', url: '/api/v1/orders', headers: user.auth, payload: { source_design_id: designId, quantity: 1 } });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().data;
  }

  async function design(id: string): Promise<DesignOut> {
    const res = await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${id}` });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().data;
  }

  const counts = async () => [(await design(d0)).ordered_count, (await design(d1)).ordered_count, (await design(d2)).ordered_count];
  const payByHand = (orderId: string, status: 'paid' | 'unpaid') => put(ctx, tech, `/api/v1/orders/${orderId}/payment`, { payment_status: status });

  it('keeps the chain of a reuse of a reuse back to the original', async () => {
    const [original, reused, reusedAgain] = [await design(d0), await design(d1), await design(d2)];
    assert.deepEqual([original.root_design_id, original.parent_design_id], [null, null], 'an original has no lineage');
    assert.deepEqual([reused.root_design_id, reused.parent_design_id], [d0, d0]);
    assert.deepEqual([reusedAgain.root_design_id, reusedAgain.parent_design_id], [d0, d1], 'the root is the original, not the design reused');
    const [stored] = await rows<{ ancestor_ids: string[] | string }>(ctx.database.handle.db, `select ancestor_ids from designs where id = '${d2}'`);
    const ancestors = typeof stored!.ancestor_ids === 'string' ? stored!.ancestor_ids.replace(/[{}]/g, '').split(',') : stored!.ancestor_ids;
    assert.deepEqual(ancestors, [d0, d1]);
    assert.deepEqual(await counts(), [0, 0, 0], 'nothing is paid yet');
  });

  it('counts a paid order once on every design of its chain, and takes a manual payment back when set to unpaid', async () => {
    await advanceOrder(ctx, tech, r2, 'accepted');
    assert.equal((await payByHand(r2, 'paid')).statusCode, 200);
    assert.deepEqual(await counts(), [1, 1, 0], 'the reuse of a reuse counts for its parent and the original, not for its own design');
    assert.equal((await payByHand(r2, 'paid')).statusCode, 200, 'recorded as paid again');
    assert.deepEqual(await counts(), [1, 1, 0], 'the same order never counts twice');

    await advanceOrder(ctx, tech, r1, 'paid');
    assert.deepEqual(await counts(), [2, 1, 0]);

    assert.equal((await payByHand(r2, 'unpaid')).statusCode, 200);
    assert.deepEqual(await counts(), [1, 0, 0], 'set back to unpaid: no longer counted');
    assert.equal((await payByHand(r2, 'unpaid')).statusCode, 200);
    assert.deepEqual(await counts(), [1, 0, 0], 'unpaid twice takes back once');
    assert.equal((await payByHand(r2, 'paid')).statusCode, 200);
    assert.deepEqual(await counts(), [2, 1, 0]);
    assert.deepEqual(await invariantViolations(ctx.database.handle.db), []);
  });

  it('counts an order paid through Stripe (the pay_online move) in the payment’s transaction, once', async () => {
    const order = await reuse(owner, d2);
    await advanceOrder(ctx, tech, order.id, 'accepted');
    const db = ctx.database.handle.db;
    const workflow = createWorkflow({ db, orders: createOrdersRepository(db) });
    workflow.subscribe(lineageCounter(createDesignsRepository(db)), PAYMENT_MOVES);
    const before = await counts();
    await workflow.perform('pay_online', null, order.id, { reference: 'pi_lineage_1', amountCents: 3750, currency: 'usd' });
    assert.deepEqual(await counts(), [before[0]! + 1, before[1]! + 1, before[2]! + 1], 'a reuse of the reuse of a reuse: once on all three');
    await assert.rejects(workflow.perform('pay_online', null, order.id, { reference: 'pi_lineage_2', amountCents: 3750, currency: 'usd' }), /already paid/);
    assert.deepEqual(await counts(), [before[0]! + 1, before[1]! + 1, before[2]! + 1]);

    // A handler failing after the count rolls the payment and the count back together.
    const failing = createWorkflow({ db, orders: createOrdersRepository(db) });
    failing.subscribe(lineageCounter(createDesignsRepository(db)), PAYMENT_MOVES);
    failing.subscribe(() => {
      throw new Error('the receipt could not be queued');
    });
    const other = await reuse(fan, d2);
    await advanceOrder(ctx, tech, other.id, 'accepted');
    await assert.rejects(failing.perform('pay_online', null, other.id, { reference: 'pi_lineage_3', amountCents: 3750, currency: 'usd' }), /receipt/);
    assert.deepEqual(await counts(), [before[0]! + 1, before[1]! + 1, before[2]! + 1], 'rolled back with the payment');
    const [unpaid] = await rows<{ payment_status: string }>(db, `select payment_status from orders where id = '${other.id}'`);
    assert.equal(unpaid!.payment_status, 'unpaid');
  });

  it('stays exact when several orders of the same chain are paid at the same moment', async () => {
    const buyers = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => registerUser(ctx, 'customer', `Parallel ${i}`)));
    const orders: string[] = [];
    for (const buyer of buyers) {
      const order = await reuse(buyer, d2);
      await advanceOrder(ctx, tech, order.id, 'accepted');
      orders.push(order.id);
    }
    const before = await counts();
    const results = await Promise.all(orders.map((id) => payByHand(id, 'paid')));
    assert.deepEqual(results.map((r) => r.statusCode), orders.map(() => 200), results.map((r) => r.body).join('\n'));
    assert.deepEqual(await counts(), before.map((n) => n + orders.length), 'six paid orders, six on every design of the chain');
    // And back, all at once.
    await Promise.all(orders.slice(0, 3).map((id) => payByHand(id, 'unpaid')));
    assert.deepEqual(await counts(), before.map((n) => n + 3));
    const [check] = await rows<{ wrong: number }>(
      ctx.database.handle.db,
      `select count(*)::int as wrong from designs d where d.ordered_count <>
         (select count(*) from designs x join orders o on o.id = x.order_id where o.payment_status = 'paid' and x.ancestor_ids @> array[d.id])`,
    );
    assert.equal(check!.wrong, 0, 'every counter equals the paid orders down its lineage');
  });

  it('sorts the gallery by what people ordered, without hidden, removed or private designs', async () => {
    const sorted = async () => {
      const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/designs?sort=-ordered_count&limit=100' });
      assert.equal(res.statusCode, 200, res.body);
      return (res.json().data as DesignOut[]).map((d) => [d.id, d.ordered_count] as const);
    };
    const listed = await sorted();
    const counted = listed.map(([, n]) => n);
    assert.deepEqual(counted, [...counted].sort((a, b) => b - a), 'most ordered first');
    assert.deepEqual(listed.slice(0, 3).map(([id]) => id), [d0, d1, d2]);
    assert.equal((await ctx.app.inject({ method: 'GET', url: '/api/v1/designs?sort=-ordered_at' })).statusCode, 400);

    // The fan hides their reuse, a technician hides the original: both leave the most-ordered list; the counts stay.
    assert.equal((await put(ctx, fan, `/api/v1/designs/${d1}/visibility`, { is_public: false })).statusCode, 200);
    await ctx.database.handle.db.execute(sql.raw(`update designs set hidden_at = now() where id = '${d0}'`));
    const ids = (await sorted()).map(([id]) => id);
    assert.ok(!ids.includes(d1) && !ids.includes(d0), 'private and hidden designs are not listed');
    assert.equal(ids[0], d2);
    assert.equal((await ctx.app.inject({ method: 'DELETE', url: `/api/v1/designs/${d2}`, headers: fan2.auth })).statusCode, 204);
    assert.ok(!(await sorted()).some(([id]) => id === d2), 'removed');
    await ctx.database.handle.db.execute(sql.raw(`update designs set hidden_at = null where id = '${d0}'`));
    assert.equal((await put(ctx, fan, `/api/v1/designs/${d1}/visibility`, { is_public: true })).statusCode, 200);
  });

  it('shows the owner which reuses became paid orders: names and dates, never prices or emails', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${d1}/inspiration?limit=100`, headers: fan.auth });
    assert.equal(res.statusCode, 200, res.body);
    const entries = res.json().data as Array<{ user: { id: string; name: string }; order_id: string; created_at: string; paid_at: string | null }>;
    const byFan2 = entries.find((e) => e.order_id === r2)!;
    assert.equal(byFan2.user.name, 'Gus Second');
    assert.ok(byFan2.paid_at && !Number.isNaN(Date.parse(byFan2.paid_at)), 'paid, with its date');
    assert.deepEqual(Object.keys(byFan2).sort(), ['created_at', 'order_id', 'paid_at', 'user']);
    assert.deepEqual(Object.keys(byFan2.user).sort(), ['id', 'name']);
    assert.ok(!/price|cents|amount|email/i.test(res.body), res.body);
    for (const user of [fan2, owner]) assert.ok(!res.body.includes(user.email), 'no email');
    assert.deepEqual(entries.map((e) => e.order_id), [r2], 'its direct reuses only (reuses of d2 count on it but are d2’s inspiration)');

    // d2 was reused by eight customers: one paid online, one whose payment rolled back, six paid by hand and three set back.
    const second = await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${d2}/inspiration?limit=100`, headers: fan2.auth });
    assert.equal(second.statusCode, 200, second.body);
    const reuses = second.json().data as Array<{ paid_at: string | null }>;
    assert.equal(reuses.length, 8);
    const [stored] = await rows<{ n: number }>(ctx.database.handle.db, `select ordered_count as n from designs where id = '${d2}'`);
    assert.equal(reuses.filter((e) => e.paid_at !== null).length, stored!.n, 'the paid ones are those its ordered_count counts (none was reused further)');
    assert.equal(stored!.n, 4);
    assert.equal(reuses.filter((e) => e.paid_at === null).length, 4, 'unpaid reuses show no payment date');
    assert.equal((await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${d1}/inspiration`, headers: owner.auth })).statusCode, 404, 'only its owner');
  });

  it('rates a design over its whole lineage', async () => {
    for (const stage of ['in_production', 'shipped', 'delivered'] as const) {
      const res = await put(ctx, tech, `/api/v1/orders/${r2}/status`, stage === 'shipped' ? { status: stage, carrier: 'USPS', tracking_number: '9400 1' } : { status: stage });
      assert.equal(res.statusCode, 200, res.body);
    }
    assert.equal((await put(ctx, fan2, `/api/v1/orders/${r2}/rating`, { stars: 4 })).statusCode, 200);
    // The reuse of a reuse is made from d1 and, through it, from the original; d2 is its own design.
    assert.deepEqual([(await design(d0)).rating_count, (await design(d1)).rating_count], [1, 1]);
    assert.equal((await design(d0)).rating_average, 4);
    const [own] = await rows<{ n: number }>(ctx.database.handle.db, `select count(*)::int as n from order_ratings r join designs d on d.order_id = r.order_id where d.id = '${d2}'`);
    assert.equal(own!.n, 1, 'd2 is r2’s own design: its own order’s rating');
  });

  it('backfills, from orders alone, the lineage and counts the live code keeps (migration 0009)', async () => {
    const db = ctx.database.handle.db;
    const snapshot = () =>
      rows<{ id: string; a: string; n: number; c: boolean }>(db, `select id, ancestor_ids::text as a, ordered_count as n, counted_as_ordered as c from designs order by id`);
    const live = await snapshot();
    assert.ok(live.some((d) => d.n > 0) && live.some((d) => d.a.includes(',')), 'there are chains and counts to rebuild');
    await db.execute(sql.raw(`update designs set ancestor_ids = '{}', ordered_count = 0, counted_as_ordered = false`));
    const file = readFileSync(path.resolve(import.meta.dirname, '../src/db/migrations/0009_lineage_backfill.sql'), 'utf8');
    for (const statement of file.split('--> statement-breakpoint')) await db.execute(sql.raw(statement));
    assert.deepEqual(await snapshot(), live);
  });
});

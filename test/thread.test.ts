import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { advanceOrder, createOrder, put } from './support/orders.js';

/**
 * One thread per order (issue 16): messages and status events merged oldest first, typed; read markers per
 * participant; unread_count on every order the caller lists or opens.
 */

type Item = { type: 'message' | 'event'; id: string; created_at: string } & Record<string, unknown>;

describe('order threads', () => {
  let ctx: TestContext;
  let customer: TestUser;
  let other: TestUser;
  let tech: TestUser;
  let otherTech: TestUser;
  let unassignedId: string;

  before(async () => {
    ctx = await buildTestApp();
    customer = await registerUser(ctx, 'customer', 'Cara Customer');
    other = await registerUser(ctx, 'customer', 'Olga Other');
    unassignedId = (await createOrder(ctx, customer, { description: 'Submitted before any technician' })).id;
  });
  after(() => ctx.close());

  const thread = (user: TestUser, orderId: string, qs = '') =>
    ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${orderId}/thread${qs ? `?${qs}` : ''}`, headers: user.auth });
  const markRead = (user: TestUser, orderId: string, body?: object) =>
    ctx.app.inject({ method: 'PUT', url: `/api/v1/orders/${orderId}/thread/read`, headers: user.auth, ...(body ? { payload: body } : {}) });
  const say = async (user: TestUser, orderId: string, text: string) => {
    const res = await ctx.app.inject({ method: 'POST', url: `/api/v1/orders/${orderId}/messages`, headers: user.auth, payload: { text } });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().data.id as string;
  };
  /** The order's unread_count for `user`, in the list and in the detail (they must agree). */
  const unread = async (user: TestUser, orderId: string) => {
    const detail = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${orderId}`, headers: user.auth });
    assert.equal(detail.statusCode, 200, detail.body);
    const list = await ctx.app.inject({ method: 'GET', url: '/api/v1/orders?limit=100', headers: user.auth });
    assert.equal(list.statusCode, 200, list.body);
    const listed = (list.json().data as Array<{ id: string; unread_count: number }>).find((o) => o.id === orderId);
    assert.ok(listed, 'the order is in the list');
    assert.equal(listed.unread_count, detail.json().data.unread_count, 'the list and the detail agree');
    return listed.unread_count;
  };
  /** Every item of the thread, page by page. */
  const everything = async (user: TestUser, orderId: string, limit: number) => {
    const items: Item[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 500; pages++) {
      const res = await thread(user, orderId, `limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.ok(body.data.length <= limit);
      items.push(...body.data);
      assert.equal(body.pagination.limit, limit);
      if (!body.pagination.hasNext) {
        assert.equal(body.pagination.nextCursor, null);
        return items;
      }
      assert.equal(body.data.length, limit, 'only the last page is short');
      cursor = body.pagination.nextCursor;
    }
    throw new Error('the cursor never reached the end');
  };

  let orderId: string;

  it('merges messages and status events oldest first, each typed with its fields, without emails or prices', async () => {
    tech = await registerUser(ctx, 'nail_technician', 'Tess Tech');
    otherTech = await registerUser(ctx, 'nail_technician', 'Omar Othertech');
    let order = await createOrder(ctx, customer, { description: 'Thread test: lavender ombré' });
    if (order.technician_id !== tech.id) order = await createOrder(ctx, customer, { description: 'Thread test: lavender ombré' });
    assert.equal(order.technician_id, tech.id, 'auto-assignment alternates between the two technicians');
    orderId = order.id;

    await say(customer, orderId, 'Can you add tiny stars?');
    await advanceOrder(ctx, tech, orderId, 'rejected');
    await say(tech, orderId, 'Send a sharper picture please');
    const revised = await put(ctx, customer, `/api/v1/orders/${orderId}/design`, { description: 'Lavender ombré with tiny stars' });
    assert.equal(revised.statusCode, 200, revised.body);
    await advanceOrder(ctx, tech, orderId, 'shipped');
    await say(customer, orderId, 'Thank you!');

    const res = await thread(customer, orderId);
    assert.equal(res.statusCode, 200, res.body);
    const items = res.json().data as Item[];
    const shape = items.map((i) => (i.type === 'message' ? `message:${i.text}` : `event:${i.kind}`));
    assert.deepEqual(shape, [
      'event:submit',
      'event:auto_assign',
      'message:Can you add tiny stars?',
      'event:reject',
      'message:Send a sharper picture please',
      'event:revise',
      'event:accept',
      'event:record_payment',
      'event:start_production',
      'event:ship',
      'message:Thank you!',
    ]);
    const times = items.map((i) => Date.parse(i.created_at));
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'oldest first');

    const [submit, assign, firstMessage, reject] = items;
    assert.deepEqual(Object.keys(firstMessage!).sort(), ['author', 'created_at', 'id', 'text', 'type']);
    assert.deepEqual(firstMessage!.author, { id: customer.id, name: 'Cara Customer', role: 'customer' });
    assert.deepEqual(submit!.actor, { id: customer.id, name: 'Cara Customer' });
    assert.equal(submit!.from_status, null);
    assert.equal(submit!.to_status, 'submitted');
    assert.equal(assign!.actor, null, 'the service assigned it');
    assert.equal(assign!.to_status, 'under_review');
    assert.deepEqual(reject!.actor, { id: tech.id, name: 'Tess Tech' });
    assert.equal(reject!.feedback, 'More contrast, please');
    assert.equal(reject!.from_status, 'under_review');
    assert.equal(reject!.to_status, 'rejected');
    const ship = items.find((i) => i.kind === 'ship')!;
    assert.equal(ship.carrier, 'USPS');
    assert.equal(ship.tracking_number, '9400 1000');
    assert.equal(items.find((i) => i.kind === 'accept')!.feedback, null);

    for (const user of [customer, tech]) {
      const body = (await thread(user, orderId)).body;
      assert.ok(!body.includes(customer.email) && !body.includes(tech.email), 'no email address');
      assert.ok(!/price|_cents/.test(body), 'no price fields');
    }
    // The technician, who takes part in the conversation, sees the same thread.
    assert.deepEqual(((await thread(tech, orderId)).json().data as Item[]).map((i) => i.id), items.map((i) => i.id));
  });

  it('counts what others added after my marker: marking read zeroes it; their messages and moves raise it, mine do not', async () => {
    // Before any marker everything by someone else is unread: for the customer the system's assignment, the
    // technician's rejection, message and moves; for the technician the customer's submission, messages and revision.
    assert.ok((await unread(customer, orderId)) > 0);
    assert.ok((await unread(tech, orderId)) > 0);

    const marked = await markRead(customer, orderId);
    assert.equal(marked.statusCode, 200, marked.body);
    assert.equal(marked.json().data.order_id, orderId);
    assert.equal(marked.json().data.unread_count, 0);
    assert.ok(Math.abs(Date.parse(marked.json().data.read_at) - Date.now()) < 60_000);
    assert.equal(await unread(customer, orderId), 0);
    assert.equal((await markRead(tech, orderId)).json().data.unread_count, 0);
    assert.equal(await unread(tech, orderId), 0);

    await say(customer, orderId, 'Any news?');
    assert.equal(await unread(customer, orderId), 0, 'my own message is not unread');
    assert.equal(await unread(tech, orderId), 1, 'the other party’s message is');

    await say(tech, orderId, 'Out for delivery');
    assert.equal((await put(ctx, tech, `/api/v1/orders/${orderId}/status`, { status: 'delivered' })).statusCode, 200);
    assert.equal(await unread(customer, orderId), 2, 'a message and a status event by the technician');
    assert.equal(await unread(tech, orderId), 1, 'my own message and move are not unread');

    assert.equal((await markRead(customer, orderId)).json().data.unread_count, 0);
    assert.equal(await unread(customer, orderId), 0);
    assert.equal(await unread(tech, orderId), 1, 'markers are per participant');
  });

  it('moves a marker to an item or a time, only forwards and never past now', async () => {
    const order = await createOrder(ctx, customer, { description: 'Marker test: chrome tips' });
    const techUser = order.technician_id === tech.id ? tech : otherTech;
    const m1 = await say(techUser, order.id, 'one');
    await say(techUser, order.id, 'two');
    await say(techUser, order.id, 'three');
    // Unread for the customer: the assignment (system) and the three messages.
    assert.equal(await unread(customer, order.id), 4);

    const toItem = await markRead(customer, order.id, { item_id: m1 });
    assert.equal(toItem.statusCode, 200, toItem.body);
    const items = (await thread(customer, order.id)).json().data;
    assert.equal(toItem.json().data.unread_count, 2, `read up to and including "one": ${toItem.body} ${JSON.stringify(items)}`);
    assert.equal(await unread(customer, order.id), 2);

    const back = await markRead(customer, order.id, { read_at: '2000-01-01T00:00:00Z' });
    assert.equal(back.statusCode, 200, back.body);
    assert.equal(back.json().data.read_at, toItem.json().data.read_at, 'an earlier point leaves the marker where it is');
    assert.equal(back.json().data.unread_count, 2);

    const future = await markRead(customer, order.id, { read_at: '2999-01-01T00:00:00Z' });
    assert.equal(future.statusCode, 200, future.body);
    assert.ok(Date.parse(future.json().data.read_at) <= Date.now() + 1000, 'never past now');
    assert.equal(future.json().data.unread_count, 0);
    await say(techUser, order.id, 'four');
    assert.equal(await unread(customer, order.id), 1, 'what comes later is unread again');

    const both = await markRead(customer, order.id, { item_id: m1, read_at: '2020-01-01T00:00:00Z' });
    assert.equal(both.statusCode, 400);
    assert.equal(both.json().error.code, 'VALIDATION_ERROR');
    const foreign = await markRead(customer, order.id, { item_id: (await thread(customer, orderId)).json().data[0].id });
    assert.equal(foreign.statusCode, 400, 'an item of another order');
    assert.equal(foreign.json().error.code, 'VALIDATION_ERROR');
    assert.equal((await markRead(customer, order.id, { read_at: 'yesterday' })).statusCode, 400);
    assert.equal((await markRead(customer, order.id, { up_to: 'now' })).statusCode, 400, 'unknown fields are refused');
  });

  it('lets only those who may read the order read its thread: other customer 404, other technician 403', async () => {
    for (const call of [() => thread(other, orderId), () => markRead(other, orderId)]) {
      const res = await call();
      assert.equal(res.statusCode, 404);
      assert.equal(res.json().error.code, 'ORDER_NOT_FOUND');
    }
    for (const call of [() => thread(otherTech, orderId), () => markRead(otherTech, orderId)]) {
      const res = await call();
      assert.equal(res.statusCode, 403);
      assert.equal(res.json().error.code, 'NOT_ASSIGNED');
    }
    assert.equal((await thread(tech, orderId)).statusCode, 200, 'the assigned technician');
    assert.equal((await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${orderId}/thread` })).statusCode, 401);
    const unknown = await thread(customer, '00000000-0000-4000-8000-000000000000');
    assert.equal(unknown.statusCode, 404);
    assert.equal((await thread(customer, 'not-a-uuid')).statusCode, 400);
  });

  it('shows a technician an unassigned order’s events but not its conversation, nor counts its messages', async () => {
    // Submitted before any technician existed (before()), so it is still unassigned.
    await say(customer, unassignedId, 'private words');
    const seen = await thread(otherTech, unassignedId);
    assert.equal(seen.statusCode, 200, seen.body);
    assert.deepEqual((seen.json().data as Item[]).map((i) => `${i.type}:${i.kind ?? ''}`), ['event:submit'], 'events only');
    assert.ok(!seen.body.includes('private words'));
    assert.equal(await unread(otherTech, unassignedId), 1, 'the submission, not the message');
    const own = (await thread(customer, unassignedId)).json().data as Item[];
    assert.ok(own.some((i) => i.type === 'message' && i.text === 'private words'), 'the customer sees their message');
    assert.equal((await markRead(otherTech, unassignedId)).json().data.unread_count, 0);
    assert.equal(await unread(otherTech, unassignedId), 0);
  });

  it('pages through a long thread with a cursor: every item once, in order, whatever the page size', async () => {
    const order = await createOrder(ctx, customer, { description: 'Long thread' });
    const techUser = order.technician_id === tech.id ? tech : otherTech;
    for (let i = 0; i < 60; i++) await say(i % 3 === 0 ? techUser : customer, order.id, `message ${i}`);
    await advanceOrder(ctx, techUser, order.id, 'accepted');
    for (let i = 60; i < 70; i++) await say(customer, order.id, `message ${i}`);

    const whole = await everything(customer, order.id, 100);
    // submit, auto_assign, 60 messages, accept, 10 messages
    assert.equal(whole.length, 73);
    assert.equal(whole.filter((i) => i.type === 'message').length, 70);
    assert.deepEqual(
      whole.filter((i) => i.type === 'message').map((i) => i.text),
      Array.from({ length: 70 }, (_, i) => `message ${i}`),
    );
    assert.equal(whole.at(-11)!.kind, 'accept');
    for (const size of [1, 7, 50]) {
      const paged = await everything(customer, order.id, size);
      assert.deepEqual(paged.map((i) => i.id), whole.map((i) => i.id), `pages of ${size}`);
    }
    const first = await thread(customer, order.id);
    assert.equal(first.json().data.length, 50, 'default page: 50');
    assert.equal(first.json().pagination.hasNext, true);

    // A cursor stays valid as the thread grows: the next page starts right after it.
    const page = (await thread(customer, order.id, 'limit=72')).json();
    await say(techUser, order.id, 'latest');
    const rest = (await thread(customer, order.id, `cursor=${encodeURIComponent(page.pagination.nextCursor)}`)).json();
    assert.deepEqual(rest.data.map((i: Item) => i.text), ['message 69', 'latest']);
    assert.equal(rest.pagination.hasNext, false);
  });

  it('refuses a cursor it did not give and an out-of-range limit with 400', async () => {
    const valid = (await thread(customer, orderId, 'limit=1')).json().pagination.nextCursor as string;
    const decoded = JSON.parse(Buffer.from(valid, 'base64url').toString()) as [string, number, string];
    const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    for (const cursor of [
      'nonsense',
      '!!!',
      forged({ at: decoded[0] }),
      forged([decoded[0], 7, decoded[2]]),
      forged(['2026-13-45T99:00:00.000000Z', 0, decoded[2]]),
      forged([decoded[0], 0, "x' or 1=1 --"]),
      Buffer.from('not json').toString('base64url'),
      'a'.repeat(201),
    ]) {
      const res = await thread(customer, orderId, `cursor=${encodeURIComponent(cursor)}`);
      assert.equal(res.statusCode, 400, `${cursor}: ${res.body}`);
      assert.equal(res.json().error.code, 'VALIDATION_ERROR');
    }
    for (const qs of ['limit=0', 'limit=101', 'limit=x', 'cursor=', 'page=2']) {
      const res = await thread(customer, orderId, qs);
      assert.equal(res.statusCode, 400, qs);
      assert.equal(res.json().error.code, 'VALIDATION_ERROR');
    }
  });
});

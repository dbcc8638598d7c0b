import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { FAKE_STRIPE_ENV, FakeStripe } from './support/fake-stripe.js';
import { multipart, pngPart } from './support/multipart.js';
import { type Operation, documentedOperations, fillPath } from './support/openapi.js';
import { type Stage, advanceOrder, createOrder, png, put } from './support/orders.js';
import { recordResults } from './support/results.js';
import { randomUUID } from 'node:crypto';
import { webhookDeliveries } from '../src/db/schema.js';

/**
 * Who may do what (SPEC §2, and each route's description): every documented operation is called as
 * anonymous, customer A (who owns the resource), customer B, the technician assigned to A's order and
 * another technician. Another customer's resources answer 404 (their existence is not revealed); a
 * technician touching an order assigned to someone else gets 403, since technicians may know every
 * order exists. An operation without a row, or a row without an operation, fails.
 */

const CALLERS = ['anonymous', 'owner', 'other_customer', 'assigned_tech', 'other_tech'] as const;
type Caller = (typeof CALLERS)[number];
type Statuses = [anonymous: number, owner: number, otherCustomer: number, assignedTech: number, otherTech: number];

interface Target {
  params?: Record<string, string>;
  query?: string;
  body?: unknown;
  form?: { payload: Buffer; headers: Record<string, string> };
  /** For lists: the id whose presence in `data[].id` the row's `sees` checks. */
  listed?: string;
}

interface Row {
  op: string;
  on: string;
  expect: Statuses;
  /** Builds what the call acts on: once for the refused callers (who run first), once per caller expected to succeed. */
  target: (w: World) => Promise<Target>;
  /** The call changes nothing that the next caller depends on: one target serves every caller. */
  readOnly?: boolean;
  /** For lists: which callers find `target.listed` in the page. */
  sees?: [boolean, boolean, boolean, boolean, boolean];
  /** A Server-Sent Events stream: an allowed caller's answer is its headers; the stream is then dropped. */
  stream?: boolean;
}

const ALL = (s: number): Statuses => [s, s, s, s, s];
const SIGNED_IN = (s: number): Statuses => [401, s, s, s, s];

class World {
  users!: Record<Exclude<Caller, 'anonymous'>, TestUser>;
  private unassigned: string[] = [];
  private memo = new Map<string, Promise<unknown>>();
  private n = 0;
  constructor(readonly ctx: TestContext) {}

  async init() {
    const owner = await registerUser(this.ctx, 'customer', 'Ada Owner');
    const other = await registerUser(this.ctx, 'customer', 'Bea Other');
    // Orders submitted while no technician exists stay unassigned (status submitted).
    for (let i = 0; i < 6; i++) this.unassigned.push((await createOrder(this.ctx, owner, { description: this.description() })).id);
    const assigned = await registerUser(this.ctx, 'nail_technician', 'Tia Assigned');
    const otherTech = await registerUser(this.ctx, 'nail_technician', 'Ted Other');
    this.users = { owner, other_customer: other, assigned_tech: assigned, other_tech: otherTech };
  }

  description() {
    return `Matrix design ${++this.n} ${Math.random().toString(36).slice(2, 10)}`;
  }

  once<T>(name: string, make: () => Promise<T>): Promise<T> {
    if (!this.memo.has(name)) this.memo.set(name, make());
    return this.memo.get(name) as Promise<T>;
  }

  unassignedOrder(): string {
    const id = this.unassigned.pop();
    if (!id) throw new Error('the pool of unassigned orders is empty: create more in init()');
    return id;
  }

  /** A new order of A, assigned to the assigned technician (auto-assignment alternates), moved to `stage`. */
  async order(stage: Stage = 'under_review'): Promise<{ id: string; design_id: string; image_url: string; description: string }> {
    const { owner, assigned_tech: tech } = this.users;
    for (let attempt = 0; attempt < 4; attempt++) {
      const order = await createOrder(this.ctx, owner, { description: this.description() });
      if (order.technician_id !== tech.id) continue;
      await advanceOrder(this.ctx, tech, order.id, stage);
      return order;
    }
    throw new Error('auto-assignment never picked the assigned technician');
  }

  async design(visibility: 'public' | 'private'): Promise<string> {
    const order = await this.order();
    if (visibility === 'public') {
      const res = await put(this.ctx, this.users.owner, `/api/v1/designs/${order.design_id}/visibility`, { is_public: true });
      assert.equal(res.statusCode, 200, res.body);
    }
    return order.design_id;
  }

  /** A comment of A's on A's shared public design. */
  async comment(): Promise<{ id: string; commentId: string }> {
    const design = await this.sharedPublicDesign();
    const res = await this.ctx.app.inject({ method: 'POST', url: `/api/v1/designs/${design}/comments`, headers: this.users.owner.auth, payload: { text: 'Mine' } });
    assert.equal(res.statusCode, 201, res.body);
    return { id: design, commentId: res.json().data.id };
  }

  sharedComment = () => this.once('comment', () => this.comment());
  sharedOrder = () => this.once('order', () => this.order());
  sharedPublicDesign = () => this.once('public design', () => this.design('public'));
  sharedPrivateDesign = () => this.once('private design', () => this.design('private'));
  sharedUnassigned = () => this.once('unassigned', async () => this.unassignedOrder());

  /** A webhook of the assigned technician's (T1), and one delivery of it. */
  async webhook(): Promise<{ id: string; deliveryId: string }> {
    const res = await this.ctx.app.inject({
      method: 'POST',
      url: '/api/v1/webhooks',
      headers: this.users.assigned_tech.auth,
      payload: { url: 'http://127.0.0.1:9/matrix', event_types: ['order.accepted'] },
    });
    assert.equal(res.statusCode, 201, res.body);
    const id = res.json().data.id as string;
    const [delivery] = await this.ctx.database.handle.db
      .insert(webhookDeliveries)
      .values({ subscriptionId: id, eventId: randomUUID(), eventType: 'order.accepted', payload: {}, nextAttemptAt: null, retryUntil: new Date(), status: 'failed' })
      .returning({ id: webhookDeliveries.id });
    return { id, deliveryId: delivery!.id };
  }

  sharedWebhook = () => this.once('webhook', () => this.webhook());

  /** One of A's in-app notifications (the assignment of A's order), once the in-process worker has written it. */
  sharedNotification = () =>
    this.once('notification', async () => {
      await this.sharedOrder();
      for (let i = 0; i < 150; i++) {
        const res = await this.ctx.app.inject({ method: 'GET', url: '/api/v1/notifications', headers: this.users.owner.auth });
        const first = res.json().data[0] as { id: string } | undefined;
        if (first) return first.id;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('no notification for A within 15 s');
    });
}

const id = (value: string): Target => ({ params: { id: value } });

const ROWS: Row[] = [
  { op: 'GET /api/v1/health', on: 'the service', expect: ALL(200), readOnly: true, target: async () => ({}) },
  { op: 'GET /api/v1/health/live', on: 'the service', expect: ALL(200), readOnly: true, target: async () => ({}) },
  { op: 'POST /api/v1/auth/register', on: 'an existing profile', expect: SIGNED_IN(409), readOnly: true, target: async () => ({}) },
  { op: 'POST /api/v1/users', on: 'an existing profile', expect: SIGNED_IN(409), readOnly: true, target: async () => ({}) },
  { op: 'POST /api/v1/auth/login', on: 'my profile', expect: SIGNED_IN(200), readOnly: true, target: async () => ({}) },
  { op: 'POST /api/v1/auth/logout', on: 'my session', expect: SIGNED_IN(204), readOnly: true, target: async () => ({}) },
  {
    op: 'POST /api/v1/auth/technicians/invite',
    on: 'a new technician',
    expect: [401, 403, 403, 201, 201],
    target: async (w) => ({ body: { email: `invitee-${w.description().split(' ').pop()}@example.com`, name: 'New Tech' } }),
  },
  { op: 'GET /api/v1/users/me', on: 'my profile', expect: SIGNED_IN(200), readOnly: true, target: async () => ({}) },
  { op: 'PUT /api/v1/users/me', on: 'my profile', expect: SIGNED_IN(200), readOnly: true, target: async () => ({ body: { name: 'Same Name' } }) },
  {
    op: 'POST /api/v1/orders',
    on: 'a new upload',
    expect: [401, 201, 201, 403, 403],
    readOnly: true,
    target: async (w) => ({ form: multipart({ description: w.description(), quantity: 1 }, [pngPart(await png(120, 120))]) }),
  },
  {
    op: 'POST /api/v1/orders',
    on: "reuse of A's public design",
    expect: [401, 201, 201, 403, 403],
    readOnly: true,
    target: async (w) => ({ body: { source_design_id: await w.sharedPublicDesign(), quantity: 1 } }),
  },
  {
    op: 'POST /api/v1/orders',
    on: "reuse of A's private design",
    expect: [401, 404, 404, 403, 403],
    readOnly: true,
    target: async (w) => ({ body: { source_design_id: await w.sharedPrivateDesign(), quantity: 1 } }),
  },
  {
    op: 'GET /api/v1/orders',
    on: "A's order assigned to T1",
    expect: SIGNED_IN(200),
    readOnly: true,
    sees: [false, true, false, true, false],
    target: async (w) => {
      const order = await w.sharedOrder();
      return { query: `search=${encodeURIComponent(order.description)}`, listed: order.id };
    },
  },
  {
    op: 'GET /api/v1/orders',
    on: "A's unassigned order",
    expect: SIGNED_IN(200),
    readOnly: true,
    sees: [false, true, false, true, true],
    target: async (w) => ({ query: 'status=submitted&limit=100', listed: await w.sharedUnassigned() }),
  },
  { op: 'GET /api/v1/orders/{id}', on: "A's order assigned to T1", expect: [401, 200, 404, 200, 403], readOnly: true, target: async (w) => id((await w.sharedOrder()).id) },
  { op: 'GET /api/v1/orders/{id}', on: "A's unassigned order", expect: [401, 200, 404, 200, 200], readOnly: true, target: async (w) => id(await w.sharedUnassigned()) },
  { op: 'PUT /api/v1/orders/{id}/assign', on: "A's order assigned to T1", expect: [401, 403, 403, 422, 422], readOnly: true, target: async (w) => ({ ...id((await w.sharedOrder()).id), body: {} }) },
  { op: 'PUT /api/v1/orders/{id}/assign', on: "A's unassigned order", expect: [401, 403, 403, 200, 200], target: async (w) => ({ ...id(w.unassignedOrder()), body: {} }) },
  {
    op: 'PUT /api/v1/orders/{id}/review',
    on: "A's order under review by T1",
    expect: [401, 403, 403, 200, 403],
    target: async (w) => ({ ...id((await w.order()).id), body: { action: 'accept', complexity_multiplier: 2 } }),
  },
  {
    op: 'PUT /api/v1/orders/{id}/review',
    on: "A's unassigned order",
    expect: [401, 403, 403, 422, 422],
    readOnly: true,
    target: async (w) => ({ ...id(await w.sharedUnassigned()), body: { action: 'reject', feedback: 'No' } }),
  },
  {
    op: 'PUT /api/v1/orders/{id}/design',
    on: "A's order rejected by T1",
    expect: [401, 200, 404, 403, 403],
    target: async (w) => ({ ...id((await w.order('rejected')).id), body: { description: 'Revised: more contrast' } }),
  },
  {
    op: 'PUT /api/v1/orders/{id}/payment',
    on: "A's order accepted by T1",
    expect: [401, 403, 403, 200, 403],
    target: async (w) => ({ ...id((await w.order('accepted')).id), body: { payment_status: 'paid' } }),
  },
  {
    op: 'POST /api/v1/orders/{id}/checkout',
    on: "A's accepted, unpaid order",
    expect: [401, 200, 404, 403, 403],
    target: async (w) => id((await w.order('accepted')).id),
  },
  // Stripe's call carries no token: only the signature admits it, so every caller here is refused the same way.
  { op: 'POST /api/v1/payments/stripe/webhook', on: 'an unsigned event', expect: ALL(400), readOnly: true, target: async () => ({ body: { id: 'evt_1', type: 'checkout.session.completed' } }) },
  {
    op: 'PUT /api/v1/orders/{id}/status',
    on: "A's paid order, to in_production",
    expect: [401, 403, 404, 200, 403],
    target: async (w) => ({ ...id((await w.order('paid')).id), body: { status: 'in_production' } }),
  },
  {
    op: 'PUT /api/v1/orders/{id}/status',
    on: "A's shipped order, to delivered",
    expect: [401, 200, 404, 200, 403],
    target: async (w) => ({ ...id((await w.order('shipped')).id), body: { status: 'delivered' } }),
  },
  { op: 'POST /api/v1/orders/{id}/reorder', on: "A's order", expect: [401, 201, 404, 403, 403], readOnly: true, target: async (w) => ({ ...id((await w.sharedOrder()).id), body: {} }) },
  { op: 'GET /api/v1/orders/{id}/messages', on: "A's order assigned to T1", expect: [401, 200, 404, 200, 403], readOnly: true, target: async (w) => id((await w.sharedOrder()).id) },
  { op: 'GET /api/v1/orders/{id}/messages', on: "A's unassigned order", expect: [401, 200, 404, 403, 403], readOnly: true, target: async (w) => id(await w.sharedUnassigned()) },
  {
    op: 'POST /api/v1/orders/{id}/messages',
    on: "A's order assigned to T1",
    expect: [401, 201, 404, 201, 403],
    readOnly: true,
    target: async (w) => ({ ...id((await w.sharedOrder()).id), body: { text: 'When will it ship?' } }),
  },
  {
    op: 'POST /api/v1/orders/{id}/messages',
    on: "A's unassigned order",
    expect: [401, 201, 404, 403, 403],
    readOnly: true,
    target: async (w) => ({ ...id(await w.sharedUnassigned()), body: { text: 'Anyone there?' } }),
  },
  // The thread: whoever may read the order (as GET /orders/{id}); on an unassigned order a technician sees its events only.
  { op: 'GET /api/v1/orders/{id}/thread', on: "A's order assigned to T1", expect: [401, 200, 404, 200, 403], readOnly: true, target: async (w) => id((await w.sharedOrder()).id) },
  { op: 'GET /api/v1/orders/{id}/thread', on: "A's unassigned order", expect: [401, 200, 404, 200, 200], readOnly: true, target: async (w) => id(await w.sharedUnassigned()) },
  { op: 'PUT /api/v1/orders/{id}/thread/read', on: "A's order assigned to T1", expect: [401, 200, 404, 200, 403], readOnly: true, target: async (w) => id((await w.sharedOrder()).id) },
  { op: 'PUT /api/v1/orders/{id}/thread/read', on: "A's unassigned order", expect: [401, 200, 404, 200, 200], readOnly: true, target: async (w) => id(await w.sharedUnassigned()) },
  { op: 'GET /api/v1/designs', on: "A's public design", expect: ALL(200), readOnly: true, sees: [true, true, true, true, true], target: async (w) => ({ query: 'limit=100', listed: await w.sharedPublicDesign() }) },
  { op: 'GET /api/v1/designs', on: "A's private design", expect: ALL(200), readOnly: true, sees: [false, false, false, false, false], target: async (w) => ({ query: 'limit=100', listed: await w.sharedPrivateDesign() }) },
  {
    op: 'GET /api/v1/designs',
    on: "A's public design, most ordered first",
    expect: ALL(200),
    readOnly: true,
    sees: [true, true, true, true, true],
    target: async (w) => ({ query: 'limit=100&sort=-ordered_count', listed: await w.sharedPublicDesign() }),
  },
  {
    op: 'GET /api/v1/designs',
    on: "A's private design, most ordered first",
    expect: ALL(200),
    readOnly: true,
    sees: [false, false, false, false, false],
    target: async (w) => ({ query: 'limit=100&sort=-ordered_count', listed: await w.sharedPrivateDesign() }),
  },
  { op: 'GET /api/v1/designs/{id}', on: "A's public design", expect: ALL(200), readOnly: true, target: async (w) => id(await w.sharedPublicDesign()) },
  { op: 'GET /api/v1/designs/{id}', on: "A's private design", expect: [404, 200, 404, 404, 404], readOnly: true, target: async (w) => id(await w.sharedPrivateDesign()) },
  { op: 'DELETE /api/v1/designs/{id}', on: "A's design", expect: [401, 204, 404, 403, 403], target: async (w) => id(await w.design('public')) },
  {
    op: 'PUT /api/v1/designs/{id}/visibility',
    on: "A's private design",
    expect: [401, 200, 404, 403, 403],
    target: async (w) => ({ ...id(await w.design('private')), body: { is_public: true } }),
  },
  { op: 'GET /api/v1/designs/{id}/inspiration', on: "A's public design", expect: [401, 200, 404, 403, 403], readOnly: true, target: async (w) => id(await w.sharedPublicDesign()) },
  { op: 'PUT /api/v1/designs/{id}/favourite', on: "A's public design", expect: [401, 200, 200, 403, 403], readOnly: true, target: async (w) => id(await w.sharedPublicDesign()) },
  { op: 'PUT /api/v1/designs/{id}/favourite', on: "A's private design", expect: [401, 404, 404, 403, 403], readOnly: true, target: async (w) => id(await w.sharedPrivateDesign()) },
  { op: 'DELETE /api/v1/designs/{id}/favourite', on: "A's public design", expect: [401, 204, 204, 403, 403], readOnly: true, target: async (w) => id(await w.sharedPublicDesign()) },
  { op: 'DELETE /api/v1/designs/{id}/favourite', on: "A's private design", expect: [401, 404, 404, 403, 403], readOnly: true, target: async (w) => id(await w.sharedPrivateDesign()) },
  { op: 'GET /api/v1/users/me/favourites', on: 'my favourites', expect: [401, 200, 200, 403, 403], readOnly: true, target: async () => ({}) },
  {
    op: 'PUT /api/v1/designs/{id}/tags',
    on: "A's public design",
    expect: [401, 200, 404, 403, 403],
    readOnly: true,
    target: async (w) => ({ ...id(await w.sharedPublicDesign()), body: { tags: ['matrix', 'chrome'] } }),
  },
  { op: 'GET /api/v1/designs/{id}/comments', on: "A's public design", expect: ALL(200), readOnly: true, target: async (w) => id(await w.sharedPublicDesign()) },
  { op: 'GET /api/v1/designs/{id}/comments', on: "A's private design", expect: ALL(404), readOnly: true, target: async (w) => id(await w.sharedPrivateDesign()) },
  {
    op: 'POST /api/v1/designs/{id}/comments',
    on: "A's public design",
    expect: [401, 201, 201, 403, 403],
    readOnly: true,
    target: async (w) => ({ ...id(await w.sharedPublicDesign()), body: { text: 'Lovely' } }),
  },
  {
    op: 'POST /api/v1/designs/{id}/comments',
    on: "A's private design",
    expect: [401, 404, 404, 403, 403],
    readOnly: true,
    target: async (w) => ({ ...id(await w.sharedPrivateDesign()), body: { text: 'Lovely' } }),
  },
  { op: 'DELETE /api/v1/designs/{id}/comments/{commentId}', on: "A's comment", expect: [401, 204, 404, 403, 403], target: async (w) => ({ params: await w.comment() }) },
  // Fresh items per caller: three reports would hide a shared one.
  { op: 'POST /api/v1/designs/{id}/reports', on: "A's public design", expect: SIGNED_IN(201), target: async (w) => ({ ...id(await w.design('public')), body: { reason: 'spam' } }) },
  { op: 'POST /api/v1/designs/{id}/reports', on: "A's private design", expect: SIGNED_IN(404), readOnly: true, target: async (w) => ({ ...id(await w.sharedPrivateDesign()), body: { reason: 'spam' } }) },
  {
    op: 'POST /api/v1/designs/{id}/comments/{commentId}/reports',
    on: "A's comment",
    expect: SIGNED_IN(201),
    target: async (w) => ({ params: await w.comment(), body: { reason: 'offensive', text: 'Rude' } }),
  },
  { op: 'GET /api/v1/moderation/reports', on: 'the queue', expect: [401, 403, 403, 200, 200], readOnly: true, target: async () => ({}) },
  {
    op: 'PUT /api/v1/moderation/designs/{id}',
    on: "A's public design",
    expect: [401, 403, 403, 200, 200],
    readOnly: true,
    target: async (w) => ({ ...id(await w.sharedPublicDesign()), body: { action: 'restore', note: 'Reviewed' } }),
  },
  {
    op: 'PUT /api/v1/moderation/designs/{id}/comments/{commentId}',
    on: "A's comment",
    expect: [401, 403, 403, 200, 200],
    readOnly: true,
    target: async (w) => ({ params: await w.sharedComment(), body: { action: 'restore', note: 'Reviewed' } }),
  },
  {
    op: 'PUT /api/v1/orders/{id}/rating',
    on: "A's delivered order",
    expect: [401, 200, 404, 403, 403],
    readOnly: true,
    target: async (w) => ({ ...id((await w.once('delivered', () => w.order('delivered'))).id), body: { stars: 5 } }),
  },
  { op: 'PUT /api/v1/orders/{id}/rating', on: "A's order under review", expect: [401, 422, 404, 403, 403], readOnly: true, target: async (w) => ({ ...id((await w.sharedOrder()).id), body: { stars: 5 } }) },
  { op: 'GET /api/v1/users/me/ratings', on: 'my ratings', expect: [401, 403, 403, 200, 200], readOnly: true, target: async () => ({}) },
  { op: 'POST /api/v1/stream/tickets', on: 'my live stream', expect: SIGNED_IN(201), readOnly: true, target: async () => ({}) },
  { op: 'GET /api/v1/stream', on: 'my live stream', expect: SIGNED_IN(200), readOnly: true, stream: true, target: async () => ({}) },
  // Webhooks belong to one technician (T1 here): customers 403, another technician 404 (not revealed).
  {
    op: 'POST /api/v1/webhooks',
    on: 'a new webhook',
    expect: [401, 403, 403, 201, 201],
    readOnly: true,
    target: async () => ({ body: { url: 'http://127.0.0.1:9/hook', event_types: ['order.shipped'] } }),
  },
  { op: 'GET /api/v1/webhooks', on: "T1's webhook", expect: [401, 403, 403, 200, 200], readOnly: true, sees: [false, false, false, true, false], target: async (w) => ({ listed: (await w.sharedWebhook()).id }) },
  { op: 'GET /api/v1/webhooks/{id}', on: "T1's webhook", expect: [401, 403, 403, 200, 404], readOnly: true, target: async (w) => id((await w.sharedWebhook()).id) },
  { op: 'PATCH /api/v1/webhooks/{id}', on: "T1's webhook", expect: [401, 403, 403, 200, 404], readOnly: true, target: async (w) => ({ ...id((await w.sharedWebhook()).id), body: { description: 'Matrix' } }) },
  { op: 'DELETE /api/v1/webhooks/{id}', on: "T1's webhook", expect: [401, 403, 403, 204, 404], target: async (w) => id((await w.webhook()).id) },
  { op: 'POST /api/v1/webhooks/{id}/rotate-secret', on: "T1's webhook", expect: [401, 403, 403, 200, 404], readOnly: true, target: async (w) => ({ ...id((await w.sharedWebhook()).id), body: {} }) },
  { op: 'GET /api/v1/webhooks/{id}/deliveries', on: "T1's webhook", expect: [401, 403, 403, 200, 404], readOnly: true, target: async (w) => id((await w.sharedWebhook()).id) },
  {
    op: 'POST /api/v1/webhooks/{id}/deliveries/{deliveryId}/resend',
    on: "a delivery of T1's webhook",
    expect: [401, 403, 403, 202, 404],
    readOnly: true,
    target: async (w) => {
      const hook = await w.sharedWebhook();
      return { params: { id: hook.id, deliveryId: hook.deliveryId } };
    },
  },
  { op: 'GET /api/v1/notifications', on: 'my notifications', expect: SIGNED_IN(200), readOnly: true, target: async () => ({ query: 'unread=true' }) },
  {
    op: 'PUT /api/v1/notifications/{id}/read',
    on: "A's notification",
    expect: [401, 200, 404, 404, 404],
    readOnly: true,
    target: async (w) => id(await w.sharedNotification()),
  },
  { op: 'POST /api/v1/notifications/read-all', on: 'my notifications', expect: SIGNED_IN(200), readOnly: true, target: async () => ({ body: {} }) },
  { op: 'GET /api/v1/users/me/notifications', on: 'my preferences', expect: SIGNED_IN(200), readOnly: true, target: async () => ({}) },
  {
    op: 'PUT /api/v1/users/me/notifications',
    on: 'my preferences',
    expect: SIGNED_IN(200),
    readOnly: true,
    target: async () => ({ body: { email: { gallery: true } } }),
  },
  {
    op: 'GET /api/v1/files/{key}',
    on: "a signed link to A's image",
    expect: ALL(200),
    readOnly: true,
    target: async (w) => {
      const u = new URL((await w.sharedOrder()).image_url);
      return { params: { key: u.pathname.replace('/api/v1/files/', '') }, query: u.search.slice(1) };
    },
  },
  {
    op: 'GET /api/v1/files/{key}',
    on: "a tampered link to A's image",
    expect: ALL(403),
    readOnly: true,
    target: async (w) => {
      const u = new URL((await w.sharedOrder()).image_url);
      u.searchParams.set('signature', 'x'.repeat(43));
      return { params: { key: u.pathname.replace('/api/v1/files/', '') }, query: u.search.slice(1) };
    },
  },
];

describe('authorization matrix', () => {
  let ctx: TestContext;
  let world: World;
  let operations: Map<string, Operation>;
  let stripe: FakeStripe;

  before(async () => {
    stripe = await FakeStripe.start();
    ctx = await buildTestApp({ env: FAKE_STRIPE_ENV, overrides: { stripe: stripe.endpoint() } });
    world = new World(ctx);
    await world.init();
    operations = new Map((await documentedOperations(ctx.app)).operations.map((o) => [o.key, o]));
  });
  after(async () => {
    await ctx.close();
    await stripe.stop();
  });

  it('has a row for every documented operation and an operation for every row', () => {
    const rowOps = new Set(ROWS.map((r) => r.op));
    assert.deepEqual([...operations.keys()].filter((k) => !rowOps.has(k)), [], 'documented operations without a row');
    assert.deepEqual([...rowOps].filter((k) => !operations.has(k)), [], 'rows without a documented operation');
    recordResults('authorization_matrix', { operations: operations.size, rows: ROWS.length, calls: ROWS.length * CALLERS.length, callers: CALLERS });
  });

  async function call(row: Row, target: Target, caller: Caller) {
    const op = operations.get(row.op);
    assert.ok(op, `${row.op} is not documented`);
    const user = caller === 'anonymous' ? undefined : world.users[caller];
    const headers: Record<string, string> = { ...user?.auth, ...target.form?.headers };
    const url = fillPath(op.path, target.params ?? {}) + (target.query ? `?${target.query}` : '');
    const payload = target.form?.payload ?? (target.body as object | undefined);
    if (row.stream && row.expect[CALLERS.indexOf(caller)] === 200) {
      // Answered when the headers are written; the stream itself never ends, so it is dropped (app.close() ends it).
      const signal = AbortSignal.timeout(60_000);
      const res = await ctx.app.inject({ method: op.method as 'GET', url, headers, payloadAsStream: true, signal });
      if (res.statusCode === 200) assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      res.stream().destroy();
      return Object.assign(res, { json: (): { success: boolean; data?: unknown } => ({ success: true }) });
    }
    return ctx.app.inject({ method: op.method as 'GET', url, headers, payload });
  }

  for (const row of ROWS) {
    it(`${row.op} on ${row.on}`, async () => {
      const actual: Record<string, number> = {};
      const seen: Record<string, boolean> = {};
      const succeeds = (i: number) => row.expect[i]! < 300;
      // Refusals first, all on one target: a refusal must change nothing.
      const order = CALLERS.map((c, i) => [c, i] as const).sort(([, i], [, j]) => Number(succeeds(i)) - Number(succeeds(j)));
      const shared = await row.target(world);
      for (const [caller, i] of order) {
        const target = row.readOnly || !succeeds(i) ? shared : await row.target(world);
        const res = await call(row, target, caller);
        actual[caller] = res.statusCode;
        if (row.sees && res.statusCode === 200) seen[caller] = (res.json().data as Array<{ id: string }>).some((d) => d.id === target.listed);
        if (res.statusCode !== 204 && !res.headers['content-type']?.toString().startsWith('image/')) {
          assert.equal(typeof res.json().success, 'boolean', `${caller}: ${res.body}`);
        }
      }
      const expected = Object.fromEntries(CALLERS.map((c, i) => [c, row.expect[i]]));
      assert.deepEqual(actual, expected);
      if (row.sees) {
        const expectedSeen = Object.fromEntries(CALLERS.filter((c) => c in seen).map((c) => [c, row.sees![CALLERS.indexOf(c)]]));
        assert.deepEqual(seen, expectedSeen, 'who finds the resource in the list');
      }
    });
  }
});

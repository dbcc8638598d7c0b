import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type SQL, sql } from '../src/db/orm.js';
import { EVENT_TYPES, type Category, type EventType, type Notice, type OutboxEvent } from '../src/modules/notifications/events.js';
import { shortOrderNumber } from '../src/modules/orders/orders.domain.js';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { advanceOrder, createOrder, put } from './support/orders.js';
import { rows } from './support/store.js';
import { createPglite } from '../src/db/client.js';
import { webhookAttempts, webhookDeliveries, webhookSubscriptions } from '../src/db/schema.js';
import { NOTIFICATION_RETENTION_DAYS } from '../src/modules/notifications/notifications.domain.js';
import { DELIVERY_RETENTION_DAYS } from '../src/modules/webhooks/webhooks.domain.js';

/**
 * Issue 16's spine: every event is written to the outbox in its change's transaction, and the in-process worker
 * (pg-boss on the test's own database) turns it into in-app notifications and hands each notice to the channel
 * hooks, at least once and never twice.
 */

interface Delivered {
  email: Array<{ notice: Notice; to: { email: string; name: string }; category: Category | null }>;
  live: Notice[];
  /** Successful live deliveries per notice id. */
  liveDone: Map<string, number>;
  webhooks: OutboxEvent[];
  /** Notice ids whose live delivery fails this many more times. */
  failLive: Map<string, number>;
  /** Message texts whose live notices fail twice before they go through. */
  flakyTexts: Set<string>;
}

const ENV = {
  WORKER_POLL_INTERVAL_MS: '500',
  WORKER_RETRY_DELAY_S: '1',
  WORKER_RETRY_LIMIT: '3',
  WORKER_BATCH_SIZE: '5',
};

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function channels(d: Delivered) {
  return {
    email: async (notice: Notice, to: { email: string; name: string }, category: Category | null) => {
      // A mailer's refusal of the recipient (550): not worth retrying.
      if (notice.body.endsWith('undeliverable')) throw Object.assign(new Error('550 no such recipient'), { retryable: false });
      if (notice.body.endsWith('always failing')) throw new Error('SMTP server down');
      d.email.push({ notice, to, category });
    },
    live: async (notice: Notice) => {
      if (d.flakyTexts.has(notice.body.split(': ').slice(1).join(': ')) && !d.failLive.has(notice.id)) d.failLive.set(notice.id, 2);
      const left = d.failLive.get(notice.id) ?? 0;
      if (left > 0) {
        d.failLive.set(notice.id, left - 1);
        throw new Error('live stream down');
      }
      d.live.push(notice);
      d.liveDone.set(notice.id, (d.liveDone.get(notice.id) ?? 0) + 1);
    },
    webhooks: async (event: OutboxEvent) => {
      d.webhooks.push(event);
    },
  };
}

const fresh = (): Delivered => ({ email: [], live: [], liveDone: new Map(), webhooks: [], failLive: new Map(), flakyTexts: new Set() });

const list = async (ctx: TestContext, user: TestUser, qs = '') => {
  const res = await ctx.app.inject({ method: 'GET', url: `/api/v1/notifications${qs}`, headers: user.auth });
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as { data: Array<{ id: string; type: EventType; title: string; body: string; link: string; read: boolean; event_id: string; order: Record<string, unknown> | null }>; pagination: { total: number } };
};

/** Waits until `user` has a notification of `type` matching `match`, and returns it. */
const notified = (ctx: TestContext, user: TestUser, type: EventType, match: (n: { body: string; order: Record<string, unknown> | null; link: string }) => boolean = () => true) =>
  waitFor(`${type} for ${user.name}`, async () => (await list(ctx, user, '?limit=100')).data.find((n) => n.type === type && match(n)));

const post = (ctx: TestContext, user: TestUser, url: string, payload: object) => ctx.app.inject({ method: 'POST', url, headers: user.auth, payload });

describe('notifications', () => {
  let ctx: TestContext;
  let d: Delivered;
  let tech: TestUser;
  let ana: TestUser;
  let bea: TestUser;

  before(async () => {
    d = fresh();
    ctx = await buildTestApp({ env: ENV, overrides: { channels: channels(d) } });
    ana = await registerUser(ctx, 'customer', 'Ana Customer');
    bea = await registerUser(ctx, 'customer', 'Bea Customer');
  });
  after(() => ctx.close());

  it('tells every event of the journey to the right people, never to the one who acted', async () => {
    const worker = ctx.app.notifications.worker!;
    // Submitted while nobody can take it: every technician there is when the worker runs hears of it.
    await worker.stop();
    const pooled = await createOrder(ctx, ana, { description: 'Pooled order' });
    assert.equal(pooled.status, 'submitted');
    tech = await registerUser(ctx, 'nail_technician', 'Tia Tech');
    await worker.start();
    const submitted = await notified(ctx, tech, 'order.submitted');
    assert.equal(submitted.order?.number, shortOrderNumber(pooled.id));
    assert.match(submitted.link, new RegExp(`/orders/${pooled.id}$`));

    assert.equal((await put(ctx, tech, `/api/v1/orders/${pooled.id}/assign`, {})).statusCode, 200);
    await notified(ctx, ana, 'order.assigned', (n) => n.order?.id === pooled.id);
    await advanceOrder(ctx, tech, pooled.id, 'shipped');
    const accepted = await notified(ctx, ana, 'order.accepted', (n) => n.order?.id === pooled.id);
    assert.match(accepted.body, /\$56\.25|\$[\d.,]+/);
    await notified(ctx, ana, 'order.paid', (n) => n.order?.id === pooled.id);
    await notified(ctx, ana, 'order.in_production', (n) => n.order?.id === pooled.id);
    const shipped = await notified(ctx, ana, 'order.shipped', (n) => n.order?.id === pooled.id);
    assert.match(shipped.body, /USPS 9400 1000/);
    assert.equal(shipped.order?.tracking_number, '9400 1000');
    assert.equal((await put(ctx, ana, `/api/v1/orders/${pooled.id}/status`, { status: 'delivered' })).statusCode, 200);
    await notified(ctx, tech, 'order.delivered', (n) => n.order?.id === pooled.id);

    // Auto-assigned at submission: the technician hears "assigned", the customer too (the service acted).
    const second = await createOrder(ctx, ana, { description: 'Second order' });
    assert.equal(second.technician_id, tech.id);
    await notified(ctx, tech, 'order.assigned', (n) => n.order?.id === second.id);
    await notified(ctx, ana, 'order.assigned', (n) => n.order?.id === second.id);
    await advanceOrder(ctx, tech, second.id, 'rejected');
    await notified(ctx, ana, 'order.rejected', (n) => n.order?.id === second.id);
    assert.equal((await put(ctx, ana, `/api/v1/orders/${second.id}/design`, { description: 'Second order, bolder' })).statusCode, 200);
    const revised = await notified(ctx, tech, 'order.revised', (n) => n.order?.id === second.id);
    assert.match(revised.body, /revision 1/);

    assert.equal((await post(ctx, ana, `/api/v1/orders/${second.id}/messages`, { text: 'Is gold foil possible?' })).statusCode, 201);
    const message = await notified(ctx, tech, 'message.created');
    assert.equal(message.body, 'Ana Customer: Is gold foil possible?');
    assert.equal((await post(ctx, tech, `/api/v1/orders/${second.id}/messages`, { text: 'Yes!' })).statusCode, 201);
    await notified(ctx, ana, 'message.created', (n) => n.body === 'Tia Tech: Yes!');

    assert.equal((await put(ctx, ana, `/api/v1/designs/${pooled.design_id}/visibility`, { is_public: true })).statusCode, 200);
    assert.equal((await post(ctx, bea, `/api/v1/designs/${pooled.design_id}/comments`, { text: 'Love it' })).statusCode, 201);
    const comment = await notified(ctx, ana, 'comment.created');
    assert.equal(comment.body, 'Bea Customer: Love it');
    assert.equal(comment.link, `/designs/${pooled.design_id}`);
    const reuse = await post(ctx, bea, '/api/v1/orders', { source_design_id: pooled.design_id, quantity: 1 });
    assert.equal(reuse.statusCode, 201, reuse.body);
    await notified(ctx, ana, 'design.reused', (n) => n.body.startsWith('Bea Customer'));

    const invitee = `invitee-${Date.now()}@example.com`;
    assert.equal((await post(ctx, tech, '/api/v1/auth/technicians/invite', { email: invitee, name: 'Ivy Invitee' })).statusCode, 201);
    const invited = await waitFor('the invitation email', async () => d.email.find((e) => e.notice.type === 'technician.invited'));
    assert.deepEqual(invited.to, { email: invitee, name: 'Ivy Invitee' });
    assert.equal(invited.category, null);
    assert.match(invited.notice.body, /Tia Tech invited you/);

    // Every type reached someone, and nobody was told of what they did themselves.
    const all = [...(await list(ctx, ana, '?limit=100')).data, ...(await list(ctx, tech, '?limit=100')).data, ...(await list(ctx, bea, '?limit=100')).data];
    const types = new Set([...all.map((n) => n.type), ...d.email.map((e) => e.notice.type)]);
    // The worker's own events (a webhook disabled, a ship-by reminder) are not the journey's: their own tests below.
    const fromWorker: EventType[] = ['webhook.disabled', 'order.ship_by_tomorrow'];
    assert.deepEqual(EVENT_TYPES.filter((t) => !types.has(t) && !fromWorker.includes(t)), [], 'every event type produced a notice');
    const tellsActor = await rows<{ n: number }>(
      ctx.database.handle.db,
      'select count(*)::int as n from notifications n join outbox_events e on e.id = n.event_id where e.actor_id = n.recipient_id',
    );
    assert.equal(tellsActor[0]!.n, 0);
    const beas = (await list(ctx, bea, '?limit=100')).data.filter((n) => n.type.startsWith('order.'));
    assert.deepEqual(beas.map((n) => n.order?.id), [reuse.json().data.id], 'Bea hears only of her own order (its assignment)');
    // Emails go to each recipient's own address only.
    for (const e of d.email.filter((x) => x.notice.type !== 'technician.invited')) {
      const owner = [ana, bea, tech].find((u) => u.id === e.notice.recipientId)!;
      assert.equal(e.to.email, owner.email);
    }
    // Webhooks get each event once, with its stable id.
    const ids = d.webhooks.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('tells the customer of a rejection within seconds, with the feedback, and not the technician who rejected', async () => {
    const order = await createOrder(ctx, ana, { description: 'Rejected design' });
    const started = Date.now();
    assert.equal((await put(ctx, tech, `/api/v1/orders/${order.id}/review`, { action: 'reject', feedback: 'Lines too thin to print' })).statusCode, 200);
    const n = await notified(ctx, ana, 'order.rejected', (x) => x.order?.id === order.id);
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    assert.match(n.body, /Lines too thin to print/);
    assert.equal(n.order?.feedback, 'Lines too thin to print');
    assert.equal(n.order?.status, 'rejected');
    assert.equal(n.read, false);
    assert.equal((await list(ctx, tech, '?limit=100')).data.filter((x) => x.type === 'order.rejected' && x.order?.id === order.id).length, 0);
    const me = await ctx.app.inject({ method: 'GET', url: '/api/v1/users/me', headers: ana.auth });
    assert.ok(me.json().data.unread_notifications >= 1);
  });

  it('tells a webhook’s owner it was disabled, in-app and by email whatever the preferences, and no webhook', async () => {
    const webhookId = crypto.randomUUID();
    await ctx.database.handle.db.transaction((tx) =>
      ctx.app.notifications.wiring.notify(
        { type: 'webhook.disabled', actorId: null, data: { webhook_id: webhookId, owner_id: tech.id, reason: 'failing', host: 'hooks.example.com', retry_window: '24 hours' } },
        tx,
      ),
    );
    const n = await notified(ctx, tech, 'webhook.disabled', (x) => x.link === `/webhooks/${webhookId}`);
    assert.match(n.body, /Deliveries to hooks\.example\.com failed for 24 hours/);
    assert.equal(n.order, null);
    const mail = await waitFor('the email', async () => d.email.find((e) => e.notice.id === n.id));
    assert.equal(mail.to.email, tech.email);
    assert.equal(mail.category, null, 'not a category anyone can switch off');
    assert.equal((await list(ctx, ana, '?limit=100')).data.filter((x) => x.type === 'webhook.disabled').length, 0);
  });

  it('removes notifications and events past their retention, and settled webhook deliveries past theirs, in the worker', async () => {
    const db = ctx.database.handle.db;
    const query = async <T>(q: SQL) => ((await db.execute(q)) as unknown as { rows: T[] }).rows;
    const record = (text: string) =>
      db.transaction((tx) =>
        ctx.app.notifications.wiring.notify({ type: 'webhook.disabled', actorId: null, data: { webhook_id: crypto.randomUUID(), owner_id: tech.id, reason: 'gone', host: text } }, tx),
      );
    const [oldEvent, newEvent] = [await record('old.example'), await record('new.example')];
    for (const id of [oldEvent, newEvent]) await waitFor('the notification', async () => (await query(sql`select 1 from notifications where event_id = ${id}`)).length > 0);
    const days = (n: number) => sql.raw(`now() - interval '${n} days'`);
    await db.execute(sql`update notifications set created_at = ${days(NOTIFICATION_RETENTION_DAYS + 1)} where event_id = ${oldEvent}`);
    await db.execute(sql`update outbox_events set occurred_at = ${days(NOTIFICATION_RETENTION_DAYS + 1)} where id = ${oldEvent}`);
    const [sub] = await db
      .insert(webhookSubscriptions)
      .values({ ownerId: tech.id, url: 'http://127.0.0.1:9/hook', eventTypes: ['order.shipped'], secret: 'v1.unused' })
      .returning();
    const delivery = (status: 'delivered' | 'failed' | 'pending', ageDays: number) =>
      db
        .insert(webhookDeliveries)
        .values({ subscriptionId: sub!.id, eventId: crypto.randomUUID(), eventType: 'order.shipped', payload: {}, status, retryUntil: new Date(), updatedAt: new Date(Date.now() - ageDays * 86_400_000) })
        .returning()
        .then(([d]) => d!.id);
    const oldDelivered = await delivery('delivered', DELIVERY_RETENTION_DAYS + 1);
    await db.insert(webhookAttempts).values({ deliveryId: oldDelivered, attemptedAt: new Date(), statusCode: 200, durationMs: 5 });
    const oldFailed = await delivery('failed', DELIVERY_RETENTION_DAYS + 1);
    const oldPending = await delivery('pending', DELIVERY_RETENTION_DAYS + 1);
    const recent = await delivery('delivered', DELIVERY_RETENTION_DAYS - 1);

    await ctx.app.notifications.upkeep!.retention.run();
    const left = async (table: string, column: string, ids: string[]) =>
      (await query<{ id: string }>(sql`select ${sql.raw(column)}::text as id from ${sql.raw(table)} where ${sql.raw(column)}::text in ${ids}`)).map((r) => r.id).sort();
    assert.deepEqual(await left('outbox_events', 'id', [oldEvent, newEvent]), [newEvent]);
    assert.deepEqual(await left('notifications', 'event_id', [oldEvent, newEvent]), [newEvent]);
    assert.deepEqual(await left('webhook_deliveries', 'id', [oldDelivered, oldFailed, oldPending, recent]), [oldPending, recent].sort(), 'a pending delivery is never removed');
    assert.deepEqual(await left('webhook_attempts', 'delivery_id', [oldDelivered]), [], 'attempts go with their delivery');
    assert.ok(ctx.logs.some((l) => l.msg === 'retention: old rows removed'));
  });

  it('tells the technician, once, the day before an accepted order’s ship-by date; nobody else, and not for shipped orders', async () => {
    const db = ctx.database.handle.db;
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const inTwoDays = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);
    const order = async (stage: 'accepted' | 'shipped', shipBy: string) => {
      const o = await createOrder(ctx, ana, { description: `Ship-by ${stage} ${shipBy}` });
      await advanceOrder(ctx, tech, o.id, stage);
      await db.execute(sql`update orders set ship_by = ${shipBy} where id = ${o.id}`);
      return o.id;
    };
    const due = await order('accepted', tomorrow);
    const later = await order('accepted', inTwoDays);
    const shipped = await order('shipped', tomorrow);
    const upkeep = ctx.app.notifications.upkeep!;
    await upkeep.reminders.run();
    await upkeep.reminders.run();
    const n = await notified(ctx, tech, 'order.ship_by_tomorrow', (x) => x.order?.id === due);
    assert.match(n.body, new RegExp(`ship by ${tomorrow}`));
    assert.equal(n.order?.status, 'accepted');
    // The second run and the fan-out had time to add more: exactly one, and none for the others or the customer.
    await new Promise((r) => setTimeout(r, 1500));
    const mine = (await list(ctx, tech, '?limit=100')).data.filter((x) => x.type === 'order.ship_by_tomorrow');
    assert.deepEqual(mine.map((x) => x.order?.id), [due]);
    assert.ok(![later, shipped].includes(mine[0]!.order!.id as string));
    assert.equal((await list(ctx, ana, '?limit=100')).data.filter((x) => x.type === 'order.ship_by_tomorrow').length, 0);
  });

  it('lists unread first, filters unread, marks one or all read, and hides others’ notifications', async () => {
    const page = await list(ctx, ana, '?limit=100');
    const first = page.data[0]!;
    const read = await ctx.app.inject({ method: 'PUT', url: `/api/v1/notifications/${first.id}/read`, headers: ana.auth });
    assert.equal(read.statusCode, 200, read.body);
    assert.equal(read.json().data.read, true);
    const after = await list(ctx, ana, '?limit=100');
    assert.equal(after.data.at(-1)!.id, first.id, 'read ones come after unread ones');
    assert.ok(!(await list(ctx, ana, '?unread=true&limit=100')).data.some((n) => n.id === first.id));
    const theirs = await ctx.app.inject({ method: 'PUT', url: `/api/v1/notifications/${first.id}/read`, headers: bea.auth });
    assert.equal(theirs.statusCode, 404);
    assert.equal(theirs.json().error.code, 'NOTIFICATION_NOT_FOUND');
    const all = await post(ctx, ana, '/api/v1/notifications/read-all', {});
    assert.equal(all.statusCode, 200, all.body);
    assert.equal(all.json().data.updated, after.data.length - 1);
    assert.equal((await list(ctx, ana, '?unread=true')).pagination.total, 0);
    const me = await ctx.app.inject({ method: 'GET', url: '/api/v1/users/me', headers: ana.auth });
    assert.equal(me.json().data.unread_notifications, 0);
    const bad = await ctx.app.inject({ method: 'GET', url: '/api/v1/notifications?unread=maybe', headers: ana.auth });
    assert.equal(bad.statusCode, 400);
  });

  it('stops the email of a switched-off category, never the in-app notification', async () => {
    const get = await ctx.app.inject({ method: 'GET', url: '/api/v1/users/me/notifications', headers: ana.auth });
    assert.deepEqual(get.json().data.email, { order_updates: true, messages: true, gallery: true });
    const set = await ctx.app.inject({ method: 'PUT', url: '/api/v1/users/me/notifications', headers: ana.auth, payload: { email: { order_updates: false } } });
    assert.equal(set.statusCode, 200, set.body);
    assert.deepEqual(set.json().data.email, { order_updates: false, messages: true, gallery: true });
    assert.deepEqual(set.json().data.in_app, { order_updates: true, messages: true, gallery: true });

    const order = await createOrder(ctx, ana, { description: 'Quiet order' });
    await advanceOrder(ctx, tech, order.id, 'accepted');
    const n = await notified(ctx, ana, 'order.accepted', (x) => x.order?.id === order.id);
    assert.equal((await post(ctx, tech, `/api/v1/orders/${order.id}/messages`, { text: 'Price is set' })).statusCode, 201);
    await notified(ctx, ana, 'message.created', (x) => x.body.endsWith('Price is set'));
    await waitFor('the message email', async () => d.email.find((e) => e.notice.recipientId === ana.id && e.notice.body.endsWith('Price is set')));
    assert.ok(!d.email.some((e) => e.notice.id === n.id), 'no email for a switched-off category');
    assert.ok(d.email.some((e) => e.notice.recipientId === tech.id), 'others still get theirs');
    const bad = await ctx.app.inject({ method: 'PUT', url: '/api/v1/users/me/notifications', headers: ana.auth, payload: { email: { sms: true } } });
    assert.equal(bad.statusCode, 400);
  });

  it('retries a failing channel with backoff and delivers it once, without writing the notification again', async () => {
    d.flakyTexts.add('flaky delivery');
    const order = await createOrder(ctx, ana, { description: 'Flaky order' });
    assert.equal((await post(ctx, ana, `/api/v1/orders/${order.id}/messages`, { text: 'flaky delivery' })).statusCode, 201);
    const n = await notified(ctx, tech, 'message.created', (x) => x.body.endsWith('flaky delivery'));
    await waitFor('the live delivery after two failures', async () => d.liveDone.get(n.id) === 1, 30_000);
    assert.equal(d.failLive.get(n.id), 0, 'failed twice first');
    const retries = ctx.logs.filter((l) => l.msg === 'notification job failed; it will be retried with backoff' && l.queue === 'notify-live');
    assert.ok(retries.length >= 2, 'one log line per retry');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(d.liveDone.get(n.id), 1, 'delivered once');
    const count = await rows<{ n: number }>(ctx.database.handle.db, `select count(*)::int as n from notifications where event_id = '${n.event_id}'`);
    assert.equal(count[0]!.n, 1);
  });

  it('dead-letters a job after its retries, or at once when the channel says retrying is pointless, with a log line', async () => {
    const order = await createOrder(ctx, ana, { description: 'Dead letters' });
    assert.equal((await post(ctx, ana, `/api/v1/orders/${order.id}/messages`, { text: 'undeliverable' })).statusCode, 201);
    assert.equal((await post(ctx, ana, `/api/v1/orders/${order.id}/messages`, { text: 'always failing' })).statusCode, 201);
    const dead = async (text: string) => {
      const found = await rows<{ n: number }>(
        ctx.database.handle.db,
        `select count(*)::int as n from pgboss.job where name = 'notify-dead' and data->'notice'->>'body' like '%${text}'`,
      );
      return found[0]!.n === 1;
    };
    await waitFor('the permanent failure in the dead-letter queue', () => dead('undeliverable'));
    // Three retries at 1–2 s, 2–4 s and 4–8 s.
    await waitFor('the exhausted job in the dead-letter queue', () => dead('always failing'), 40_000);
    const lines = ctx.logs.filter((l) => l.msg === 'notification job dead-lettered to notify-dead' && l.queue === 'notify-email');
    assert.equal(lines.length, 2, 'one line per dead letter');
    const retried = ctx.logs.filter((l) => l.msg === 'notification job failed; it will be retried with backoff' && l.queue === 'notify-email');
    assert.equal(retried.length, 3, 'one line per retry of the failing job, none for the permanent failure');
    // In-app is unaffected.
    await notified(ctx, tech, 'message.created', (x) => x.body.endsWith('undeliverable'));
  });

  it('processes the same event twice into one notification and one delivery per channel', async () => {
    const order = await createOrder(ctx, ana, { description: 'Twice order' });
    assert.equal((await post(ctx, ana, `/api/v1/orders/${order.id}/messages`, { text: 'twice' })).statusCode, 201);
    const n = await notified(ctx, tech, 'message.created', (x) => x.body.endsWith(': twice'));
    await waitFor('live delivery', async () => d.liveDone.get(n.id) === 1);
    const worker = ctx.app.notifications.worker!;
    await worker.fanOut(n.event_id);
    await worker.fanOut(n.event_id);
    await new Promise((r) => setTimeout(r, 1500));
    const count = await rows<{ n: number }>(ctx.database.handle.db, `select count(*)::int as n from notifications where event_id = '${n.event_id}'`);
    assert.equal(count[0]!.n, 1);
    assert.equal(d.liveDone.get(n.id), 1);
    assert.equal(d.webhooks.filter((e) => e.id === n.event_id).length, 1);
  });

  it('leaves no outbox row, job or notification when the change rolls back', async () => {
    const marker = `rollback-${Date.now()}`;
    await assert.rejects(
      ctx.database.handle.db.transaction(async (tx) => {
        await ctx.app.notifications.wiring.notify({ type: 'message.created', actorId: ana.id, data: { marker, text: marker, sender_name: 'Ana' } }, tx);
        throw new Error('the change failed');
      }),
      /the change failed/,
    );
    const outbox = await rows<{ id: string }>(ctx.database.handle.db, `select id from outbox_events where data->>'marker' = '${marker}'`);
    assert.equal(outbox.length, 0);
    const jobs = await ctx.database.handle.db.execute(sql`select count(*)::int as n from pgboss.job where data->>'marker' = ${marker}`);
    assert.equal((jobs as unknown as { rows: Array<{ n: number }> }).rows[0]!.n, 0);
    // A failed request changes nothing either: an order that is not theirs to message.
    const before = (await rows<{ n: number }>(ctx.database.handle.db, 'select count(*)::int as n from outbox_events'))[0]!.n;
    const order = await createOrder(ctx, ana, { description: 'Not yours' });
    const after = (await rows<{ n: number }>(ctx.database.handle.db, 'select count(*)::int as n from outbox_events'))[0]!.n;
    assert.equal((await post(ctx, bea, `/api/v1/orders/${order.id}/messages`, { text: 'hi' })).statusCode, 404);
    assert.equal((await rows<{ n: number }>(ctx.database.handle.db, 'select count(*)::int as n from outbox_events'))[0]!.n, after);
    assert.ok(after > before);
    // Nor does a refused move, though its event is written by the move's own statement: shipping an unpaid order.
    await advanceOrder(ctx, tech, order.id, 'accepted');
    const accepted = (await rows<{ n: number }>(ctx.database.handle.db, `select count(*)::int as n from outbox_events where order_id = '${order.id}'`))[0]!.n;
    const refused = await put(ctx, tech, `/api/v1/orders/${order.id}/status`, { status: 'shipped', carrier: 'UPS', tracking_number: '1Z999' });
    assert.equal(refused.statusCode, 422, refused.body);
    assert.equal((await rows<{ n: number }>(ctx.database.handle.db, `select count(*)::int as n from outbox_events where order_id = '${order.id}'`))[0]!.n, accepted);
    assert.ok(accepted >= 2, 'the submission and the acceptance were told');
  });

  it('queues each event’s fan-out from the worker’s relay, once, and nothing from the request', async () => {
    const worker = ctx.app.notifications.worker!;
    const db = ctx.database.handle.db;
    const order = await createOrder(ctx, ana, { description: 'Relay order' });
    await worker.stop();
    try {
      assert.equal((await post(ctx, ana, `/api/v1/orders/${order.id}/messages`, { text: 'relayed' })).statusCode, 201);
      const [event] = await rows<{ id: string; relayed: boolean }>(
        db,
        `select id, relayed_at is not null as relayed from outbox_events where type = 'message.created' and data->>'text' = 'relayed'`,
      );
      const jobsOf = async (id: string) =>
        (await rows<{ n: number }>(db, `select count(*)::int as n from pgboss.job where name = 'notify-fanout' and id = '${id}'`))[0]!.n;
      assert.equal(event!.relayed, false);
      assert.equal(await jobsOf(event!.id), 0, 'the request wrote the outbox row only');
      // A relay asked for while one runs joins it; one asked for after finds nothing left to queue.
      const [first, joined] = await Promise.all([worker.relay(), worker.relay()]);
      assert.ok((first ?? 0) >= 1 && joined === first);
      assert.equal(await worker.relay(), 0);
      assert.equal(await jobsOf(event!.id), 1);
      assert.equal((await rows<{ relayed: boolean }>(db, `select relayed_at is not null as relayed from outbox_events where id = '${event!.id}'`))[0]!.relayed, true);
    } finally {
      await worker.start();
    }
    await notified(ctx, tech, 'message.created', (x) => x.body.endsWith(': relayed'));
  });

  it('delivers everything once after the worker is stopped mid-batch and started again', async () => {
    const worker = ctx.app.notifications.worker!;
    const order = await createOrder(ctx, ana, { description: 'Busy order' });
    const texts = Array.from({ length: 24 }, (_, i) => `burst ${i}`);
    await worker.stop();
    for (const text of texts) assert.equal((await post(ctx, ana, `/api/v1/orders/${order.id}/messages`, { text })).statusCode, 201);
    await worker.start();
    // Stop as soon as the first of them is written: the worker is in the middle of its batches.
    await waitFor('a first burst notification', async () => (await list(ctx, tech, '?limit=100')).data.some((n) => n.body.includes(': burst ')), 10_000);
    await worker.stop();
    const partial = (await list(ctx, tech, '?limit=100')).data.filter((n) => n.body.includes(': burst ')).length;
    await worker.start();
    const done = await waitFor(
      'every burst notification',
      async () => {
        const got = (await list(ctx, tech, '?limit=100')).data.filter((n) => n.body.includes(': burst '));
        return got.length === texts.length && got.every((n) => d.liveDone.get(n.id) === 1) && got;
      },
      30_000,
    );
    assert.ok(partial >= 1);
    assert.deepEqual(new Set(done.map((n) => n.body.split(': ')[1])), new Set(texts));
    for (const n of done) assert.equal(d.liveDone.get(n.id), 1, 'each live notice delivered once');
  });

  it('documents the routes', async () => {
    const doc = ctx.app.swagger() as unknown as { paths: Record<string, Record<string, { operationId: string }>> };
    assert.equal(doc.paths['/api/v1/notifications']!.get!.operationId, 'listNotifications');
    assert.equal(doc.paths['/api/v1/notifications/{id}/read']!.put!.operationId, 'markNotificationRead');
    assert.equal(doc.paths['/api/v1/notifications/read-all']!.post!.operationId, 'markAllNotificationsRead');
    assert.ok(doc.paths['/api/v1/users/me/notifications']!.get && doc.paths['/api/v1/users/me/notifications']!.put);
  });

  it('leaves the queue to the worker: a development web process whose worker runs apart never migrates or starts pg-boss', async () => {
    const fresh = await createPglite();
    const apart = await buildTestApp({ env: { WORKER_IN_PROCESS: 'false' }, database: { handle: fresh, drop: () => fresh.close() }, overrides: { skipMigrations: false } });
    try {
      const [state] = await rows<{ app: boolean; queue: boolean }>(
        fresh.db,
        `select to_regclass('public.design_tags') is not null as app, exists (select 1 from pg_namespace where nspname = 'pgboss') as queue`,
      );
      assert.deepEqual({ ...state }, { app: true, queue: false }, 'the app migrated, the queue left to the worker');
      assert.equal(apart.app.notifications.worker, null);
      assert.throws(() => apart.app.notifications.wiring.boss, /not started/);
      assert.equal((await apart.app.inject({ method: 'GET', url: '/api/v1/health' })).statusCode, 200, 'and serves');
    } finally {
      await apart.close();
    }
  });
});


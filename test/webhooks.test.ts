import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { and, eq, sql } from '../src/db/orm.js';
import { orders, outboxEvents, webhookSubscriptions } from '../src/db/schema.js';
import type { EventType, OutboxEvent } from '../src/modules/notifications/events.js';
import { isPublicAddress, systemResolve, type Resolve } from '../src/modules/webhooks/url-guard.js';
import { createSecretBox } from '../src/modules/webhooks/secrets.js';
import { nextAttemptAt } from '../src/modules/webhooks/webhooks.domain.js';
import type { SubscriptionView } from '../src/modules/webhooks/webhooks.service.js';
import { wireWebhooks } from '../src/wiring.js';
import { DEPLOYED_ENV, type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import type { Api } from './support/http.js';
import { createOrder } from './support/orders.js';

/** Outgoing webhooks (issue 16): Standard Webhooks signatures, retries, disabling, re-sending, rotation, SSRF and who sees what. */

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  path: string;
}

/** A real HTTP receiver: answers each request with the next scripted status (the last one repeats). */
class Receiver {
  received: Received[] = [];
  private constructor(
    private server: http.Server,
    public statuses: number[],
  ) {}

  static async start(statuses: number[] = [200]): Promise<Receiver> {
    const server = http.createServer();
    const receiver = new Receiver(server, statuses);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        receiver.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), path: req.url ?? '' });
        const status = receiver.statuses.length > 1 ? receiver.statuses.shift()! : receiver.statuses[0]!;
        res.writeHead(status, status >= 300 && status < 400 ? { location: 'http://169.254.169.254/latest/meta-data/' } : {}).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get port() {
    return (this.server.address() as AddressInfo).port;
  }

  url(path = '/hook') {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  stop() {
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const headersOf = (r: Received) => ({
  'webhook-id': String(r.headers['webhook-id']),
  'webhook-timestamp': String(r.headers['webhook-timestamp']),
  'webhook-signature': String(r.headers['webhook-signature']),
});

const verifies = (secret: string, r: Received) => {
  try {
    new Webhook(secret).verify(r.body, headersOf(r));
    return true;
  } catch {
    return false;
  }
};

/** Fake DNS for the names the tests use; everything else goes to the system resolver (localhost included). */
const FAKE_DNS: Record<string, Array<{ address: string; family: 4 | 6 }>> = {
  'hooks.example.com': [{ address: '93.184.216.34', family: 4 }],
  'mixed.example.com': [
    { address: '93.184.216.34', family: 4 },
    { address: '10.1.2.3', family: 4 },
  ],
  'v6private.example.com': [{ address: 'fd00::1', family: 6 }],
  'receiver.test': [{ address: '127.0.0.1', family: 4 }],
};
const fakeResolve: Resolve = async (host) => FAKE_DNS[host] ?? systemResolve(host);

const silent = { info() {}, warn() {}, error() {} };

function event(type: EventType, fields: Partial<OutboxEvent> = {}): OutboxEvent {
  return { id: randomUUID(), type, occurredAt: new Date().toISOString(), actorId: null, orderId: null, designId: null, data: {}, ...fields };
}

/** A clock the worker reads; the tests move it instead of waiting. */
function fakeClock() {
  let now = Date.now();
  return { clock: () => new Date(now), advance: (ms: number) => (now += ms) };
}

describe('webhooks', () => {
  let ctx: TestContext;
  let tech: TestUser;
  let otherTech: TestUser;
  let customer: TestUser;
  let orderId: string;
  let receiver: Receiver;

  before(async () => {
    // The tests drive deliveries themselves on a clock they move: no in-process worker pumping them on real time.
    ctx = await buildTestApp({ env: { WORKER_IN_PROCESS: 'false' }, overrides: { webhooks: { resolve: fakeResolve } } });
    tech = await registerUser(ctx, 'nail_technician', 'Tia Hooks');
    customer = await registerUser(ctx, 'customer', 'Cara Customer');
    // The only technician at submission: auto-assignment gives it to her.
    const order = await createOrder(ctx, customer, { description: 'Webhook test order' });
    assert.equal(order.technician_id, tech.id);
    orderId = order.id;
    otherTech = await registerUser(ctx, 'nail_technician', 'Ted Other');
    receiver = await Receiver.start();
  });
  after(async () => {
    await receiver.stop();
    await ctx.close();
  });

  const create = (user: TestUser, body: Record<string, unknown>, app: Api = ctx.app) =>
    app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: user.auth, payload: body });

  async function subscribe(user: TestUser, url: string, types: EventType[] = ['order.accepted']) {
    const res = await create(user, { url, event_types: types, description: 'test' });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().data as SubscriptionView & { secret: string };
  }

  const deliveries = (user: TestUser, id: string) => ctx.app.inject({ method: 'GET', url: `/api/v1/webhooks/${id}/deliveries`, headers: user.auth });

  function worker(extra: Parameters<typeof wireWebhooks>[2] extends infer D ? Partial<D> : never = {}) {
    return wireWebhooks(ctx.config, ctx.database.handle.db, { log: silent, resolve: fakeResolve, notify: ctx.app.notifications.wiring.notify, ...extra });
  }

  /** What the outbox holds to tell the owner that subscription `id` was disabled (the notification worker fans it out). */
  const toldOwner = async (id: string) =>
    (
      await ctx.database.handle.db
        .select()
        .from(outboxEvents)
        .where(and(eq(outboxEvents.type, 'webhook.disabled'), sql`${outboxEvents.data}->>'webhook_id' = ${id}`))
    ).map((e) => e.data);

  describe('managing subscriptions', () => {
    it('lets a technician create one, shows the secret once, and keeps it sealed at rest and out of the logs', async () => {
      const created = await subscribe(tech, receiver.url(), ['order.accepted', 'message.created']);
      assert.match(created.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
      assert.deepEqual(created.event_types, ['order.accepted', 'message.created']);
      assert.equal(created.enabled, true);

      const got = await ctx.app.inject({ method: 'GET', url: `/api/v1/webhooks/${created.id}`, headers: tech.auth });
      assert.equal(got.statusCode, 200, got.body);
      assert.equal(got.json().data.secret, undefined, 'never shown again');
      const list = await ctx.app.inject({ method: 'GET', url: '/api/v1/webhooks', headers: tech.auth });
      assert.ok(list.json().data.some((w: { id: string }) => w.id === created.id));
      assert.ok(!list.body.includes(created.secret));

      const [row] = await ctx.database.handle.db.select().from(webhookSubscriptions).where(eq(webhookSubscriptions.id, created.id));
      assert.ok(row);
      assert.ok(!row.secret.includes(created.secret.slice(6)), 'the stored value is not the secret');
      assert.match(row.secret, /^v1\./);
      assert.ok(!JSON.stringify(ctx.logs).includes(created.secret.slice(6)), 'no log line carries the secret');
    });

    it('refuses customers (403) and hides one technician’s webhooks from another (404)', async () => {
      const res = await create(customer, { url: receiver.url(), event_types: ['order.accepted'] });
      assert.equal(res.statusCode, 403);
      assert.equal(res.json().error.code, 'FORBIDDEN');

      const mine = await subscribe(tech, receiver.url());
      for (const [method, url, payload] of [
        ['GET', `/api/v1/webhooks/${mine.id}`],
        ['PATCH', `/api/v1/webhooks/${mine.id}`, { enabled: false }],
        ['PATCH', `/api/v1/webhooks/${mine.id}`, { url: 'ftp://nowhere' }],
        ['DELETE', `/api/v1/webhooks/${mine.id}`],
        ['POST', `/api/v1/webhooks/${mine.id}/rotate-secret`, {}],
        ['GET', `/api/v1/webhooks/${mine.id}/deliveries`],
        ['POST', `/api/v1/webhooks/${mine.id}/deliveries/${randomUUID()}/resend`],
      ] as const) {
        const r = await ctx.app.inject({ method, url, headers: otherTech.auth, ...(payload ? { payload } : {}) });
        assert.equal(r.statusCode, 404, `${method} ${url}: ${r.body}`);
        assert.equal(r.json().error.code, 'WEBHOOK_NOT_FOUND');
      }
      const theirs = await ctx.app.inject({ method: 'GET', url: '/api/v1/webhooks?limit=100', headers: otherTech.auth });
      assert.ok(!theirs.json().data.some((w: { id: string }) => w.id === mine.id));
      const still = await ctx.app.inject({ method: 'GET', url: `/api/v1/webhooks/${mine.id}`, headers: tech.auth });
      assert.equal(still.json().data.enabled, true, 'the refused PATCH changed nothing');
    });

    it('accepts only the event types a technician may receive, and changes, disables and deletes', async () => {
      for (const event_types of [[], ['design.reused'], ['order.exploded'], ['order.paid', 'order.paid']]) {
        const r = await create(tech, { url: receiver.url(), event_types });
        assert.equal(r.statusCode, 400, JSON.stringify(event_types));
        assert.equal(r.json().error.code, 'VALIDATION_ERROR');
      }
      const w = await subscribe(tech, receiver.url());
      const patched = await ctx.app.inject({
        method: 'PATCH',
        url: `/api/v1/webhooks/${w.id}`,
        headers: tech.auth,
        payload: { event_types: ['order.shipped'], description: null, enabled: false },
      });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.deepEqual(patched.json().data.event_types, ['order.shipped']);
      assert.equal(patched.json().data.enabled, false);
      assert.equal(patched.json().data.disabled_reason, 'by_owner');
      assert.equal(patched.json().data.description, null);
      const empty = await ctx.app.inject({ method: 'PATCH', url: `/api/v1/webhooks/${w.id}`, headers: tech.auth, payload: {} });
      assert.equal(empty.statusCode, 400);
      const del = await ctx.app.inject({ method: 'DELETE', url: `/api/v1/webhooks/${w.id}`, headers: tech.auth });
      assert.equal(del.statusCode, 204);
      assert.equal((await ctx.app.inject({ method: 'GET', url: `/api/v1/webhooks/${w.id}`, headers: tech.auth })).statusCode, 404);
    });
  });

  describe('delivery', () => {
    it('retries a 500, then delivers once more with the same webhook-id, each attempt signed and logged', async () => {
      const rx = await Receiver.start([500, 200]);
      try {
        const w = await subscribe(tech, rx.url(), ['order.accepted']);
        const { clock, advance } = fakeClock();
        const hooks = worker({ clock });
        const ev = event('order.accepted', { orderId, actorId: tech.id, data: { total_price_cents: 5000, currency: 'USD' } });
        assert.ok((await hooks.enqueue(ev)) >= 1);
        assert.equal(await hooks.enqueue(ev), 0, 'the same event twice queues nothing more');

        const first = await hooks.deliverDue();
        assert.ok(first.retrying >= 1, JSON.stringify(first));
        assert.equal(rx.received.length, 1);
        const failingSince = async () => (await ctx.app.inject({ method: 'GET', url: `/api/v1/webhooks/${w.id}`, headers: tech.auth })).json().data.failing_since;
        assert.equal(await failingSince(), clock().toISOString(), 'failing since the first failed attempt');
        assert.deepEqual(await hooks.deliverDue(), { attempted: 0, delivered: 0, retrying: 0, failed: 0 }, 'not due before its backoff');
        advance(10_000);
        const second = await hooks.deliverDue();
        assert.ok(second.delivered >= 1, JSON.stringify(second));
        assert.equal(rx.received.length, 2);
        assert.equal(await failingSince(), null, 'healthy again after a success');
        advance(24 * 3_600_000);
        await hooks.deliverDue();
        assert.equal(rx.received.length, 2, 'delivered once: never again');

        for (const r of rx.received) {
          assert.equal(r.headers['webhook-id'], ev.id);
          assert.equal(r.headers['content-type'], 'application/json');
          assert.ok(verifies(w.secret, r), 'webhook-signature verifies with the subscription secret');
          const body = new Webhook(w.secret).verify(r.body, headersOf(r)) as { type: string; timestamp: string; data: Record<string, unknown> };
          assert.equal(body.type, 'order.accepted');
          assert.equal(body.timestamp, ev.occurredAt);
          assert.equal(body.data.order_id, orderId);
          assert.equal(body.data.total_price_cents, 5000);
        }
        const forged = { ...rx.received[0]!, body: rx.received[0]!.body.replace('5000', '1') };
        assert.equal(verifies(w.secret, forged), false, 'a changed body does not verify');

        const log = await deliveries(tech, w.id);
        assert.equal(log.statusCode, 200, log.body);
        const [d] = log.json().data;
        assert.equal(d.event_id, ev.id);
        assert.equal(d.status, 'delivered');
        assert.equal(d.attempt_count, 2);
        assert.deepEqual(d.attempts.map((a: { status_code: number }) => a.status_code), [500, 200]);
        assert.ok(d.attempts.every((a: { duration_ms: number }) => Number.isInteger(a.duration_ms)));
      } finally {
        await rx.stop();
      }
    });

    it('sends an event only to the subscriptions whose owner may read it', async () => {
      const rxMine = await Receiver.start();
      const rxOther = await Receiver.start();
      try {
        const types: EventType[] = ['order.accepted', 'order.submitted', 'message.created', 'comment.created', 'technician.invited'];
        await subscribe(tech, rxMine.url(), types);
        await subscribe(otherTech, rxOther.url(), types);
        // An unassigned order: every technician may see it. Auto-assignment always finds one here, so the fixture unassigns it.
        const loose = await createOrder(ctx, customer, { description: 'Nobody has it yet' });
        await ctx.database.handle.db.update(orders).set({ technicianId: null, status: 'submitted' }).where(eq(orders.id, loose.id));
        const shared = await ctx.app.inject({ method: 'PUT', url: `/api/v1/designs/${loose.design_id}/visibility`, headers: customer.auth, payload: { is_public: true } });
        assert.equal(shared.statusCode, 200, shared.body);
        const hooks = worker();
        // An order assigned to `tech`: only her webhooks; so are the messages on it.
        await hooks.enqueue(event('order.accepted', { orderId }));
        await hooks.enqueue(event('message.created', { orderId, actorId: customer.id }));
        // Messages on an unassigned order are the customer's alone; its submission reaches every technician.
        await hooks.enqueue(event('message.created', { orderId: loose.id, actorId: customer.id }));
        await hooks.enqueue(event('order.submitted', { orderId: loose.id, actorId: customer.id }));
        // The invitation only to the technician who sent it.
        await hooks.enqueue(event('technician.invited', { actorId: otherTech.id }));
        // A comment on a public design: public, so every technician; on a design not in the gallery: nobody.
        await hooks.enqueue(event('comment.created', { designId: loose.design_id }));
        await hooks.enqueue(event('comment.created', { designId: randomUUID() }));
        await hooks.deliverDue();
        const typesOf = (rx: Receiver) => rx.received.map((r) => JSON.parse(r.body).type).sort();
        assert.deepEqual(typesOf(rxMine), ['comment.created', 'message.created', 'order.accepted', 'order.submitted']);
        assert.deepEqual(typesOf(rxOther), ['comment.created', 'order.submitted', 'technician.invited']);
      } finally {
        await rxMine.stop();
        await rxOther.stop();
      }
    });

    it('disables a subscription at once on 410 Gone and tells its owner', async () => {
      const rx = await Receiver.start([410]);
      try {
        const w = await subscribe(tech, rx.url(), ['order.shipped']);
        const hooks = worker();
        await hooks.enqueue(event('order.shipped', { orderId }));
        await hooks.deliverDue();
        const got = (await ctx.app.inject({ method: 'GET', url: `/api/v1/webhooks/${w.id}`, headers: tech.auth })).json().data;
        assert.equal(got.enabled, false);
        assert.equal(got.disabled_reason, 'gone');
        assert.deepEqual(await toldOwner(w.id), [{ webhook_id: w.id, owner_id: tech.id, reason: 'gone', host: new URL(rx.url()).host, retry_window: '24 hours' }]);
        const [d] = (await deliveries(tech, w.id)).json().data;
        assert.equal(d.status, 'failed', 'not retried');
        // A disabled subscription gets no new deliveries.
        assert.equal(await hooks.enqueue(event('order.shipped', { orderId })), 0);
      } finally {
        await rx.stop();
      }
    });

    it('backs off for 24 h, then marks the delivery failed, disables the subscription and tells its owner', async () => {
      const rx = await Receiver.start([503]);
      try {
        const w = await subscribe(tech, rx.url(), ['order.delivered']);
        const { clock, advance } = fakeClock();
        const hooks = worker({ clock, random: () => 0.5 });
        await hooks.enqueue(event('order.delivered', { orderId }));
        const gaps: number[] = [];
        let last = clock().getTime();
        // Other tests' subscriptions whose receivers are gone may be disabled along the way; this one is what counts.
        for (let step = 0; step < 400 && (await toldOwner(w.id)).length === 0; step++) {
          const r = await hooks.deliverDue();
          if (r.attempted) {
            gaps.push(clock().getTime() - last);
            last = clock().getTime();
          }
          advance(5 * 60_000);
        }
        assert.deepEqual((await toldOwner(w.id)).map((t) => t.reason), ['failing'], 'told once');
        const got = (await ctx.app.inject({ method: 'GET', url: `/api/v1/webhooks/${w.id}`, headers: tech.auth })).json().data;
        assert.equal(got.enabled, false);
        assert.equal(got.disabled_reason, 'failing');
        const [d] = (await deliveries(tech, w.id)).json().data;
        assert.equal(d.status, 'failed');
        assert.equal(d.attempt_count, 8, 'immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, and at 24 h');
        assert.equal(rx.received.length, 8);
        assert.ok(new Set(rx.received.map((r) => r.headers['webhook-id'])).size === 1);
        // Backoff grows (each gap rounded up to the loop's 5 minutes), until the last attempt at the window's end.
        for (let i = 2; i < gaps.length - 1; i++) assert.ok(gaps[i]! >= gaps[i - 1]!, `gaps ${gaps.join(', ')}`);
        assert.ok(gaps.at(-2)! >= 10 * 3_600_000, `gaps ${gaps.join(', ')}`);
        const hours = gaps.reduce((a, b) => a + b, 0) / 3_600_000;
        assert.ok(hours >= 24 && hours < 24.2, `gave up after ${hours} h`);
      } finally {
        await rx.stop();
      }
    });

    it('re-sends a delivery on request, with the same webhook-id, and refuses unknown deliveries', async () => {
      const rx = await Receiver.start([200]);
      try {
        const w = await subscribe(tech, rx.url(), ['order.paid']);
        const hooks = worker();
        const ev = event('order.paid', { orderId });
        await hooks.enqueue(ev);
        await hooks.deliverDue();
        const [d] = (await deliveries(tech, w.id)).json().data;
        assert.equal(d.status, 'delivered');

        const resend = await ctx.app.inject({ method: 'POST', url: `/api/v1/webhooks/${w.id}/deliveries/${d.id}/resend`, headers: tech.auth });
        assert.equal(resend.statusCode, 202, resend.body);
        assert.equal(resend.json().data.status, 'pending');
        assert.equal(rx.received.length, 1, 'not sent from the request');
        await hooks.deliverDue();
        assert.equal(rx.received.length, 2);
        assert.equal(rx.received[1]!.headers['webhook-id'], ev.id);
        assert.ok(verifies(w.secret, rx.received[1]!));
        const [again] = (await deliveries(tech, w.id)).json().data;
        assert.equal(again.status, 'delivered');
        assert.equal(again.attempts.length, 2);

        const unknown = await ctx.app.inject({ method: 'POST', url: `/api/v1/webhooks/${w.id}/deliveries/${randomUUID()}/resend`, headers: tech.auth });
        assert.equal(unknown.statusCode, 404);
        assert.equal(unknown.json().error.code, 'WEBHOOK_DELIVERY_NOT_FOUND');
        await ctx.app.inject({ method: 'PATCH', url: `/api/v1/webhooks/${w.id}`, headers: tech.auth, payload: { enabled: false } });
        const disabled = await ctx.app.inject({ method: 'POST', url: `/api/v1/webhooks/${w.id}/deliveries/${d.id}/resend`, headers: tech.auth });
        assert.equal(disabled.statusCode, 422);
        assert.equal(disabled.json().error.code, 'WEBHOOK_DISABLED');
      } finally {
        await rx.stop();
      }
    });

    it('signs with the old and the new secret during a rotation’s grace period, then with the new one only', async () => {
      const rx = await Receiver.start([200]);
      try {
        const w = await subscribe(tech, rx.url(), ['order.in_production']);
        const hooks = worker();
        const rotate = (payload: object) => ctx.app.inject({ method: 'POST', url: `/api/v1/webhooks/${w.id}/rotate-secret`, headers: tech.auth, payload });
        const rotated = await ctx.app.inject({ method: 'POST', url: `/api/v1/webhooks/${w.id}/rotate-secret`, headers: tech.auth });
        assert.equal(rotated.statusCode, 200, rotated.body);
        const fresh = rotated.json().data.secret as string;
        assert.notEqual(fresh, w.secret);
        assert.ok(Date.parse(rotated.json().data.previous_secret_expires_at) > Date.now() + 23 * 3_600_000);

        await hooks.enqueue(event('order.in_production', { orderId }));
        await hooks.deliverDue();
        const during = rx.received.at(-1)!;
        assert.equal(String(during.headers['webhook-signature']).split(' ').length, 2);
        assert.ok(verifies(fresh, during), 'the new secret verifies');
        assert.ok(verifies(w.secret, during), 'the old secret still verifies');

        const now = await rotate({ grace_period_seconds: 0 });
        const newest = now.json().data.secret as string;
        assert.equal(now.json().data.previous_secret_expires_at, null);
        await hooks.enqueue(event('order.in_production', { orderId }));
        await hooks.deliverDue();
        const afterwards = rx.received.at(-1)!;
        assert.ok(verifies(newest, afterwards));
        assert.equal(verifies(fresh, afterwards), false, 'the replaced secret no longer signs');
        assert.equal(verifies(w.secret, afterwards), false);
      } finally {
        await rx.stop();
      }
    });

    it('connects to the address it resolved itself, and records redirects and refused connections as failures', async () => {
      const rx = await Receiver.start([302, 200]);
      try {
        // receiver.test exists only in the fake DNS: reaching it proves the socket used the checked address.
        const w = await subscribe(tech, `http://receiver.test:${rx.port}/pinned`, ['order.rejected']);
        const { clock, advance } = fakeClock();
        const hooks = worker({ clock });
        await hooks.enqueue(event('order.rejected', { orderId }));
        await hooks.deliverDue();
        assert.equal(rx.received.length, 1);
        assert.equal(rx.received[0]!.path, '/pinned');
        assert.equal(rx.received[0]!.headers.host, `receiver.test:${rx.port}`);
        let [d] = (await deliveries(tech, w.id)).json().data;
        assert.equal(d.status, 'pending', 'a redirect is not success, and is not followed');
        assert.match(d.attempts[0].error, /redirect .* not followed/);
        advance(10_000);
        await hooks.deliverDue();
        [d] = (await deliveries(tech, w.id)).json().data;
        assert.equal(d.status, 'delivered');

        const closed = await Receiver.start();
        const port = closed.port;
        await closed.stop();
        const dead = await subscribe(tech, `http://127.0.0.1:${port}/`, ['order.revised']);
        await hooks.enqueue(event('order.revised', { orderId }));
        await hooks.deliverDue();
        const [failed] = (await deliveries(tech, dead.id)).json().data;
        assert.equal(failed.attempts[0].status_code, null);
        assert.match(failed.attempts[0].error, /ECONNREFUSED/);
      } finally {
        await rx.stop();
      }
    });

    it('lets concurrent workers share the queue without sending anything twice', async () => {
      const rx = await Receiver.start([200]);
      try {
        await subscribe(tech, rx.url(), ['order.assigned']);
        const ids: string[] = [];
        const a = worker({ batchSize: 5 });
        for (let i = 0; i < 30; i++) {
          const ev = event('order.assigned', { orderId });
          ids.push(ev.id);
          await a.enqueue(ev);
        }
        const b = worker({ batchSize: 5 });
        for (let round = 0; round < 10; round++) await Promise.all([a.deliverDue(), b.deliverDue(), a.deliverDue()]);
        const got = rx.received.map((r) => String(r.headers['webhook-id']));
        assert.equal(got.length, 30, 'each once');
        assert.deepEqual([...new Set(got)].sort(), [...ids].sort());
      } finally {
        await rx.stop();
      }
    });
  });
});

describe('webhooks: SSRF guard in production', () => {
  let ctx: TestContext;
  let app: Api;
  let tech: TestUser;
  const PROD = { ...DEPLOYED_ENV, ENVIRONMENT: 'production', TRUST_PROXY: '1', WEBHOOK_ENCRYPTION_KEYS: randomBytes(32).toString('base64') };

  before(async () => {
    ctx = await buildTestApp({ env: PROD, overrides: { webhooks: { resolve: fakeResolve } } });
    // Production answers HTTPS only: requests arrive through the trusted router over HTTPS.
    app = { inject: (r) => ctx.app.inject({ ...r, headers: { ...r.headers, 'x-forwarded-proto': 'https' } }) };
    tech = await registerUser({ app, auth0: ctx.auth0 }, 'nail_technician');
  });
  after(() => ctx.close());

  const create = (url: string) => app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: tech.auth, payload: { url, event_types: ['order.paid'] } });

  it('refuses http, credentials, private, loopback, link-local, CGNAT, IPv6 ULA and IPv4-mapped targets with a reason', async () => {
    const cases: Array<[string, string]> = [
      ['http://hooks.example.com/x', 'scheme'],
      ['ftp://hooks.example.com/x', 'scheme'],
      ['not a url', 'malformed'],
      ['https://user:pw@hooks.example.com/x', 'credentials'],
      ['https://127.0.0.1/x', 'private_address'],
      ['https://2130706433/x', 'private_address'],
      ['https://localhost/x', 'private_address'],
      ['https://10.0.0.8/x', 'private_address'],
      ['https://172.16.5.4/x', 'private_address'],
      ['https://192.168.1.1/x', 'private_address'],
      ['https://169.254.169.254/latest/meta-data', 'private_address'],
      ['https://100.64.0.1/x', 'private_address'],
      ['https://0.0.0.0/x', 'private_address'],
      ['https://224.0.0.1/x', 'private_address'],
      ['https://[::1]/x', 'private_address'],
      ['https://[fd00::1]/x', 'private_address'],
      ['https://[fe80::1]/x', 'private_address'],
      ['https://[::ffff:127.0.0.1]/x', 'private_address'],
      ['https://[::ffff:10.0.0.1]/x', 'private_address'],
      ['https://mixed.example.com/x', 'private_address'],
      ['https://v6private.example.com/x', 'private_address'],
      ['https://does-not-exist.invalid/x', 'unresolvable'],
    ];
    for (const [url, problem] of cases) {
      const res = await create(url);
      assert.equal(res.statusCode, 422, `${url}: ${res.body}`);
      assert.equal(res.json().error.code, 'WEBHOOK_URL_NOT_ALLOWED', url);
      assert.equal(res.json().error.details.problem, problem, url);
      assert.ok(res.json().error.message.length > 20, 'a message a person can act on');
    }
    const ok = await create('https://hooks.example.com/kendalls');
    assert.equal(ok.statusCode, 201, ok.body);
    const patch = await app.inject({ method: 'PATCH', url: `/api/v1/webhooks/${ok.json().data.id}`, headers: tech.auth, payload: { url: 'https://127.0.0.1/' } });
    assert.equal(patch.statusCode, 422, 'a changed URL is checked too');
  });

  it('checks again at delivery: a host that now resolves inside is never connected to', async () => {
    const created = await create('https://hooks.example.com/rebind');
    assert.equal(created.statusCode, 201, created.body);
    const id = created.json().data.id as string;
    const posted: string[] = [];
    const rebound: Resolve = async (host) => (host === 'hooks.example.com' ? [{ address: '127.0.0.1', family: 4 }] : fakeResolve(host));
    const hooks = wireWebhooks(ctx.config, ctx.database.handle.db, {
      log: silent,
      resolve: rebound,
      post: async (r) => {
        posted.push(r.address);
        return { statusCode: 200, durationMs: 1, error: null };
      },
    });
    const patched = await app.inject({ method: 'PATCH', url: `/api/v1/webhooks/${id}`, headers: tech.auth, payload: { event_types: ['technician.invited'] } });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.equal(await hooks.enqueue(event('technician.invited', { actorId: tech.id })), 1);
    await hooks.deliverDue();
    assert.deepEqual(posted.filter((a) => a === '127.0.0.1'), [], 'no connection to the rebound address');
    const log = await app.inject({ method: 'GET', url: `/api/v1/webhooks/${id}/deliveries`, headers: tech.auth });
    const [d] = log.json().data;
    assert.equal(d.attempts[0].status_code, null);
    assert.match(d.attempts[0].error, /refused: .*127\.0\.0\.1.*not a public/);
  });

  it('answers 503 WEBHOOKS_NOT_CONFIGURED without an encryption key, and saves nothing', async () => {
    const bare = await buildTestApp({ env: { ...DEPLOYED_ENV, ENVIRONMENT: 'production', TRUST_PROXY: '1' }, overrides: { webhooks: { resolve: fakeResolve } } });
    try {
      const api: Api = { inject: (r) => bare.app.inject({ ...r, headers: { ...r.headers, 'x-forwarded-proto': 'https' } }) };
      const t = await registerUser({ app: api, auth0: bare.auth0 }, 'nail_technician');
      const res = await api.inject({ method: 'POST', url: '/api/v1/webhooks', headers: t.auth, payload: { url: 'https://hooks.example.com/x', event_types: ['order.paid'] } });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().error.code, 'WEBHOOKS_NOT_CONFIGURED');
      const list = await api.inject({ method: 'GET', url: '/api/v1/webhooks', headers: t.auth });
      assert.equal(list.json().pagination.total, 0);
    } finally {
      await bare.close();
    }
  });
});

describe('webhooks: pieces', () => {
  it('classifies addresses', () => {
    for (const a of ['93.184.216.34', '8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e']) assert.equal(isPublicAddress(a), true, a);
    for (const a of [
      '127.0.0.1', '127.255.255.254', '10.0.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.64.0.1', '100.127.255.255',
      '0.0.0.0', '224.0.0.251', '255.255.255.255', '192.0.2.1', '198.18.0.1', '::1', '::', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'ff02::1',
      '::ffff:127.0.0.1', '::ffff:8.8.8.8', '::ffff:7f00:1', '64:ff9b::a00:1', '2001:db8::1', '2002:a00:1::1', 'not-an-ip',
    ]) {
      assert.equal(isPublicAddress(a), false, a);
    }
  });

  it('seals secrets bound to their subscription, and opens them with any configured key', () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const sealed = createSecretBox([k1]).seal('whsec_abc', 'sub-1');
    assert.equal(createSecretBox([k2, k1]).open(sealed, 'sub-1'), 'whsec_abc', 'an older key still opens');
    assert.throws(() => createSecretBox([k1]).open(sealed, 'sub-2'), 'bound to its subscription');
    assert.throws(() => createSecretBox([k2]).open(sealed, 'sub-1'), /not configured/);
  });

  it('schedules retries with jitter inside the window, then gives up', () => {
    const start = new Date('2026-01-01T00:00:00Z');
    const deadline = new Date(start.getTime() + 24 * 3_600_000);
    assert.equal(nextAttemptAt(1, start, deadline, undefined, () => 0.5)!.getTime() - start.getTime(), 5_000);
    assert.equal(nextAttemptAt(1, start, deadline, undefined, () => 0)!.getTime() - start.getTime(), 4_000);
    assert.equal(nextAttemptAt(1, start, deadline, undefined, () => 1)!.getTime() - start.getTime(), 6_000);
    assert.equal(nextAttemptAt(6, new Date(start.getTime() + 20 * 3_600_000), deadline, undefined, () => 0.5)!.getTime(), deadline.getTime(), 'clamped to the window');
    assert.equal(nextAttemptAt(7, new Date(start.getTime() + 18 * 3_600_000), deadline)!.getTime(), deadline.getTime(), 'a last attempt at the end');
    assert.equal(nextAttemptAt(8, deadline, deadline), null);
  });
});

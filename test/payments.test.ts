import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eq } from '../src/db/orm.js';
import { checkoutSessions, orderEvents, orders, stripeEvents } from '../src/db/schema.js';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { FAKE_STRIPE_ENV, FakeStripe, signedDelivery, stripeEvent } from './support/fake-stripe.js';
import { advanceOrder, createOrder, put } from './support/orders.js';

/**
 * Stripe Checkout (issue 17) against a local fake of Stripe's API and webhooks signed as Stripe signs them:
 * an order becomes paid only through a verified webhook whose amount matches, once.
 */
describe('payments (Stripe Checkout)', () => {
  let ctx: TestContext;
  let stripe: FakeStripe;
  let customer: TestUser;
  let other: TestUser;
  let tech: TestUser;

  before(async () => {
    stripe = await FakeStripe.start();
    ctx = await buildTestApp({ env: FAKE_STRIPE_ENV, overrides: { stripe: stripe.endpoint() } });
    tech = await registerUser(ctx, 'nail_technician');
    customer = await registerUser(ctx, 'customer');
    other = await registerUser(ctx, 'customer');
  });
  after(async () => {
    await ctx.close();
    await stripe.stop();
  });

  const db = () => ctx.database.handle.db;

  async function acceptedOrder(quantity = 2): Promise<{ id: string; total_price_cents: number; unit_price_cents: number }> {
    const order = await createOrder(ctx, customer, { quantity });
    assert.equal(order.technician_id, tech.id);
    await advanceOrder(ctx, tech, order.id, 'accepted');
    return (await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}`, headers: customer.auth })).json().data;
  }

  const checkout = (orderId: string, user: TestUser = customer) =>
    ctx.app.inject({ method: 'POST', url: `/api/v1/orders/${orderId}/checkout`, headers: user.auth });
  const deliver = (event: unknown, opts?: Parameters<typeof signedDelivery>[1]) => {
    const { payload, headers } = signedDelivery(event, opts);
    return ctx.app.inject({ method: 'POST', url: '/api/v1/payments/stripe/webhook', headers, payload });
  };
  const row = async (id: string) => (await db().select().from(orders).where(eq(orders.id, id)))[0]!;
  const kinds = async (id: string) => (await db().select().from(orderEvents).where(eq(orderEvents.orderId, id)).orderBy(orderEvents.createdAt)).map((e) => e.kind);
  const sessionsOf = (id: string) => db().select().from(checkoutSessions).where(eq(checkoutSessions.orderId, id));
  const sessionFor = (url: string) => stripe.sessions.get(url.split('/').pop()!)!;
  /** The session as Stripe reports it once the customer paid. */
  const paid = (session: Record<string, unknown>) => ({ ...session, status: 'complete', payment_status: 'paid', payment_intent: `pi_${String(session.id).slice(8, 20)}` });

  it('creates a Checkout Session for exactly the order total and reuses it while open', async () => {
    const order = await acceptedOrder(3);
    const before = stripe.creates.length;
    const res = await checkout(order.id);
    assert.equal(res.statusCode, 200, res.body);
    const data = res.json().data as { url: string; expires_at: string };
    assert.match(data.url, /^https:\/\/checkout\.stripe\.com\//);
    assert.ok(new Date(data.expires_at).getTime() > Date.now() + 3600_000);

    assert.equal(stripe.creates.length, before + 1);
    const call = stripe.creates.at(-1)!;
    assert.equal(call.authorization, `Bearer ${FAKE_STRIPE_ENV.STRIPE_SECRET_KEY}`);
    assert.ok(call.idempotencyKey?.includes(order.id) && call.idempotencyKey.includes(String(order.total_price_cents)), call.idempotencyKey);
    const p = call.params;
    assert.equal(p.get('mode'), 'payment');
    assert.equal(p.get('line_items[0][quantity]'), '3');
    assert.equal(Number(p.get('line_items[0][price_data][unit_amount]')) * 3, order.total_price_cents);
    assert.equal(p.get('line_items[0][price_data][unit_amount]'), String(order.unit_price_cents));
    assert.equal(p.get('line_items[0][price_data][currency]'), 'usd');
    assert.ok(p.get('line_items[0][price_data][product_data][description]'));
    assert.equal(p.get('metadata[order_id]'), order.id);
    assert.equal(p.get('client_reference_id'), order.id);
    assert.ok(p.get('success_url')!.startsWith(`${FAKE_STRIPE_ENV.APP_URL}/orders/${order.id}`));
    assert.ok(p.get('cancel_url')!.startsWith(`${FAKE_STRIPE_ENV.APP_URL}/orders/${order.id}`));
    assert.equal(p.get('customer_email'), customer.email);

    const again = await checkout(order.id);
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().data.url, data.url, 'the open session is reused');
    assert.equal(stripe.creates.length, before + 1, 'no second session at Stripe');
    const stored = await sessionsOf(order.id);
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.amountCents, order.total_price_cents);
    assert.equal(stored[0]!.currency, 'USD');
    assert.equal((await row(order.id)).paymentStatus, 'unpaid', 'starting a checkout pays nothing');
  });

  it('marks the order paid on a verified, matching checkout.session.completed, once however often it is delivered', async () => {
    const order = await acceptedOrder();
    const session = sessionFor((await checkout(order.id)).json().data.url);
    const event = stripeEvent('checkout.session.completed', paid(session));

    const res = await deliver(event);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().data, { received: true, outcome: 'paid' });
    const after = await row(order.id);
    assert.equal(after.paymentStatus, 'paid');
    assert.equal(after.paymentMethod, 'stripe');
    assert.equal(after.paymentReference, paid(session).payment_intent);
    assert.ok(after.paidAt instanceof Date);
    assert.equal(after.status, 'accepted');
    assert.deepEqual((await kinds(order.id)).slice(-2), ['accept', 'pay_online'], 'the workflow’s payment event, on the timeline');
    const [payEvent] = await db().select().from(orderEvents).where(eq(orderEvents.kind, 'pay_online'));
    assert.ok(payEvent);
    assert.equal(payEvent.actorId, null, 'Stripe, not a user');
    assert.equal((await sessionsOf(order.id))[0]!.status, 'complete');

    // Replays: the same event again (Stripe re-delivers until it sees a 2xx, and anyone may replay a captured one).
    const events = await kinds(order.id);
    for (let i = 0; i < 2; i++) {
      const replay = await deliver(event);
      assert.equal(replay.statusCode, 200);
      assert.equal(replay.json().data.outcome, 'duplicate');
    }
    assert.deepEqual(await kinds(order.id), events, 'no second state change');
    assert.equal((await db().select().from(stripeEvents).where(eq(stripeEvents.eventId, event.id))).length, 1);

    // The API shows how it was paid; production may start now.
    const shown = (await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}`, headers: customer.auth })).json().data;
    assert.equal(shown.payment_method, 'stripe');
    assert.equal(shown.payment_reference, after.paymentReference);
    assert.equal(shown.paid_at, after.paidAt!.toISOString());
    assert.equal((await put(ctx, tech, `/api/v1/orders/${order.id}/status`, { status: 'in_production' })).statusCode, 200);
    // A paid order offers no new checkout.
    const again = await checkout(order.id);
    assert.equal(again.statusCode, 422);
    assert.equal(again.json().error.code, 'ALREADY_PAID');
  });

  it('counts an order paid through Stripe once on the lineage of the design it reused (issue 19), however often the webhook comes', async () => {
    const source = await createOrder(ctx, other, { description: 'Lineage through Stripe' });
    assert.equal((await put(ctx, other, `/api/v1/designs/${source.design_id}/visibility`, { is_public: true })).statusCode, 200);
    const reuse = await ctx.app.inject({ method: 'POST', url: '/api/v1/orders', headers: customer.auth, payload: { source_design_id: source.design_id, quantity: 1 } });
    assert.equal(reuse.statusCode, 201, reuse.body);
    const orderId = reuse.json().data.id as string;
    await advanceOrder(ctx, tech, orderId, 'accepted');
    const session = sessionFor((await checkout(orderId)).json().data.url);
    const event = stripeEvent('checkout.session.completed', paid(session));
    for (let i = 0; i < 2; i++) assert.equal((await deliver(event)).statusCode, 200);
    const design = (await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${source.design_id}` })).json().data;
    assert.equal(design.ordered_count, 1);
  });

  it('takes events in any order: a delayed payment succeeds before completion is reported; failures after it change nothing', async () => {
    const order = await acceptedOrder();
    const session = sessionFor((await checkout(order.id)).json().data.url);
    const succeeded = await deliver(stripeEvent('checkout.session.async_payment_succeeded', paid(session)));
    assert.equal(succeeded.json().data.outcome, 'paid');
    const events = await kinds(order.id);
    const completed = await deliver(stripeEvent('checkout.session.completed', { ...session, status: 'complete', payment_status: 'unpaid' }));
    assert.equal(completed.statusCode, 200);
    assert.equal(completed.json().data.outcome, 'pending');
    const failed = await deliver(stripeEvent('checkout.session.async_payment_failed', { ...session, status: 'complete', payment_status: 'unpaid' }));
    assert.equal(failed.json().data.outcome, 'ignored');
    const expired = await deliver(stripeEvent('checkout.session.expired', { ...session, status: 'expired' }));
    assert.equal(expired.json().data.outcome, 'ignored');
    assert.deepEqual(await kinds(order.id), events, 'nothing after the payment');
    const after = await row(order.id);
    assert.equal(after.paymentStatus, 'paid');
    assert.equal(after.paymentMethod, 'stripe');
    assert.equal((await sessionsOf(order.id))[0]!.status, 'complete', 'a late expiry does not undo the completion');
  });

  it('records a failed or expired checkout on the timeline, and starts a new session afterwards', async () => {
    const order = await acceptedOrder();
    const first = sessionFor((await checkout(order.id)).json().data.url);
    const failed = await deliver(stripeEvent('checkout.session.async_payment_failed', { ...first, status: 'complete', payment_status: 'unpaid' }));
    assert.equal(failed.json().data.outcome, 'recorded');
    const expired = await deliver(stripeEvent('checkout.session.expired', { ...first, status: 'expired' }));
    assert.equal(expired.json().data.outcome, 'recorded');
    assert.deepEqual((await kinds(order.id)).slice(-2), ['online_payment_failed', 'online_payment_failed']);
    const timeline = (await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}`, headers: customer.auth })).json().data.events;
    assert.match(timeline.at(-1).note, /expired/);
    assert.match(timeline.at(-2).note, /failed/);
    assert.equal((await row(order.id)).paymentStatus, 'unpaid');

    const keysBefore = stripe.creates.map((c) => c.idempotencyKey);
    const next = await checkout(order.id);
    assert.equal(next.statusCode, 200);
    assert.notEqual(sessionFor(next.json().data.url).id, first.id, 'a new session');
    assert.ok(!keysBefore.includes(stripe.creates.at(-1)!.idempotencyKey), 'under a new idempotency key');
  });

  it('refuses forged, tampered, unsigned and stale deliveries with 400, changing nothing', async () => {
    const order = await acceptedOrder();
    const session = sessionFor((await checkout(order.id)).json().data.url);
    const event = stripeEvent('checkout.session.completed', paid(session));
    const attempts = [
      await deliver(event, { secret: 'whsec_not_the_endpoint_secret' }),
      await deliver(event, { timestamp: Math.floor(Date.now() / 1000) - 600 }),
      await ctx.app.inject({ method: 'POST', url: '/api/v1/payments/stripe/webhook', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(event) }),
      await (async () => {
        // A genuine signature on another body.
        const { headers } = signedDelivery(stripeEvent('checkout.session.completed', { ...paid(session), amount_total: 1 }));
        return ctx.app.inject({ method: 'POST', url: '/api/v1/payments/stripe/webhook', headers, payload: JSON.stringify(event) });
      })(),
    ];
    for (const res of attempts) {
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().error.code, 'INVALID_WEBHOOK_SIGNATURE');
    }
    assert.equal((await row(order.id)).paymentStatus, 'unpaid');
    assert.equal((await db().select().from(stripeEvents).where(eq(stripeEvents.eventId, event.id))).length, 0, 'the event id is not used up');
    // The genuine delivery still works afterwards.
    assert.equal((await deliver(event)).json().data.outcome, 'paid');
  });

  it('leaves the order unpaid and logs an error when the amount or currency does not match', async () => {
    const order = await acceptedOrder();
    const session = sessionFor((await checkout(order.id)).json().data.url);
    for (const wrong of [{ amount_total: order.total_price_cents - 1 }, { currency: 'eur' }]) {
      const res = await deliver(stripeEvent('checkout.session.completed', { ...paid(session), ...wrong }));
      assert.equal(res.statusCode, 200, 'acknowledged, so Stripe stops re-delivering');
      assert.equal(res.json().data.outcome, 'amount_mismatch');
    }
    assert.equal((await row(order.id)).paymentStatus, 'unpaid');
    assert.ok(!(await kinds(order.id)).includes('pay_online'));
    assert.ok(ctx.logs.some((l) => l.level === 50 && l.order_id === order.id && /does not match/.test(String(l.msg))), 'logged at error level');
  });

  it('answers 503 when Stripe fails or does not answer, writing nothing', async () => {
    const order = await acceptedOrder();
    try {
      for (const mode of ['error', 'hang'] as const) {
        stripe.mode = mode;
        const calls = stripe.creates.length;
        const res = await checkout(order.id);
        assert.equal(res.statusCode, 503, `${mode}: ${res.body}`);
        assert.equal(res.json().error.code, 'PAYMENT_PROVIDER_UNAVAILABLE');
        assert.ok(res.headers['retry-after']);
        assert.equal(stripe.creates.length, calls + 1, `${mode}: Stripe was called`);
        assert.deepEqual(await sessionsOf(order.id), [], `${mode}: no session stored`);
      }
    } finally {
      stripe.mode = 'ok';
    }
    const res = await checkout(order.id);
    assert.equal(res.statusCode, 200, 'works again once Stripe answers');
    assert.equal((await sessionsOf(order.id)).length, 1);
  });

  it('gives two concurrent checkout requests one session', async () => {
    const order = await acceptedOrder();
    const calls = stripe.creates.length;
    stripe.delayMs = 150;
    try {
      const [a, b] = await Promise.all([checkout(order.id), checkout(order.id)]);
      assert.equal(a.statusCode, 200, a.body);
      assert.equal(b.statusCode, 200, b.body);
      assert.equal(a.json().data.url, b.json().data.url);
    } finally {
      stripe.delayMs = 0;
    }
    const made = stripe.creates.slice(calls);
    assert.ok(made.length >= 1);
    assert.equal(new Set(made.map((c) => c.idempotencyKey)).size, 1, 'one idempotency key, so Stripe makes one session');
    assert.equal((await sessionsOf(order.id)).length, 1);
  });

  it('does not pay twice an order already marked paid by hand: no state change, logged', async () => {
    const order = await acceptedOrder();
    const session = sessionFor((await checkout(order.id)).json().data.url);
    const manual = await put(ctx, tech, `/api/v1/orders/${order.id}/payment`, { payment_status: 'paid' });
    assert.equal(manual.statusCode, 200);
    assert.equal(manual.json().data.payment_method, 'manual');
    const [manualEvent] = (await db().select().from(orderEvents).where(eq(orderEvents.orderId, order.id))).filter((e) => e.kind === 'record_payment');
    assert.equal(manualEvent!.actorId, tech.id, 'the manual payment names the technician');
    const before = { row: await row(order.id), events: await kinds(order.id) };

    const res = await deliver(stripeEvent('checkout.session.completed', paid(session)));
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().data.outcome, 'already_paid');
    const after = await row(order.id);
    assert.equal(after.paymentMethod, 'manual');
    assert.equal(after.paymentReference, null);
    assert.deepEqual(after.paidAt, before.row.paidAt);
    assert.deepEqual(await kinds(order.id), before.events, 'no second payment event');
    assert.ok(ctx.logs.some((l) => l.order_id === order.id && /already paid/.test(String(l.msg))), 'logged');
  });

  it('refuses checkout to everyone but the customer of an accepted, unpaid order', async () => {
    const order = await acceptedOrder();
    assert.equal((await checkout(order.id, other)).statusCode, 404);
    assert.equal((await checkout(order.id, tech)).statusCode, 403);
    assert.equal((await ctx.app.inject({ method: 'POST', url: `/api/v1/orders/${order.id}/checkout` })).statusCode, 401);
    const underReview = await createOrder(ctx, customer);
    const res = await checkout(underReview.id);
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().error.code, 'INVALID_STATE');
  });

  it('ignores sessions it did not create and event types it does not handle', async () => {
    const foreign = { id: 'cs_test_someone_else', object: 'checkout.session', amount_total: 100, currency: 'usd', metadata: {}, payment_status: 'paid', status: 'complete' };
    assert.equal((await deliver(stripeEvent('checkout.session.completed', foreign))).json().data.outcome, 'ignored');
    assert.equal((await deliver(stripeEvent('charge.refunded', { id: 'ch_1', object: 'charge' }))).json().data.outcome, 'ignored');
  });

  it('keeps the webhook outside CORS but inside the body limit; health reports Stripe as configured', async () => {
    const origin = ctx.config.corsAllowedOrigins[0]!;
    const res = await ctx.app.inject({ method: 'POST', url: '/api/v1/payments/stripe/webhook', headers: { origin, 'content-type': 'application/json' }, payload: '{}' });
    assert.equal(res.statusCode, 400);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    const big = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/payments/stripe/webhook',
      headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=00' },
      payload: JSON.stringify({ padding: 'x'.repeat(200 * 1024) }),
    });
    assert.equal(big.statusCode, 413);
    const health = await ctx.app.inject({ method: 'GET', url: '/api/v1/health' });
    assert.equal(health.json().data.stripe, 'configured');
  });
});

describe('payments without Stripe keys', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await buildTestApp();
  });
  after(() => ctx.close());

  it('answers checkout and the webhook with 503 PAYMENTS_NOT_CONFIGURED; the manual path remains', async () => {
    const tech = await registerUser(ctx, 'nail_technician');
    const customer = await registerUser(ctx, 'customer');
    const order = await createOrder(ctx, customer);
    await advanceOrder(ctx, tech, order.id, 'accepted');
    const res = await ctx.app.inject({ method: 'POST', url: `/api/v1/orders/${order.id}/checkout`, headers: customer.auth });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error.code, 'PAYMENTS_NOT_CONFIGURED');
    const hook = await ctx.app.inject({ method: 'POST', url: '/api/v1/payments/stripe/webhook', headers: { 'content-type': 'application/json' }, payload: '{}' });
    assert.equal(hook.statusCode, 503);
    assert.equal(hook.json().error.code, 'PAYMENTS_NOT_CONFIGURED');
    const manual = await put(ctx, tech, `/api/v1/orders/${order.id}/payment`, { payment_status: 'paid' });
    assert.equal(manual.statusCode, 200);
    assert.equal(manual.json().data.payment_method, 'manual');
    assert.ok(manual.json().data.paid_at);
    // Corrected by hand back to unpaid: how and when it was paid are cleared with it.
    const undone = await put(ctx, tech, `/api/v1/orders/${order.id}/payment`, { payment_status: 'unpaid' });
    assert.equal(undone.statusCode, 200, undone.body);
    assert.equal(undone.json().data.payment_method, null);
    assert.equal(undone.json().data.paid_at, null);
    assert.equal((await ctx.app.inject({ method: 'GET', url: '/api/v1/health' })).json().data.stripe, 'not_configured');
  });
});

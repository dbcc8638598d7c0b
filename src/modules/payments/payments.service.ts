import type { FastifyBaseLogger } from 'fastify';
import type { Database, Executor } from '../../db/client.js';
import { AppError, fail, serviceUnavailable } from '../../errors.js';
import { shorten } from '../../lib/text.js';
import type { OrdersRepository } from '../orders/orders.repository.js';
import type { Workflow } from '../orders/workflow.js';
import type { UserRow } from '../users/users.repository.js';
import type { CheckoutSessionRow, PaymentsRepository } from './payments.repository.js';
import { type CheckoutSession, type StripeClient, type StripeEvent, isStripeError, isTransient } from './stripe.js';

export interface PaymentsServiceDeps {
  db: Database;
  payments: PaymentsRepository;
  orders: Pick<OrdersRepository, 'findById'>;
  workflow: Workflow;
  /** Absent when STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are not set: payments are then recorded by hand only. */
  stripe?: { client: StripeClient; webhookSecret: string };
  /** The web front end: Checkout sends the customer back under it. */
  appUrl: string;
  log: FastifyBaseLogger;
}

/** A session is reused only while the customer has this long left to pay on it. */
const REUSE_MARGIN_MS = 5 * 60 * 1000;
/** Stripe limits a product description to this many characters. */
const STRIPE_DESCRIPTION_MAX = 500;

/** What a webhook delivery did, for the acknowledgement and the log. */
export type WebhookOutcome = 'paid' | 'already_paid' | 'amount_mismatch' | 'recorded' | 'pending' | 'ignored' | 'duplicate';

const notConfigured = () =>
  serviceUnavailable(
    'PAYMENTS_NOT_CONFIGURED',
    'Online payment is not set up on this server. Pay your technician another way; they record it on the order.',
    300,
  );
const orderNotFound = () => fail('ORDER_NOT_FOUND', 'No such order among the orders you can see.');
const providerUnavailable = () =>
  serviceUnavailable('PAYMENT_PROVIDER_UNAVAILABLE', 'Stripe did not answer, so no checkout was started. Try again in a minute.', 30);

const sameCurrency = (a: string | null | undefined, b: string) => (a ?? '').toUpperCase() === b.toUpperCase();

export function createPaymentsService(deps: PaymentsServiceDeps) {
  const { db, payments: repo, workflow, log } = deps;

  const answer = (row: CheckoutSessionRow) => ({ url: row.url, expires_at: row.expiresAt.toISOString() });

  /**
   * The order paid through `session`, if its amount and currency are the order's: the workflow's
   * pay_online move (one conditional statement with its event, subscribers in the same transaction).
   */
  async function pay(session: CheckoutSession, row: CheckoutSessionRow, event: StripeEvent, tx: Executor): Promise<WebhookOutcome> {
    await repo.setSessionStatus(session.id, 'complete', tx);
    const order = await deps.orders.findById(row.orderId, tx);
    if (!order) return 'ignored';
    const context = { event_id: event.id, order_id: order.id, checkout_session_id: session.id };
    if (session.amount_total === null || session.amount_total !== order.totalPriceCents || !sameCurrency(session.currency, order.currency)) {
      log.error(
        { ...context, paid: { amount: session.amount_total, currency: session.currency }, due: { amount: order.totalPriceCents, currency: order.currency } },
        'Stripe payment does not match the order total: the order stays unpaid; refund or reconcile it in the Stripe dashboard',
      );
      return 'amount_mismatch';
    }
    const reference = typeof session.payment_intent === 'string' ? session.payment_intent : (session.payment_intent?.id ?? session.id);
    try {
      await workflow.perform('pay_online', null, order.id, { reference, amountCents: session.amount_total, currency: order.currency }, tx);
    } catch (err) {
      if (!(err instanceof AppError) || (err.code !== 'ALREADY_PAID' && err.code !== 'INVALID_STATE')) throw err;
      log.error(
        { ...context, payment_status: order.paymentStatus, payment_method: order.paymentMethod, status: order.status, payment_reference: reference },
        'Stripe payment for an order that was already paid (or is no longer awaiting payment): nothing changed; refund one of the payments',
      );
      return 'already_paid';
    }
    log.info({ ...context, payment_reference: reference }, 'order paid through Stripe Checkout');
    return 'paid';
  }

  /** A delayed payment that failed, or a session that expired unpaid, on the order's timeline. */
  async function unpaid(session: CheckoutSession, row: CheckoutSessionRow, outcome: 'failed' | 'expired', event: StripeEvent, tx: Executor): Promise<WebhookOutcome> {
    await repo.setSessionStatus(session.id, outcome === 'expired' ? 'expired' : 'complete', tx);
    try {
      await workflow.perform('online_payment_failed', null, row.orderId, { sessionId: session.id, outcome }, tx);
    } catch (err) {
      if (!(err instanceof AppError) || (err.code !== 'ALREADY_PAID' && err.code !== 'INVALID_STATE')) throw err;
      log.info({ event_id: event.id, order_id: row.orderId, checkout_session_id: session.id, outcome }, 'Stripe checkout ended unpaid on an order no longer awaiting payment: not recorded');
      return 'ignored';
    }
    log.info({ event_id: event.id, order_id: row.orderId, checkout_session_id: session.id, outcome }, 'Stripe checkout ended unpaid');
    return 'recorded';
  }

  async function handle(event: StripeEvent, tx: Executor): Promise<WebhookOutcome> {
    switch (event.type) {
      case 'checkout.session.completed':
      case 'checkout.session.async_payment_succeeded':
      case 'checkout.session.async_payment_failed':
      case 'checkout.session.expired':
        break;
      default:
        return 'ignored';
    }
    const session = event.data.object;
    // Only sessions this service created: the order is the one it was created for, whatever the metadata says
    // (and a test-mode account shared by several apps delivers the others' sessions too).
    const row = await repo.findSession(session.id, tx);
    if (!row) {
      log.warn({ event_id: event.id, type: event.type, checkout_session_id: session.id, order_id: session.metadata?.order_id }, 'Stripe event for a checkout session this service did not create: ignored');
      return 'ignored';
    }
    switch (event.type) {
      case 'checkout.session.completed':
        if (session.payment_status === 'paid') return pay(session, row, event, tx);
        // A delayed method (bank debit…): async_payment_succeeded or _failed follows.
        await repo.setSessionStatus(session.id, 'complete', tx);
        return 'pending';
      case 'checkout.session.async_payment_succeeded':
        return pay(session, row, event, tx);
      case 'checkout.session.async_payment_failed':
        return unpaid(session, row, 'failed', event, tx);
      case 'checkout.session.expired':
        return unpaid(session, row, 'expired', event, tx);
    }
  }

  return {
    configured: Boolean(deps.stripe),

    /**
     * A Checkout Session for the order's total, or the open one it already has. The order's row stays
     * locked from the check to the insert, so concurrent requests wait and then reuse the session the
     * first one created; Stripe's idempotency key makes a retried creation return the same session.
     */
    async checkout(user: UserRow, orderId: string): Promise<{ url: string; expires_at: string }> {
      const stripe = deps.stripe;
      if (!stripe) throw notConfigured();
      // Before the order's row is locked: the first call of a process loads the SDK.
      const client = await stripe.client();
      return db.transaction(async (tx) => {
        const order = await repo.lockOrder(orderId, tx);
        if (!order || order.customerId !== user.id) throw orderNotFound();
        if (order.paymentStatus === 'paid') {
          throw fail('ALREADY_PAID', 'This order is already paid.', { current_status: order.status, payment_status: order.paymentStatus });
        }
        if (order.status !== 'accepted' || order.totalPriceCents === null || order.unitPriceCents === null) {
          throw fail('INVALID_STATE', `An order that is ${order.status} cannot be paid; its technician must accept it first.`, {
            current_status: order.status,
            requested_status: 'accepted',
          });
        }
        const total = order.totalPriceCents;
        const open = await repo.openSession(order.id, tx);
        if (open && open.amountCents === total && sameCurrency(open.currency, order.currency) && open.expiresAt.getTime() - Date.now() > REUSE_MARGIN_MS) {
          return answer(open);
        }
        if (open) await repo.setSessionStatus(open.sessionId, 'expired', tx);
        // Same order, price and attempt → same key: a retry after a lost answer gets the session Stripe already made.
        const attempt = await repo.sessionCount(order.id, tx);
        const idempotencyKey = `checkout-${order.id}-${total}-${order.currency}-${attempt}`;
        // One line: the set at its unit price; if the total is not unit × quantity, the whole order as one unit.
        const exact = order.unitPriceCents * order.quantity === total;
        let session: CheckoutSession;
        try {
          session = await client.checkout.sessions.create(
            {
              mode: 'payment',
              client_reference_id: order.id,
              metadata: { order_id: order.id },
              payment_intent_data: { metadata: { order_id: order.id } },
              customer_email: user.email ?? undefined,
              line_items: [
                {
                  quantity: exact ? order.quantity : 1,
                  price_data: {
                    currency: order.currency.toLowerCase(),
                    unit_amount: exact ? order.unitPriceCents : total,
                    product_data: {
                      name: exact ? 'Custom press-on nail set' : `Custom press-on nail sets ×${order.quantity}`,
                      description: shorten(order.description, STRIPE_DESCRIPTION_MAX),
                    },
                  },
                },
              ],
              success_url: `${deps.appUrl}/orders/${order.id}?checkout=success&session_id={CHECKOUT_SESSION_ID}`,
              cancel_url: `${deps.appUrl}/orders/${order.id}?checkout=cancelled`,
            },
            { idempotencyKey },
          );
        } catch (err) {
          if (!isStripeError(err)) throw err;
          const entry = { order_id: order.id, stripe: { type: err.type, code: err.code, status: err.statusCode, request_id: err.requestId, message: err.message } };
          if (isTransient(err)) log.warn(entry, 'Stripe checkout session creation failed; nothing saved');
          else log.error(entry, 'Stripe refused the checkout session (check STRIPE_SECRET_KEY and the account settings); nothing saved');
          throw providerUnavailable();
        }
        if (!session.url) {
          log.error({ order_id: order.id, checkout_session_id: session.id }, 'Stripe returned a checkout session without a URL');
          throw providerUnavailable();
        }
        const row = await repo.insertSession(
          {
            orderId: order.id,
            sessionId: session.id,
            url: session.url,
            amountCents: session.amount_total ?? total,
            currency: (session.currency ?? order.currency).toUpperCase(),
            expiresAt: new Date(session.expires_at * 1000),
            status: 'open',
          },
          tx,
        );
        log.info({ order_id: order.id, checkout_session_id: session.id }, 'Stripe checkout session created');
        return answer(row);
      });
    },

    /**
     * A Stripe webhook delivery: verified against the raw body, processed once per event id (the id is
     * stored in the same transaction as the change, so a failure leaves Stripe to deliver it again).
     */
    async webhook(rawBody: Buffer, signature: string | undefined): Promise<{ received: true; outcome: WebhookOutcome }> {
      const stripe = deps.stripe;
      if (!stripe) throw notConfigured();
      const client = await stripe.client();
      let event: StripeEvent;
      try {
        event = client.webhooks.constructEvent(rawBody, signature ?? '', stripe.webhookSecret);
      } catch (err) {
        log.warn({ reason: (err as Error).message.split('\n')[0] }, 'Stripe webhook refused: signature does not verify');
        throw fail(
          'INVALID_WEBHOOK_SIGNATURE',
          'The Stripe-Signature header does not match this body and the endpoint secret, or is too old. Nothing was changed.',
        );
      }
      const outcome = await db.transaction(async (tx): Promise<WebhookOutcome> => {
        if (!(await repo.recordEvent(event.id, event.type, tx))) return 'duplicate';
        return handle(event, tx);
      });
      if (outcome === 'duplicate') log.info({ event_id: event.id, type: event.type }, 'Stripe event already processed: acknowledged, nothing changed');
      return { received: true, outcome };
    },
  };
}

export type PaymentsService = ReturnType<typeof createPaymentsService>;

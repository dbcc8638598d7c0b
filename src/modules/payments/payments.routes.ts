import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Envelope, IdParams, errorResponses, ok } from '../../lib/envelope.js';
import { requireUser } from '../../plugins/auth.js';
import type { PaymentsService } from './payments.service.js';

export const CheckoutSchema = Type.Object(
  {
    url: Type.String({ format: 'uri', description: 'Stripe Checkout page to send the customer to' }),
    expires_at: Type.String({ format: 'date-time', description: 'When the page stops accepting payment; ask again after it' }),
  },
  { $id: 'Checkout', title: 'Checkout' },
);

const WebhookAck = Type.Object({
  received: Type.Literal(true),
  outcome: Type.Union(
    ['paid', 'already_paid', 'amount_mismatch', 'recorded', 'pending', 'ignored', 'duplicate'].map((o) => Type.Literal(o)),
    { description: 'What the delivery did (for Stripe’s dashboard and the logs)' },
  ),
});

export const WEBHOOK_PATH = '/api/v1/payments/stripe/webhook';

export const paymentsRoutes: FastifyPluginAsyncTypebox<{ payments: PaymentsService }> = async (app, { payments }) => {
  app.addSchema(CheckoutSchema);

  app.post(
    '/api/v1/orders/:id/checkout',
    {
      schema: {
        tags: ['orders'],
        operationId: 'startCheckout',
        summary: 'Pay an accepted order by card (Stripe Checkout)',
        description:
          'The order’s customer, once the order is accepted and unpaid: a Stripe Checkout page for exactly `total_price_cents` in the ' +
          'order’s currency. Send the customer to `url`; the order becomes paid only when Stripe confirms the payment (webhook), never ' +
          'from the redirect back. Asking again returns the same page until it is about to expire. No body. ' +
          'Refusals: 404 ORDER_NOT_FOUND (not your order), 422 INVALID_STATE (not accepted), 422 ALREADY_PAID, ' +
          '503 PAYMENTS_NOT_CONFIGURED (no Stripe keys on this server: pay the technician, who records it), ' +
          '503 PAYMENT_PROVIDER_UNAVAILABLE (Stripe failed or timed out; nothing was saved, retry).',
        params: IdParams,
        response: { 200: Envelope(Type.Ref('Checkout')), ...errorResponses(400, 401, 403, 404, 422, 503) },
      },
      config: { access: 'customer', errors: ['ORDER_NOT_FOUND', 'INVALID_STATE', 'ALREADY_PAID', 'PAYMENTS_NOT_CONFIGURED', 'PAYMENT_PROVIDER_UNAVAILABLE'] },
    },
    async (request) => ok(await payments.checkout(requireUser(request), request.params.id), 'Continue to the Stripe payment page.'),
  );

  // Its own context: Stripe signs the exact bytes it sent, so this route alone reads JSON as a raw Buffer
  // (the app-wide body limit still applies). Outside the user rate limits, and no CORS: only Stripe calls it.
  await app.register(async (webhook) => {
    webhook.removeContentTypeParser('application/json');
    webhook.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    webhook.post(
      WEBHOOK_PATH,
      {
        schema: {
          tags: ['payments'],
          operationId: 'receiveStripeWebhook',
          summary: 'Stripe webhook (called by Stripe only)',
          description:
            'Stripe’s events, verified with STRIPE_WEBHOOK_SECRET against the raw body and the `Stripe-Signature` header. ' +
            'Send: checkout.session.completed, checkout.session.async_payment_succeeded, checkout.session.async_payment_failed, ' +
            'checkout.session.expired. Each event id is processed once; an order becomes paid only when the amount and currency ' +
            'match its total. 400 INVALID_WEBHOOK_SIGNATURE when the signature is missing, forged or older than 5 minutes ' +
            '(nothing changes); 503 PAYMENTS_NOT_CONFIGURED without Stripe keys (Stripe retries).',
          security: [],
          headers: Type.Object({ 'stripe-signature': Type.Optional(Type.String({ description: 'Set by Stripe' })) }),
          body: Type.Unsafe<Buffer>({ type: 'object', description: 'A Stripe Event object (verified as raw bytes)' }),
          response: { 200: Envelope(WebhookAck), ...errorResponses(400, 413, 415, 503) },
        },
        // The body arrives as bytes: the schema documents it, the signature check is what validates it.
        validatorCompiler: () => () => true,
        config: { access: 'public', rateLimit: false, cors: false, errors: ['INVALID_WEBHOOK_SIGNATURE', 'PAYMENTS_NOT_CONFIGURED'] },
      },
      async (request) => {
        const signature = request.headers['stripe-signature'];
        return ok(await payments.webhook(request.body as Buffer, typeof signature === 'string' ? signature : undefined));
      },
    );
  });
};

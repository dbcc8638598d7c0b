import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

/**
 * A local stand-in for the few Stripe API endpoints the service calls, answering in Stripe's documented
 * shapes (a Checkout Session object; errors as `{error: {type, message}}`), with Stripe's idempotency: a
 * repeated Idempotency-Key gets the first answer again. `mode` makes it fail (500) or never answer.
 */
export interface CreateCall {
  idempotencyKey: string | undefined;
  authorization: string | undefined;
  params: URLSearchParams;
}

export const FAKE_STRIPE_ENV = {
  STRIPE_SECRET_KEY: 'sk_test_fake_key_for_tests',
  STRIPE_WEBHOOK_SECRET: 'whsec_test_secret_for_tests',
  APP_URL: 'https://app.example.com',
};

type Session = Record<string, unknown> & { id: string; amount_total: number; currency: string; metadata: Record<string, string> };

export class FakeStripe {
  mode: 'ok' | 'error' | 'hang' = 'ok';
  /** Delay before answering a creation (to overlap concurrent requests). */
  delayMs = 0;
  readonly creates: CreateCall[] = [];
  readonly sessions = new Map<string, Session>();
  private readonly byKey = new Map<string, Session>();
  private readonly hanging = new Set<http.ServerResponse>();

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<FakeStripe> {
    const server = http.createServer();
    const fake = new FakeStripe(server);
    server.on('request', (req, res) => void fake.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** buildApp's `stripe` override: the SDK pointed here, failing fast. */
  endpoint(timeoutMs = 400) {
    return { host: '127.0.0.1', port: this.port, protocol: 'http' as const, timeoutMs, maxNetworkRetries: 0 };
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${randomBytes(6).toString('hex')}` });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? '/', 'http://stripe.local');
    const retrieve = /^\/v1\/checkout\/sessions\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && retrieve) {
      const session = this.sessions.get(decodeURIComponent(retrieve[1]!));
      return session ? send(200, session) : send(404, { error: { type: 'invalid_request_error', code: 'resource_missing', message: 'No such checkout.session' } });
    }
    if (req.method !== 'POST' || url.pathname !== '/v1/checkout/sessions') {
      return send(404, { error: { type: 'invalid_request_error', message: `Unrecognized request URL (${req.method}: ${url.pathname})` } });
    }
    const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const idempotencyKey = req.headers['idempotency-key'] as string | undefined;
    this.creates.push({ idempotencyKey, authorization: req.headers.authorization, params });
    if (this.mode === 'hang') {
      this.hanging.add(res);
      return;
    }
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.mode === 'error') return send(500, { error: { type: 'api_error', message: 'An unknown error occurred' } });
    const replay = idempotencyKey ? this.byKey.get(idempotencyKey) : undefined;
    if (replay) return send(200, replay);
    const quantity = Number(params.get('line_items[0][quantity]'));
    const unit = Number(params.get('line_items[0][price_data][unit_amount]'));
    const id = `cs_test_${randomBytes(12).toString('hex')}`;
    const session: Session = {
      id,
      object: 'checkout.session',
      amount_subtotal: quantity * unit,
      amount_total: quantity * unit,
      cancel_url: params.get('cancel_url'),
      client_reference_id: params.get('client_reference_id'),
      created: Math.floor(Date.now() / 1000),
      currency: params.get('line_items[0][price_data][currency]') ?? 'usd',
      customer_email: params.get('customer_email'),
      expires_at: Math.floor(Date.now() / 1000) + 24 * 3600,
      livemode: false,
      metadata: { order_id: params.get('metadata[order_id]') ?? '' },
      mode: 'payment',
      payment_intent: null,
      payment_status: 'unpaid',
      status: 'open',
      success_url: params.get('success_url'),
      url: `https://checkout.stripe.com/c/pay/${id}`,
    };
    this.sessions.set(id, session);
    if (idempotencyKey) this.byKey.set(idempotencyKey, session);
    send(200, session);
  }
}

let eventCounter = 0;

/** A Stripe event about `session`, as Stripe would POST it. */
export function stripeEvent(type: string, session: Record<string, unknown>, id = `evt_test_${++eventCounter}_${randomBytes(6).toString('hex')}`) {
  return {
    id,
    object: 'event',
    api_version: Stripe.API_VERSION,
    created: Math.floor(Date.now() / 1000),
    data: { object: session },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  };
}

/** The body and headers of a webhook delivery, signed the way Stripe signs them (or with `secret`, `timestamp`). */
export function signedDelivery(event: unknown, opts: { secret?: string; timestamp?: number } = {}) {
  const payload = JSON.stringify(event);
  const signature = Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: opts.secret ?? FAKE_STRIPE_ENV.STRIPE_WEBHOOK_SECRET,
    timestamp: opts.timestamp,
  });
  return { payload, headers: { 'content-type': 'application/json', 'stripe-signature': signature } };
}

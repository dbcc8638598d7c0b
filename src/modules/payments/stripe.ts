import Stripe from 'stripe';

/**
 * Where the SDK sends its API calls. Production leaves it unset (api.stripe.com over HTTPS); tests point it
 * at a local fake through buildApp's overrides. Not configurable from the environment on purpose.
 */
export interface StripeEndpoint {
  host: string;
  port: number;
  protocol: 'http' | 'https';
  /** Per attempt; default 8 s, so two attempts stay under REQUEST_TIMEOUT_MS and Heroku's 30 s. */
  timeoutMs?: number;
  /** Retries of a failed call (same idempotency key); default 1. */
  maxNetworkRetries?: number;
}

export type StripeClient = Stripe;
export type CheckoutSession = Stripe.Checkout.Session;
export type StripeEvent = Stripe.Event;

export function createStripe(secretKey: string, endpoint?: Partial<StripeEndpoint>): Stripe {
  return new Stripe(secretKey, {
    timeout: endpoint?.timeoutMs ?? 8000,
    maxNetworkRetries: endpoint?.maxNetworkRetries ?? 1,
    telemetry: false,
    appInfo: { name: 'kendalls-nails-api' },
    ...(endpoint?.host ? { host: endpoint.host, port: endpoint.port, protocol: endpoint.protocol } : {}),
  });
}

/** Stripe failed or did not answer (as opposed to a bug in our request, which is also logged as one). */
export function isTransient(err: unknown): boolean {
  return (
    err instanceof Stripe.errors.StripeConnectionError ||
    err instanceof Stripe.errors.StripeAPIError ||
    err instanceof Stripe.errors.StripeRateLimitError ||
    (err instanceof Stripe.errors.StripeError && (err.statusCode ?? 0) >= 500)
  );
}

export const isStripeError = (err: unknown): err is Stripe.errors.StripeError => err instanceof Stripe.errors.StripeError;

import type Stripe from 'stripe';

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

/** The official SDK's client, made on first use. */
export type StripeClient = () => Promise<Stripe>;
export type CheckoutSession = Stripe.Checkout.Session;
export type StripeEvent = Stripe.Event;

// The SDK is loaded on the first payment call, not at start-up: importing it takes about 0.2 s of every process
// start (figure 6), and most starts never reach a checkout. Until it is loaded no Stripe error can exist.
let sdk: typeof Stripe | undefined;

export function createStripe(secretKey: string, endpoint?: Partial<StripeEndpoint>): StripeClient {
  let client: Promise<Stripe> | undefined;
  const make = async () => {
    sdk ??= (await import('stripe')).default;
    return new sdk(secretKey, {
      timeout: endpoint?.timeoutMs ?? 8000,
      maxNetworkRetries: endpoint?.maxNetworkRetries ?? 1,
      telemetry: false,
      appInfo: { name: 'kendalls-nails-api' },
      ...(endpoint?.host ? { host: endpoint.host, port: endpoint.port, protocol: endpoint.protocol } : {}),
    });
  };
  return () =>
    (client ??= make().catch((err: unknown) => {
      client = undefined;
      throw err;
    }));
}

/** Stripe failed or did not answer (as opposed to a bug in our request, which is also logged as one). */
export function isTransient(err: unknown): boolean {
  if (!sdk) return false;
  const { errors } = sdk;
  return (
    err instanceof errors.StripeConnectionError ||
    err instanceof errors.StripeAPIError ||
    err instanceof errors.StripeRateLimitError ||
    (err instanceof errors.StripeError && (err.statusCode ?? 0) >= 500)
  );
}

export const isStripeError = (err: unknown): err is Stripe.errors.StripeError => sdk !== undefined && err instanceof sdk.errors.StripeError;

import { randomInt } from 'node:crypto';
import type * as Auth0 from 'auth0';
import type { ManagementClient } from 'auth0';
import { type Config, issuerUrl } from '../config.js';
import { type AppError, fail } from '../errors.js';

/** What the invitation flow needs from the identity provider; the Auth0 implementation is below. */
export interface IdentityAdmin {
  /** Creates a user who cannot sign in until they set a password through a ticket; returns their user id. */
  createTechnician(input: { email: string; name: string }): Promise<string>;
  /** A link where the user sets their password, or undefined when the user no longer exists. */
  passwordChangeTicket(userId: string, ttlSeconds: number): Promise<string | undefined>;
  /** Undoes createTechnician when a later step fails; never throws (a failure is logged for manual clean-up). */
  deleteUser(userId: string): Promise<void>;
}

export interface AdminLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const TECHNICIAN_ROLE = 'nail_technician';
/** Per attempt; the SDK makes up to three attempts on 408, 429 and 5xx answers. */
const ATTEMPT_TIMEOUT_S = 5;
const MAX_RETRIES = 2;

type Sdk = typeof Auth0;
let loading: Promise<Sdk> | undefined;
/**
 * The Auth0 SDK is loaded on the first invitation, not at start-up: importing it took 300 ms and 40 MB
 * of every process's start (bench/README.md, figures 4 and 6) for an endpoint used a few times a year.
 */
const sdk = () => (loading ??= import('auth0'));

/**
 * The Auth0 Management API client, or undefined when the M2M application is not configured (development
 * with the local issuer): the invitation endpoint then answers 503 IDENTITY_PROVIDER_NOT_CONFIGURED.
 */
export function createIdentityAdmin(
  config: Config,
  deps: { fetch?: typeof globalThis.fetch; log: AdminLogger },
): IdentityAdmin | undefined {
  const { domain, issuerBaseUrl, clientId, clientSecret, connection } = config.auth0;
  const tenant = domain ?? (issuerBaseUrl ? new URL(issuerBaseUrl).host : undefined);
  if (!tenant || !clientId || !clientSecret) return undefined;

  // The SDK keeps the client-credentials token until 10 s before it expires (TokenProvider), so no cache here.
  let client: ManagementClient | undefined;
  const managementClient = async () =>
    (client ??= new (await sdk()).ManagementClient({
      domain: tenant,
      clientId,
      clientSecret,
      fetch: tenantFetch(deps.fetch ?? globalThis.fetch, tenant, issuerBaseUrl ? issuerUrl(config) : undefined),
      maxRetries: MAX_RETRIES,
      timeoutInSeconds: ATTEMPT_TIMEOUT_S,
    }));
  const failed = (step: string, err: unknown, auth0: Sdk): AppError => {
    deps.log.error({ auth0: describe(err, auth0), step }, 'Auth0 Management API call failed');
    return fail(
      'IDENTITY_PROVIDER_ERROR',
      'The identity provider did not complete the invitation, and nothing was saved. Try again in a minute.',
    );
  };

  return {
    async createTechnician({ email, name }) {
      try {
        const user = await (await managementClient()).users.create({
          connection,
          email,
          name,
          // Nobody ever learns this password: the ticket replaces it. It only has to satisfy any password policy.
          password: randomPassword(),
          email_verified: false,
          // The ticket proves the address; a separate verification email would only confuse the invitee.
          verify_email: false,
          app_metadata: { role: TECHNICIAN_ROLE },
        });
        if (!user.user_id) throw new Error('Auth0 created a user without a user_id');
        return user.user_id;
      } catch (err) {
        const auth0 = await sdk();
        if (err instanceof auth0.ManagementError && err.statusCode === 409) {
          throw fail(
            'USER_EXISTS',
            'An account with this email already exists at the identity provider. To make that person a technician, set ' +
              `app_metadata.role to "${TECHNICIAN_ROLE}" on their account in the Auth0 dashboard instead of inviting them.`,
          );
        }
        throw failed('create user', err, auth0);
      }
    },

    async passwordChangeTicket(userId, ttlSeconds) {
      try {
        const { ticket } = await (await managementClient()).tickets.changePassword({ user_id: userId, ttl_sec: ttlSeconds, mark_email_as_verified: true });
        if (!ticket) throw new Error('Auth0 answered without a ticket URL');
        return ticket;
      } catch (err) {
        const auth0 = await sdk();
        if (err instanceof auth0.ManagementError && err.statusCode === 404) return undefined;
        throw failed('password-change ticket', err, auth0);
      }
    },

    async deleteUser(userId) {
      try {
        await (await managementClient()).users.delete(userId);
      } catch (err) {
        deps.log.error({ auth0: describe(err, await sdk()), auth0_user_id: userId }, 'could not remove the Auth0 user of a failed invitation; delete it by hand');
      }
    },
  };
}

/**
 * The SDK always calls https://{domain}/. Two adjustments on the way:
 * - with AUTH0_ISSUER_BASE_URL set (a local issuer or test fake) the tenant's calls go there too, like the
 *   issuer's JWKS and /userinfo do;
 * - someone is waiting on the HTTP request that triggered the call, and Auth0 may ask for a wait of up to a
 *   minute (Retry-After, X-RateLimit-Reset). Dropping those headers makes the SDK fall back to its own short
 *   backoff (about 1 s, then 2 s), so a throttled invitation answers 502 within seconds instead of hanging.
 */
function tenantFetch(base: typeof globalThis.fetch, tenant: string, baseUrl: string | undefined): typeof globalThis.fetch {
  const origin = `https://${tenant}/`;
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const target = baseUrl && url.startsWith(origin) ? baseUrl + url.slice(origin.length) : url;
    const response = await base(input instanceof Request ? new Request(target, input) : target, init);
    const retryable = response.status === 408 || response.status === 429 || response.status >= 500;
    if (!retryable || (!response.headers.has('retry-after') && !response.headers.has('x-ratelimit-reset'))) return response;
    const headers = new Headers(response.headers);
    headers.delete('retry-after');
    headers.delete('x-ratelimit-reset');
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  };
}

/** Status and Auth0's own message, for the log: never request headers or bodies (they carry the secret). */
function describe(err: unknown, { ManagementError, ManagementTimeoutError }: Sdk): { status?: number; message: string } {
  if (err instanceof ManagementError) {
    const body = err.body as { message?: unknown; error_description?: unknown; error?: unknown } | string | undefined;
    const message =
      typeof body === 'string'
        ? body
        : [body?.message, body?.error_description, body?.error, err.message].find((m): m is string => typeof m === 'string');
    return { status: err.statusCode, message: (message ?? 'no message').slice(0, 300) };
  }
  if (err instanceof ManagementTimeoutError) return { message: err.message };
  return { message: err instanceof Error ? err.message : String(err) };
}

const CLASSES = ['abcdefghijkmnopqrstuvwxyz', 'ABCDEFGHJKLMNPQRSTUVWXYZ', '23456789', '!@#$%^&*-_=+?'];
const ALPHABET = CLASSES.join('');

/** 32 random characters with every class Auth0's strictest policy asks for and no character thrice in a row. */
export function randomPassword(length = 32): string {
  for (;;) {
    let out = '';
    for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
    if (CLASSES.every((set) => [...out].some((ch) => set.includes(ch))) && !/(.)\1\1/.test(out)) return out;
  }
}

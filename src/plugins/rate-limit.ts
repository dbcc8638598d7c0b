import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import type { Verifier } from '../auth/verifier.js';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { documentErrors } from '../lib/envelope.js';
import { BEARER } from './auth.js';

/** SPEC §6: per minute. */
export const LIMITS = { authenticated: 100, anonymous: 20, uploads: 10 } as const;
const WINDOW_MS = 60_000;
/** At most one log line per this window while the counter store fails, with how many requests went unlimited. */
const LOG_EVERY_MS = 30_000;

export interface RateLimitOptions {
  settings: Config['rateLimit'];
  /** Keys authenticated callers by their verified token (the same verifier, and cache, as the auth plugin). */
  verifier: Verifier;
}

/**
 * The client a request counts against: `user:<sub>` when it carries a token that verifies, else
 * `ip:<address>`. request.ip is the address Heroku's router appended to X-Forwarded-For (trustProxy in app.ts),
 * so a client cannot pick its own; IPv6 clients are grouped by /64, since one host usually owns the whole
 * prefix. An invalid or garbage token counts against the IP, so minting junk tokens buys no fresh budget.
 */
function clientKey(verifier: Verifier) {
  const keys = new WeakMap<FastifyRequest, Promise<string>>();
  const compute = async (request: FastifyRequest): Promise<string> => {
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1];
    if (token) {
      try {
        return `user:${(await verifier.verify(token)).sub}`;
      } catch {
        // Refused by the auth plugin right after; here it only means "anonymous".
      }
    }
    return `ip:${normalizeIP(request.ip)}`;
  };
  return (request: FastifyRequest): Promise<string> => {
    let key = keys.get(request);
    if (!key) {
      key = compute(request);
      keys.set(request, key);
    }
    return key;
  };
}

function rateLimited(max: number, ttlSeconds: number, what: string) {
  return new AppError('RATE_LIMITED',
    `Too many requests: at most ${max} ${what} per minute. Try again in ${ttlSeconds} s (see Retry-After).`,
  );
}

/**
 * Counters shared by every dyno: `enableOfflineQueue: false` refuses a command at once while the
 * connection is down and `commandTimeout` bounds one that hangs, so a Redis outage costs a request at
 * most `timeoutMs` and never queues it. Heroku Redis presents a self-signed certificate on rediss://.
 */
export async function createRedis(url: string, timeoutMs: number): Promise<Redis> {
  // Loaded only when a Redis URL is set: ioredis adds 60 ms and 27 MB to a start-up that does not use it.
  const { Redis } = await import('ioredis');
  return new Redis(url, {
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5000),
    ...(url.startsWith('rediss://') ? { tls: { rejectUnauthorized: false } } : {}),
  });
}

/** Resolves once `client` is ready, has failed, or `timeoutMs` has passed, whichever comes first. */
function firstConnection(client: Redis, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done).off('error', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    client.once('ready', done).once('error', done);
  });
}

/**
 * Rate limits with @fastify/rate-limit (SPEC §6): 100/min per user, 20/min per anonymous IP, and a separate
 * 10/min upload budget per user on routes flagged `config.upload`. Routes with `config.rateLimit: false`
 * (health, docs, OpenAPI, signed image links) are exempt, and so is every CORS preflight, from any origin.
 *
 * The limiter runs as an app-wide onRequest hook registered before the auth plugin's, so a refused request
 * costs neither a database lookup nor a token check beyond the cached one in clientKey; the plugin's own
 * per-route hooks would run after auth, letting 401 floods through uncounted.
 *
 * If the counter store fails (Redis down or slow), the request is served unlimited and the failure logged:
 * rate limiting protects the service, it must not become the outage.
 */
async function rateLimitPlugin(app: FastifyInstance, opts: RateLimitOptions) {
  const { settings } = opts;
  const keyOf = clientKey(opts.verifier);

  let redis: Redis | undefined;
  if (settings.redisUrl) {
    const client = await createRedis(settings.redisUrl, settings.redisTimeoutMs);
    redis = client;
    let down = false;
    client.on('error', (err: Error) => {
      if (down) return;
      down = true;
      app.log.warn({ err: { message: err.message } }, 'rate-limit store (Redis) unreachable; serving requests without limits');
    });
    client.on('ready', () => {
      if (down) app.log.info('rate-limit store (Redis) reachable again');
      down = false;
    });
    app.addHook('onClose', async () => {
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
      else client.disconnect();
    });
    // Start with the connection up when Redis answers in time, so the first requests are counted too.
    await firstConnection(client, settings.redisTimeoutMs);
  }

  await app.register(rateLimit, {
    global: false,
    max: (_request, key) => (key.startsWith('user:') ? LIMITS.authenticated : LIMITS.anonymous),
    timeWindow: WINDOW_MS,
    keyGenerator: keyOf,
    skipOnError: false,
    ...(redis ? { redis, nameSpace: settings.keyPrefix } : {}),
    errorResponseBuilder: (_request, context) =>
      rateLimited(context.max, Math.ceil(context.ttl / 1000), 'requests'),
  });

  app.addHook('onRoute', (route) => {
    if (route.config?.rateLimit === undefined) documentErrors(route, 429);
  });

  const general = app.rateLimit();
  // A second limiter with its own counters (in Redis under `<prefix>undefinedundefined-upload:…`: the plugin
  // names a child store after its route, and this one has none). app.rateLimit() could not serve here: it
  // runs at most once per request.
  const uploads = app.createRateLimit({
    max: LIMITS.uploads,
    timeWindow: WINDOW_MS,
    keyGenerator: async (request) => `upload:${await keyOf(request)}`,
    skipOnError: false,
  });

  let failures = 0;
  let loggedAt = 0;
  const failOpen = (request: FastifyRequest, err: unknown) => {
    failures += 1;
    const now = Date.now();
    if (now - loggedAt < LOG_EVERY_MS) return;
    request.log.warn({ err: { message: (err as Error).message }, unlimited: failures }, 'rate-limit store failed; request served without limit');
    loggedAt = now;
    failures = 0;
  };

  const checkUploads = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!(await keyOf(request)).startsWith('user:')) return; // the auth plugin refuses it next
    const result = await uploads(request);
    if (result.isAllowed || !result.isExceeded) return;
    reply.headers({
      'x-ratelimit-limit': result.max,
      'x-ratelimit-remaining': 0,
      'x-ratelimit-reset': result.ttlInSeconds,
      'retry-after': result.ttlInSeconds,
    });
    throw rateLimited(result.max, result.ttlInSeconds, 'uploads');
  };

  app.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config;
    // false: exempt. An object: the plugin's own per-route limiter applies instead of the general one.
    if (config.rateLimit !== undefined) return;
    // A CORS preflight is never counted. A listed origin's is answered by the CORS hook before this one; a
    // foreign origin's falls through to a 404 and, counted, would spend the budget of the very client it
    // shares an address with (README "Edge protection"). A plain OPTIONS request is counted as usual.
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) return;
    try {
      await general.call(app, request, reply);
      if (config.upload) await checkUploads(request, reply);
    } catch (err) {
      if (err instanceof AppError) throw err;
      failOpen(request, err);
    }
  });
}

export default fp(rateLimitPlugin, { name: 'rate-limit' });

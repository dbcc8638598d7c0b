import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** Response headers a browser client may read (rate-limit state, request id for support, idempotent replays). */
export const EXPOSED_HEADERS = [
  'X-Request-ID',
  'Retry-After',
  'X-RateLimit-Limit',
  'X-RateLimit-Remaining',
  'X-RateLimit-Reset',
  'Idempotent-Replayed',
];

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-ID'];
/** 12 h. Browsers cap it lower (Chromium at 2 h), which only means more preflights. */
const MAX_AGE_S = 12 * 60 * 60;

/**
 * CORS for the web front end (SPEC §6). Origins are compared exactly; an origin that is not listed, or a
 * request without one, gets no CORS headers at all (not even on a preflight, which then answers 404), so a
 * browser on another site can neither read responses nor send credentialed requests. Never a wildcard.
 *
 * The answers are @fastify/cors's for these options (a reflected listed origin, credentials, strict
 * preflight answered in onRequest); its per-request work (the options object copied, the route config
 * built twice, a closure per request, Vary parsed) was a measurable part of every request (bench figure
 * 1), while with a fixed list of origins every header but the origin itself is known at start-up.
 */
async function corsPlugin(app: FastifyInstance, opts: { origins: readonly string[] }) {
  const allowed = new Set(opts.origins);
  const exposed = EXPOSED_HEADERS.join(', ');
  const methods = METHODS.join(', ');
  const allowedHeaders = ALLOWED_HEADERS.join(', ');
  const maxAge = String(MAX_AGE_S);

  app.addHook('onRequest', (request, reply, done) => {
    // Responses differ by Origin, so caches must key on it (https://fetch.spec.whatwg.org/#cors-protocol-and-http-caches).
    reply.header('vary', 'Origin');
    const origin = request.headers.origin;
    if (origin === undefined || !allowed.has(origin)) {
      done();
      return;
    }
    reply.header('access-control-allow-origin', origin);
    reply.header('access-control-allow-credentials', 'true');
    reply.header('access-control-expose-headers', exposed);
    if (request.raw.method !== 'OPTIONS') {
      done();
      return;
    }
    // A preflight is answered here, before authentication and load shedding, which browsers would not get through.
    if (!request.headers['access-control-request-method']) {
      reply.code(400).type('text/plain').send('Invalid Preflight Request');
      return;
    }
    reply.header('access-control-allow-methods', methods);
    reply.header('access-control-allow-headers', allowedHeaders);
    reply.header('access-control-max-age', maxAge);
    // Safari waits for a body on a 204 without Content-Length.
    reply.code(204).header('content-length', '0').send();
  });

  // Preflights from listed origins never get here: this only makes any other OPTIONS a 404.
  app.options('*', { schema: { hide: true } }, (_request, reply) => {
    reply.callNotFound();
  });
}

export default fp(corsPlugin, { name: 'cors' });

import cors from '@fastify/cors';
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

/**
 * CORS for the web front end (SPEC §6). Origins are compared exactly; an origin that is not listed, or a
 * request without one, gets no CORS headers at all (not even on a preflight, which then answers 404), so a
 * browser on another site can neither read responses nor send credentialed requests. Never a wildcard.
 */
async function corsPlugin(app: FastifyInstance, opts: { origins: readonly string[] }) {
  const allowed = new Set(opts.origins);
  await app.register(cors, {
    // Reflects the caller's origin only when it is listed; `false` disables CORS for this request.
    origin: (origin, cb) => cb(null, origin !== undefined && allowed.has(origin) ? origin : false),
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-ID'],
    exposedHeaders: EXPOSED_HEADERS,
    credentials: true,
    // 12 h. Browsers cap it lower (Chromium at 2 h), which only means more preflights.
    maxAge: 12 * 60 * 60,
    strictPreflight: true,
  });
}

export default fp(corsPlugin, { name: 'cors' });

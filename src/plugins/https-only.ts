import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../errors.js';

export interface HttpsOnlyOptions {
  /** PUBLIC_URL: when it is an https URL, plain-HTTP GET/HEAD requests are sent to its origin. */
  publicUrl: string;
}

/** A Host header worth redirecting to: a name or address and an optional port, nothing else. */
const PLAIN_HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * HTTPS only (staging and production). request.protocol is the socket's, or the X-Forwarded-Proto of a proxy
 * TRUST_PROXY trusts (Heroku's router sends it on every request), so a client cannot claim HTTPS. A plain-HTTP
 * GET or HEAD gets 308 to the same path over HTTPS (PUBLIC_URL's origin when it is https, else the request's
 * host); anything else gets 403 HTTPS_REQUIRED instead of being redirected, since its body and credentials have
 * already crossed the network in clear and a redirect would only teach the client to send them again.
 * Nothing is exempt, health included: the router always says which scheme the client used, and an uptime
 * monitor on http:// follows the 308. CORS preflights are answered earlier (cors.ts) and the real request is refused.
 */
async function httpsOnlyPlugin(app: FastifyInstance, opts: HttpsOnlyOptions) {
  const canonical = opts.publicUrl.startsWith('https://') ? new URL(opts.publicUrl).origin : undefined;
  app.addHook('onRequest', (request, reply, done) => {
    if (request.protocol === 'https') return done();
    if (request.method === 'GET' || request.method === 'HEAD') {
      const origin = canonical ?? (PLAIN_HOST.test(request.host) ? `https://${request.host}` : undefined);
      if (origin !== undefined) {
        // The request line's path and query, unchanged; a path not starting with "/" never reaches a route.
        const target = request.url.startsWith('/') ? request.url : '/';
        reply.code(308).header('location', `${origin}${target}`).header('cache-control', 'no-store').send();
        return;
      }
    }
    done(new AppError('HTTPS_REQUIRED', 'This API is served over HTTPS only: send the request to its https:// URL.'));
  });
}

export default fp(httpsOnlyPlugin, { name: 'https-only' });

/*
 * Kept (issue 15, bench/README.md "Stock pieces"): the stock piece is @fastify/helmet, and this plugin
 * keeps its interface (HelmetOptions, the `helmet` route option). Bench figure 1 on Node 24, same run,
 * 7 rounds, with @fastify/helmet registered in its place: 0.85 of the throughput and 0.55 in CPU per
 * request (it rebuilds helmet's middleware and reads request.routeOptions on every request).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import helmet, { type HelmetOptions } from 'helmet';

declare module 'fastify' {
  interface RouteShorthandOptions {
    /** helmet options that differ on this route from the API's (e.g. a cross-origin resource policy for images). */
    helmet?: HelmetOptions;
  }
}

/** One year, as HSTS preload lists and scanners expect. */
const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * JSON responses never load anything, so their policy forbids everything (OWASP's advice for REST APIs);
 * it only matters if a browser is tricked into rendering a response as a page.
 */
const API_DIRECTIVES = {
  'default-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"],
};

/**
 * The reference page (Scalar) runs its bundled script from our own origin (/docs/js/scalar.js) plus one
 * inline start-up script, which is allowed by its SHA-256 hash (computed from the page itself, see
 * pagePolicy) rather than by 'unsafe-inline'. Scalar injects its stylesheet and style attributes at run
 * time, hence 'unsafe-inline' for styles only. It fetches the OpenAPI document from this origin; fonts
 * come from the page's CSS or the system (withDefaultFonts is off, so nothing is loaded from a CDN).
 */
const PAGE_DIRECTIVES: Record<string, string[]> = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'style-src': ["'self'", "'unsafe-inline'"],
  'img-src': ["'self'", 'data:', 'blob:'],
  'font-src': ["'self'", 'data:'],
  'connect-src': ["'self'"],
  'worker-src': ["'self'", 'blob:'],
  'object-src': ["'none'"],
  'base-uri': ["'self'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
};

const INLINE_SCRIPT = /<script\b(?![^>]*\bsrc\s*=)[^>]*>([\s\S]*?)<\/script>/gi;

/**
 * PAGE_DIRECTIVES with the hash of every inline script of `html`, as browsers compute it over the exact text.
 * `connectOrigins` are other origins the page may call (the OpenAPI server entry, PUBLIC_URL, when the page is
 * reached under another name, e.g. the herokuapp.com one).
 */
export function pagePolicy(html: string, connectOrigins: string[] = []): string {
  const hashes = [...html.matchAll(INLINE_SCRIPT)].map(
    ([, body]) => `'sha256-${createHash('sha256').update(body ?? '').digest('base64')}'`,
  );
  const directives = {
    ...PAGE_DIRECTIVES,
    'script-src': [...PAGE_DIRECTIVES['script-src']!, ...hashes],
    'connect-src': [...PAGE_DIRECTIVES['connect-src']!, ...connectOrigins],
  };
  return Object.entries(directives)
    .map(([name, values]) => `${name} ${values.join(' ')}`)
    .join('; ');
}

/**
 * The headers helmet sends for `options`. They depend on the options alone, so they are worked out once,
 * by running helmet's middleware against a response that only records them: @fastify/helmet built the
 * whole middleware again on every request (options parsing, CSP serialisation, a dozen validated
 * setHeader calls), which cost GET /health/live a third of its throughput (bench/README.md, figure 1).
 */
export function helmetHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: string | number) {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err;
  });
  return headers;
}

const API_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: API_DIRECTIVES },
  strictTransportSecurity: false,
  xFrameOptions: { action: 'deny' },
};

/**
 * helmet's headers on every response (errors and 404s included), a deny-all CSP for the JSON API, a page
 * policy for the routes given to `servesHtmlPage`, and HSTS only when the request reached Heroku's router over HTTPS
 * (X-Forwarded-Proto, trusted one hop): HSTS on plain HTTP is ignored by browsers and would only confuse
 * local development. A route may change helmet options with its `helmet` route option.
 */
async function securityHeadersPlugin(app: FastifyInstance) {
  const apiHeaders = helmetHeaders(API_OPTIONS);

  // Every response, 404s and errors of earlier hooks included, starts with the API's headers. The hook
  // reads nothing of the route: request.routeOptions builds a new object on each access, so what differs
  // per route is done by hooks on those routes alone (below), and other routes never ask.
  const apiEntries = Object.entries(apiHeaders);
  app.addHook('onRequest', (request, reply, done) => {
    for (const [name, value] of apiEntries) reply.header(name, value);
    if (request.protocol === 'https') reply.header('strict-transport-security', HSTS);
    done();
  });

  app.addHook('onRoute', (route) => {
    const own = (route as { helmet?: HelmetOptions }).helmet;
    if (own) addOnSend(route, routeHeaders(apiHeaders, helmetHeaders({ ...API_OPTIONS, ...own } as HelmetOptions)));
  });
}

/**
 * For an onRoute hook: `route` is an HTML page (the /docs reference), sent with its page policy instead of the
 * API's; `connectOrigins` as in pagePolicy.
 */
export function servesHtmlPage(route: RouteOptions, connectOrigins: string[] = []): void {
  addOnSend(route, pageHeaders(connectOrigins));
}

type OnSend = (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) => void;

/** Adds a route-level onSend hook: it runs for every answer of that route, errors included. */
function addOnSend(route: RouteOptions, hook: OnSend) {
  const existing = route.onSend;
  route.onSend = [...(existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]), hook] as RouteOptions['onSend'];
}

/** A route's own helmet headers in place of the API's set in onRequest, including the ones it drops. */
function routeHeaders(apiHeaders: Record<string, string>, own: Record<string, string>): OnSend {
  const dropped = Object.keys(apiHeaders).filter((name) => !(name in own));
  return (_request, reply, payload, done) => {
    reply.headers(own);
    for (const name of dropped) reply.removeHeader(name);
    done(null, payload);
  };
}

/**
 * The page's HTML is rendered by its plugin, so the hashes are taken from the payload; it is the same
 * text on every request, so the policy is computed once per distinct page.
 */
function pageHeaders(connectOrigins: string[]): OnSend {
  const policies = new Map<string, string>();
  return (_request, reply, payload, done) => {
    const html = typeof payload === 'string' && String(reply.getHeader('content-type')).startsWith('text/html') ? payload : '';
    let policy = policies.get(html);
    if (policy === undefined) {
      policy = pagePolicy(html, connectOrigins);
      if (policies.size < 16) policies.set(html, policy);
    }
    // Replaces the API policy set on the reply in onRequest.
    reply.header('content-security-policy', policy);
    done(null, payload);
  };
}

export default fp(securityHeadersPlugin, { name: 'security-headers' });

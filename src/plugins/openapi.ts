import swagger from '@fastify/swagger';
import type { FastifyApiReferenceOptions } from '@scalar/fastify-api-reference';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { type Document, type OperationContract, contractFor, finishDocument } from './openapi-contract.js';
import { LIMITS } from './rate-limit.js';
import { servesHtmlPage } from './security-headers.js';

export const API_TITLE = "Kendall's Nails API";
export const DOCS_PREFIX = '/docs';

const DESCRIPTION = `Custom press-on nails: customers submit a PNG design, nail technicians review, price and make it,
both sides message on the order, and customers share designs in a public gallery.

**Envelope.** Success: \`{"success": true, "data": …}\`; lists add \`pagination\`. Errors:
\`{"success": false, "error": {"code", "message", "details"?}}\` with a stable UPPER_SNAKE \`code\`.

**Authentication.** \`Authorization: Bearer <Auth0 access token>\`. The role comes from the token's role claim.
In development without Auth0, \`POST /dev/token\` issues tokens from a local issuer.

**Strict input.** Unknown body fields and unknown query parameters are refused with 400 \`VALIDATION_ERROR\`
(a typo never silently does nothing). Invalid paging or sort values are refused, not clamped.

**Hidden resources.** Another customer's order, message thread or private design answers 404, never 403, so
that its existence is not revealed. A technician touching an order assigned to another technician gets 403.

**Idempotency.** Every creating \`POST\` (orders, reorders, messages, comments) accepts \`Idempotency-Key\` (1–255
printable characters, e.g. a UUID; keys are per user): a retry with the same key and body within 24 h replays the first response; the same key with a
different body gets 422 \`IDEMPOTENCY_KEY_REUSED\`; a retry while the first is still running gets 409. A replay answers with \`Idempotent-Replayed: true\`. A request
that failed is not remembered, so it can be retried with the same key.

**Rate limits.** Per minute: ${LIMITS.authenticated} requests per signed-in user (keyed by the token's subject, wherever
the requests come from), ${LIMITS.anonymous} per IP address without a valid token, and ${LIMITS.uploads} uploads per user
(\`POST /orders\`, \`PUT /orders/{id}/design\`; counted on top of the general limit). Every counted response carries
\`X-RateLimit-Limit\`, \`X-RateLimit-Remaining\` and \`X-RateLimit-Reset\` (seconds until the window ends); a refused one
is 429 \`RATE_LIMITED\` with \`Retry-After\` in seconds. Wait that long before retrying. Health, this document and
\`/docs\` are not limited.

**Overload.** 503 \`SERVICE_UNAVAILABLE\` with \`Retry-After\` means the service is overloaded and refused the request
before doing any work (retry after the delay), or gave up on a request that ran longer than 25 s, whose effect is then
unknown (retry a creation with the same \`Idempotency-Key\`).

**Browsers (CORS).** Only the web front end's configured origins may call the API from a browser, with credentials;
methods GET, POST, PUT, PATCH, DELETE; request headers \`Authorization\`, \`Content-Type\`, \`Idempotency-Key\`,
\`X-Request-ID\`; readable response headers \`X-Request-ID\`, \`Retry-After\`, \`X-RateLimit-*\`, \`Idempotent-Replayed\`.
Preflights may be cached for 12 h.`;

/**
 * The site icon of /docs (a nail-polish bottle in the brand's pink), served by the API itself so that the page's
 * request for it, and browsers' own request for /favicon.ico, never end in a 404.
 */
export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect x="12" y="2" width="8" height="11" rx="2" fill="#3a2a33"/><rect x="6" y="12" width="20" height="18" rx="5" fill="#e05a8d"/><rect x="10" y="16" width="4" height="9" rx="2" fill="#f7b6cf"/></svg>`;

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The document's server: PUBLIC_URL. A deployed app never advertises localhost (a client generated from its
 * document would call the developer's machine): without PUBLIC_URL it names its own origin, relatively.
 */
export function serverUrlFor(publicUrl: string, deployed: boolean): string {
  return deployed && LOCAL_HOSTS.has(new URL(publicUrl).hostname) ? '/' : publicUrl;
}

async function openapiPlugin(app: FastifyInstance, opts: { version: string; serverUrl: string; deployed: boolean }) {
  const contracts = new Map<string, OperationContract>();
  const serverUrl = serverUrlFor(opts.serverUrl, opts.deployed);
  // Every route registered after this plugin: operationId, security and its error statuses (openapi-contract.ts).
  app.addHook('onRoute', (route) => contractFor(route, contracts));
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: API_TITLE,
        version: opts.version,
        description: DESCRIPTION,
        contact: serverUrl === '/' ? { name: API_TITLE } : { name: API_TITLE, url: `${serverUrl}${DOCS_PREFIX}/` },
        license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
      },
      servers: [{ url: serverUrl, description: 'This deployment (PUBLIC_URL)' }],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An Auth0 access token (in development, one from POST /dev/token)' },
          streamTicket: {
            type: 'apiKey',
            in: 'query',
            name: 'ticket',
            description: 'GET /api/v1/stream only: a single-use ticket from POST /api/v1/stream/tickets, for EventSource, which cannot send headers',
          },
        },
      },
      tags: [
        { name: 'health', description: 'Liveness and dependency checks' },
        { name: 'auth', description: 'Sign-up, sign-in and technician invitations' },
        { name: 'users', description: 'My profile' },
        { name: 'orders', description: 'Orders, review, production and payment' },
        { name: 'messages', description: 'Conversation on an order' },
        { name: 'notifications', description: 'My in-app notifications (email preferences are under users)' },
        { name: 'payments', description: 'Stripe Checkout: the webhook Stripe calls' },
        { name: 'designs', description: 'The public gallery' },
        { name: 'comments', description: 'Comments on public designs' },
        { name: 'moderation', description: 'Reports on designs and comments, and the technicians’ moderation queue' },
        { name: 'live', description: 'My notifications as they happen (Server-Sent Events)' },
        { name: 'webhooks', description: 'Outgoing webhooks (Standard Webhooks) for technicians’ integrations, and their delivery log' },
        { name: 'files', description: 'Signed image links (embedded storage only)' },
        { name: 'development', description: 'Development-only token issuer' },
      ],
    },
    // Schemas added with an $id are components of that name (never def-0, def-1…).
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    transformObject: (document) => finishDocument((document as { openapiObject: unknown }).openapiObject as Document, contracts) as never,
  });

  app.get('/api/v1/openapi.json', { schema: { hide: true }, config: { access: 'public', rateLimit: false } }, async () =>
    app.swagger(),
  );

  // Scalar's routes take no route config: mark them here as a public HTML page outside the rate limits.
  app.addHook('onRoute', (route) => {
    if (route.url === DOCS_PREFIX || route.url.startsWith(`${DOCS_PREFIX}/`)) {
      route.config = { ...route.config, access: 'public', rateLimit: false };
      // "Test Request" calls the document's server entry (PUBLIC_URL), which may be another name than the page's.
      servesHtmlPage(route, [new URL(opts.serverUrl).origin]);
    }
  });
  const reference = lazyReference(app, {
    url: '/api/v1/openapi.json',
    title: API_TITLE,
    pageTitle: API_TITLE,
    hideClientButton: true,
    // Everything the page needs is served by this API: no fonts from Scalar's CDN, and none of its
    // hosted extras (AI agent, MCP generator, developer toolbar), which would call scalar.com.
    withDefaultFonts: false,
    agent: { disabled: true },
    mcp: { disabled: true },
    showDeveloperTools: 'never',
    favicon: '/favicon.svg',
    // "Test Request" starts with the bearer scheme chosen: paste a token (in development, from /dev/token) once.
    authentication: { preferredSecurityScheme: 'bearerAuth' },
  });
  for (const url of ['/favicon.svg', '/favicon.ico']) {
    app.get(url, { schema: { hide: true }, config: { access: 'public', rateLimit: false } }, async (_request, reply) =>
      reply.header('content-type', 'image/svg+xml').header('cache-control', 'public, max-age=86400').send(FAVICON_SVG),
    );
  }
  // Scalar's two routes (given `url`, and with trailing slashes ignored): the page, which sends
  // /docs to /docs/, and its script.
  app.get(`${DOCS_PREFIX}/`, { schema: { hide: true } }, reference);
  app.get(`${DOCS_PREFIX}/js/scalar.js`, { schema: { hide: true } }, reference);
}

/**
 * Scalar's Fastify plugin is a 4.4 MB module (its browser bundle inlined as a string) that also loads an
 * OpenAPI parser, YAML and Ajv: 0.45 s of every start-up (bench figure 6), for a page most processes never
 * serve. The plugin is loaded on the first visit instead, into a Fastify instance of its own that answers
 * these routes through inject(); this app's hooks (security headers, the page's CSP, logs) still apply.
 */
function lazyReference(app: FastifyInstance, configuration: FastifyApiReferenceOptions['configuration']) {
  let reference: Promise<FastifyInstance> | undefined;
  app.addHook('onClose', async () => {
    await (await reference?.catch(() => undefined))?.close();
  });
  const load = () =>
    (reference ??= (async () => {
      const { default: apiReference } = await import('@scalar/fastify-api-reference');
      const inner = Fastify({ logger: false, routerOptions: { ignoreTrailingSlash: true } });
      await inner.register(apiReference, { routePrefix: DOCS_PREFIX, configuration });
      await inner.ready();
      return inner;
    })().catch((err: unknown) => {
      reference = undefined;
      throw err;
    }));
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const answer = await (await load()).inject({ method: request.method === 'HEAD' ? 'HEAD' : 'GET', url: request.url });
    for (const name of ['content-type', 'location']) {
      const value = answer.headers[name];
      if (typeof value === 'string') reply.header(name, value);
    }
    // As text: the page's CSP is computed from the HTML string (security-headers.ts, pageHeaders).
    return reply.code(answer.statusCode).send(answer.payload);
  };
}

export default fp(openapiPlugin, { name: 'openapi' });

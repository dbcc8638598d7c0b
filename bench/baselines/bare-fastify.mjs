// Informational (figure 1i): Fastify 5 alone writing GET /api/v1/health/live's response byte for byte as
// the API does (the same headers as bare-http.mjs, set in the handler) through the same response schema, no
// hook, no logger. Against bare-http.mjs it is what the framework itself costs, so that figure 1 can be read
// as Fastify's share plus what the API's own hooks add.
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';

const FIXED = {
  vary: 'Origin',
  'content-security-policy': "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'DENY',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
};
const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{8,200}$/;

const app = Fastify({
  logger: false,
  keepAliveTimeout: 95_000,
  genReqId: (req) => {
    const given = req.headers['x-request-id'];
    return given && VALID_REQUEST_ID.test(given) ? given : randomUUID();
  },
});
const schema = {
  response: {
    200: {
      type: 'object',
      properties: { success: { const: true }, data: { type: 'object', properties: { status: { const: 'ok' } } } },
    },
  },
};
app.get('/api/v1/health/live', { schema }, async (request, reply) => {
  reply.header('x-request-id', request.id).headers(FIXED);
  return { success: true, data: { status: 'ok' } };
});
await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
console.log(JSON.stringify({ port: app.server.address().port }));
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));

// Informational (figure 1i): Fastify 5 alone answering GET /api/v1/health/live's JSON through the same
// response schema, no hook, no logger. Against bare-http.mjs it is what the framework itself costs, so that
// figure 1 can be read as Fastify's share plus what the API's own hooks add.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
const schema = {
  response: {
    200: {
      type: 'object',
      properties: { success: { const: true }, data: { type: 'object', properties: { status: { const: 'ok' } } } },
    },
  },
};
app.get('/api/v1/health/live', { schema }, async () => ({ success: true, data: { status: 'ok' } }));
await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
console.log(JSON.stringify({ port: app.server.address().port }));
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));

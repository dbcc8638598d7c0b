import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Config } from '../../config.js';
import { Envelope, errorResponses, ok } from '../../lib/envelope.js';
import { requireUser } from '../../plugins/auth.js';
import { isUsableEventId } from './live.domain.js';
import { StreamBody, StreamHeaders, StreamQuery, StreamTicketSchema } from './live.schemas.js';
import type { LiveHub, StreamSink, Tickets } from './live.service.js';

export interface LiveRoutesOptions {
  hub: LiveHub;
  tickets: Tickets;
  settings: Pick<Config['stream'], 'heartbeatMs' | 'retryMs' | 'ticketTtlS'>;
}

export const liveRoutes: FastifyPluginAsyncTypebox<LiveRoutesOptions> = async (app, { hub, tickets, settings }) => {
  app.addSchema(StreamTicketSchema);

  // Before the server waits for open connections to finish (onClose would be too late: it runs after that wait).
  app.addHook('preClose', async () => hub.endAll());

  app.post(
    '/api/v1/stream/tickets',
    {
      schema: {
        tags: ['live'],
        operationId: 'createStreamTicket',
        summary: 'A ticket to open the live stream',
        description:
          "Browsers' EventSource cannot send an Authorization header: trade the access token for a ticket and open " +
          `\`GET /api/v1/stream?ticket=…\` within ${settings.ticketTtlS} s. A ticket works once, on any server.`,
        response: { 201: Envelope(Type.Ref('StreamTicket')), ...errorResponses(401, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND'] },
    },
    async (request, reply) => reply.code(201).send(ok(await tickets.issue(requireUser(request)))),
  );

  app.get(
    '/api/v1/stream',
    {
      // A HEAD request would hold a stream open with nothing to read.
      exposeHeadRoute: false,
      schema: {
        tags: ['live'],
        operationId: 'openStream',
        summary: 'My notifications, live (Server-Sent Events)',
        description:
          'Signed in with `Authorization: Bearer` or `?ticket=` (POST /api/v1/stream/tickets). Pushes each new notification ' +
          'as it happens, whichever server the client is connected to. On reconnect, `Last-Event-ID` (or `?last_event_id=`) ' +
          `sends what was missed first. A comment line every ${Math.round(settings.heartbeatMs / 1000)} s keeps proxies from closing an idle stream; ` +
          'the stream ends when the server restarts and the client reconnects after the `retry:` hint.',
        querystring: StreamQuery,
        headers: StreamHeaders,
        response: { 200: { description: 'An event stream', content: { 'text/event-stream': { schema: StreamBody } } }, ...errorResponses(401, 404, 429, 503) },
      },
      config: {
        access: 'authenticated',
        ticket: true,
        // Open for as long as the client listens: never cut by the request time limit (plugins/handler-timeout.ts).
        handlerTimeout: false,
        errors: ['USER_NOT_FOUND', 'INVALID_STREAM_TICKET', 'TOO_MANY_STREAMS', 'STREAM_CAPACITY_REACHED'],
      },
    },
    async (request, reply) => {
      const user = requireUser(request);
      await hub.start();
      const requested = request.headers['last-event-id'] ?? request.query.last_event_id;
      const lastEventId = requested && isUsableEventId(requested) ? requested : undefined;
      const res = reply.raw;
      const sink: StreamSink = {
        write: (chunk) => void res.write(chunk),
        get buffered() {
          return res.writableLength;
        },
        end: () => {
          if (!res.writableEnded) res.end();
        },
      };
      // Refused (429, 503) here, before the response is taken over, so the error goes out in the envelope.
      const session = hub.open(user.id, sink);
      reply.hijack();
      // The connection's idle timeout (REQUEST_TIMEOUT_MS) would cut a quiet stream; heartbeats keep the proxies happy.
      request.raw.socket?.setTimeout?.(0);
      res.writeHead(200, {
        // What the app's hooks set on the reply (request id, security headers, CORS) goes out too.
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        // nginx and similar proxies would otherwise hold events back in their buffers.
        'x-accel-buffering': 'no',
        // The socket is not reused after a stream: ending streams is how the server lets go of connections on SIGTERM.
        connection: 'close',
      });
      res.write(`retry: ${settings.retryMs}\n\n`);
      const heartbeat = setInterval(() => session.heartbeat(), settings.heartbeatMs);
      const finish = () => {
        clearInterval(heartbeat);
        session.end();
      };
      // The response's close, not the request's: a request's 'close' comes as soon as its (empty) body is read.
      res.on('close', finish);
      res.on('error', finish);
      if (lastEventId) await session.resume(lastEventId);
    },
  );
};

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Envelope, IdParams, errorResponses, ok } from '../../lib/envelope.js';
import { requireUser } from '../../plugins/auth.js';
import { THREAD_PAGE } from './threads.domain.js';
import {
  CursorPaginationSchema,
  ThreadEventSchema,
  ThreadItemSchema,
  ThreadMessageSchema,
  ThreadQuery,
  ThreadReadBody,
  ThreadReadMarkerSchema,
} from './threads.schemas.js';
import type { ThreadsService } from './threads.service.js';

const access =
  'Whoever may read the order (as GET /orders/{id}): its customer, its technician, any technician while it is unassigned; ' +
  "another customer's order answers 404, an order assigned to another technician 403 NOT_ASSIGNED. Messages are the " +
  "conversation's: a technician reading an unassigned order sees its events only.";

const ThreadPage = Type.Object(
  { success: Type.Literal(true), data: Type.Array(Type.Ref('ThreadItem')), pagination: Type.Ref('CursorPagination') },
  { title: 'ThreadPage' },
);

export const threadsRoutes: FastifyPluginAsyncTypebox<{ threads: ThreadsService }> = async (app, { threads }) => {
  app.addSchema(ThreadEventSchema);
  app.addSchema(ThreadMessageSchema);
  app.addSchema(ThreadItemSchema);
  app.addSchema(CursorPaginationSchema);
  app.addSchema(ThreadReadMarkerSchema);

  app.get(
    '/api/v1/orders/:id/thread',
    {
      schema: {
        tags: ['messages'],
        operationId: 'getOrderThread',
        summary: 'The order’s messages and status events, oldest first',
        description:
          `${access} Items are typed \`message\` or \`event\` and ordered by time (an event before a message of the same instant). ` +
          `Paged by cursor, not by page number, so that new items never shift a page: \`limit\` (1–${THREAD_PAGE.max}, default ${THREAD_PAGE.default}), ` +
          'then `cursor` = `pagination.nextCursor` until `hasNext` is false. A cursor stays valid for good; one this API did not give → 400 VALIDATION_ERROR. ' +
          'Emails never appear; prices only as the order shows them (the acceptance note).',
        params: IdParams,
        querystring: ThreadQuery,
        response: { 200: ThreadPage, ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND', 'ORDER_NOT_FOUND', 'NOT_ASSIGNED'] },
    },
    async (request) => {
      const { items, pagination } = await threads.read(requireUser(request), request.params.id, request.query);
      return { success: true as const, data: items, pagination };
    },
  );

  app.put(
    '/api/v1/orders/:id/thread/read',
    {
      schema: {
        tags: ['messages'],
        operationId: 'markOrderThreadRead',
        summary: 'Mark the order’s thread read',
        description:
          `${access} Moves my read marker to \`item_id\` (that item's instant), to \`read_at\`, or, with neither (or no body), to now. ` +
          'A marker only moves forward (an earlier point leaves it where it is) and never past now. Answers the marker and the unread count ' +
          'that every order then shows me (`unread_count`: items by others after the marker).',
        params: IdParams,
        body: Type.Union([ThreadReadBody, Type.Null()], { description: 'Optional; no body marks everything up to now read' }),
        response: { 200: Envelope(Type.Ref('ThreadReadMarker')), ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND', 'ORDER_NOT_FOUND', 'NOT_ASSIGNED'] },
    },
    async (request) => ok(await threads.markRead(requireUser(request), request.params.id, request.body ?? {})),
  );
};

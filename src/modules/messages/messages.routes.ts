import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Envelope, IdParams, PageEnvelope, PageQuery, errorResponses, okPage, pageInfo, paging } from '../../lib/envelope.js';
import { IdempotencyHeaders, idempotencyOf, sendCreated } from '../../lib/idempotency.js';
import { requireUser } from '../../plugins/auth.js';
import type { MessagesService } from './messages.service.js';
import { MESSAGE_MAX_LENGTH } from './messages.domain.js';

export const MessageSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    order_id: Type.String({ format: 'uuid' }),
    sender: Type.Ref('UserSummary'),
    text: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Message', title: 'Message' },
);

const access = "Only the order's customer and its assigned technician. Other customers get 404; other technicians 403.";

export const messagesRoutes: FastifyPluginAsyncTypebox<{ messages: MessagesService }> = async (app, { messages }) => {
  app.addSchema(MessageSchema);

  app.get(
    '/api/v1/orders/:id/messages',
    {
      schema: {
        tags: ['messages'],
        operationId: 'listMessages',
        summary: 'The conversation on an order, oldest first',
        description: access,
        params: IdParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: PageEnvelope(Type.Ref('Message')), ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND', 'ORDER_NOT_FOUND', 'NOT_ASSIGNED'] },
    },
    async (request) => {
      const { page, limit, offset } = paging(request.query);
      const { items, total } = await messages.list(requireUser(request), request.params.id, limit, offset);
      return okPage(items, pageInfo(page, limit, total));
    },
  );

  app.post(
    '/api/v1/orders/:id/messages',
    {
      schema: {
        tags: ['messages'],
        operationId: 'postMessage',
        summary: 'Post a message',
        description: `${access} Text is 1–${MESSAGE_MAX_LENGTH} characters after trimming. Accepts Idempotency-Key.`,
        params: IdParams,
        headers: IdempotencyHeaders,
        body: Type.Object({ text: Type.String({ minLength: 1, maxLength: MESSAGE_MAX_LENGTH }) }, { additionalProperties: false }),
        response: { 201: Envelope(Type.Ref('Message')), ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND', 'ORDER_NOT_FOUND', 'NOT_ASSIGNED'] },
    },
    async (request, reply) => {
      const { id } = request.params;
      const result = await messages.post(requireUser(request), id, request.body.text, idempotencyOf(request, id, request.body));
      return sendCreated(reply, result, result.message);
    },
  );
};

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Envelope, IdParams, Uuid, PageEnvelope, PageQuery, errorResponses, okPage, pageInfo, paging } from '../../lib/envelope.js';
import { IdempotencyHeaders, idempotencyOf, sendCreated } from '../../lib/idempotency.js';
import { requireUser } from '../../plugins/auth.js';
import { CommentBody, CommentSchema } from './comments.schemas.js';
import type { CommentsService } from './comments.service.js';
import { COMMENT_MAX_LENGTH } from './comments.domain.js';

export const commentsRoutes: FastifyPluginAsyncTypebox<{ comments: CommentsService }> = async (app, { comments }) => {
  app.addSchema(CommentSchema);

  app.get(
    '/api/v1/designs/:id/comments',
    {
      schema: {
        tags: ['comments'],
        operationId: 'listComments',
        summary: 'Comments on a public design, oldest first',
        description: 'Anyone may read. Private, removed or unknown designs → 404.',
        params: IdParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: PageEnvelope(Type.Ref('Comment')), ...errorResponses(400, 404) },
      },
      config: { access: 'public', errors: ['DESIGN_NOT_FOUND'] },
    },
    async (request) => {
      const { page, limit, offset } = paging(request.query);
      const { items, total } = await comments.list(request.params.id, limit, offset);
      return okPage(items, pageInfo(page, limit, total));
    },
  );

  app.post(
    '/api/v1/designs/:id/comments',
    {
      schema: {
        tags: ['comments'],
        operationId: 'postComment',
        summary: 'Comment on a public design',
        description:
          `Signed-in customers only (technicians → 403, anonymous → 401). Text 1–${COMMENT_MAX_LENGTH} characters after trimming. ` +
          'Private, removed or unknown designs → 404. Accepts Idempotency-Key.',
        params: IdParams,
        headers: IdempotencyHeaders,
        body: CommentBody,
        response: { 201: Envelope(Type.Ref('Comment')), ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'customer', errors: ['DESIGN_NOT_FOUND'] },
    },
    async (request, reply) => {
      const { id } = request.params;
      const result = await comments.post(requireUser(request), id, request.body.text, idempotencyOf(request, id, request.body));
      return sendCreated(reply, result, result.comment);
    },
  );

  app.delete(
    '/api/v1/designs/:id/comments/:commentId',
    {
      schema: {
        tags: ['comments'],
        operationId: 'deleteComment',
        summary: 'Delete my comment',
        description: 'The author only (others → 404, technicians → 403). A soft delete: gone from the list and from `comment_count`; reports on it stay.',
        params: Type.Object({ id: Uuid, commentId: Uuid }, { additionalProperties: false }),
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'customer', errors: ['DESIGN_NOT_FOUND', 'COMMENT_NOT_FOUND'] },
    },
    async (request, reply) => {
      await comments.remove(requireUser(request), request.params.id, request.params.commentId);
      return reply.code(204).send(null);
    },
  );
};

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { notFound, validationError } from '../../errors.js';
import { Envelope, IdParams, PageEnvelope, PageQuery, errorResponses, ok, okPage, pageInfo, paging } from '../../lib/envelope.js';
import { requireUser } from '../../plugins/auth.js';
import type { DesignsService } from '../designs/designs.service.js';
import type { CommentsRepository } from './comments.repository.js';

export const CommentSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    design_id: Type.String({ format: 'uuid' }),
    author: Type.Ref('UserSummary'),
    text: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Comment', title: 'Comment' },
);

type Row = Awaited<ReturnType<CommentsRepository['list']>>['rows'][number];
const render = ({ comment, authorName }: Row) => ({
  id: comment.id,
  design_id: comment.designId,
  author: { id: comment.authorId, name: authorName },
  text: comment.text,
  created_at: comment.createdAt.toISOString(),
});

/** Comments live only on public designs: anything else answers 404, as if the design did not exist. */
async function publicDesign(designs: DesignsService, id: string) {
  const row = await designs.visible(id, null);
  if (!row.design.isPublic) throw notFound('DESIGN_NOT_FOUND', 'No such design in the gallery.');
  return row;
}

export const commentsRoutes: FastifyPluginAsyncTypebox<{ comments: CommentsRepository; designs: DesignsService }> = async (
  app,
  { comments, designs },
) => {
  app.addSchema(CommentSchema);

  app.get(
    '/api/v1/designs/:id/comments',
    {
      schema: {
        tags: ['comments'],
        summary: 'Comments on a public design, oldest first',
        params: IdParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: PageEnvelope(Type.Ref('Comment')), ...errorResponses(400, 404) },
      },
      config: { access: 'public' },
    },
    async (request) => {
      const { page, limit, offset } = paging(request.query);
      await publicDesign(designs, request.params.id);
      const { rows, total } = await comments.list(request.params.id, limit, offset);
      return okPage(rows.map(render), pageInfo(page, limit, total));
    },
  );

  app.post(
    '/api/v1/designs/:id/comments',
    {
      schema: {
        tags: ['comments'],
        summary: 'Comment on a public design',
        description: 'Signed-in customers only (technicians → 403, anonymous → 401). Text 1–1000 characters after trimming.',
        params: IdParams,
        body: Type.Object({ text: Type.String({ minLength: 1, maxLength: 1000 }) }, { additionalProperties: false }),
        response: { 201: Envelope(Type.Ref('Comment')), ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'customer' },
    },
    async (request, reply) => {
      const user = requireUser(request);
      const text = request.body.text.trim();
      if (!text) throw validationError('Write a comment.', { text: 'must not be blank' });
      await publicDesign(designs, request.params.id);
      const comment = await comments.insert({ designId: request.params.id, authorId: user.id, text });
      return reply.code(201).send(ok(render({ comment, authorName: user.name })));
    },
  );
};

import type { Database } from '../../db/client.js';
import { fail, validationError } from '../../errors.js';
import { type IdempotencyInput, runIdempotent } from '../../lib/idempotency.js';
import type { DesignsService } from '../designs/designs.service.js';
import type { UserRow } from '../users/users.repository.js';
import type { CommentWithAuthor, CommentsRepository } from './comments.repository.js';

const designNotFound = () => fail('DESIGN_NOT_FOUND', 'No such design in the gallery.');

const render = ({ comment, authorName }: CommentWithAuthor) => ({
  id: comment.id,
  design_id: comment.designId,
  author: { id: comment.authorId, name: authorName },
  text: comment.text,
  created_at: comment.createdAt.toISOString(),
});

/** Comments live only on public designs: anything else answers 404, as if the design did not exist. */
export function createCommentsService(deps: { db: Database; comments: CommentsRepository; designs: DesignsService }) {
  const { comments, designs } = deps;
  return {
    async list(designId: string, limit: number, offset: number) {
      const row = await designs.visible(designId, null);
      if (!row.design.isPublic) throw designNotFound();
      const { rows, total } = await comments.list(designId, limit, offset);
      return { items: rows.map(render), total };
    },

    async post(author: UserRow, designId: string, text: string, idem: IdempotencyInput) {
      const trimmed = text.trim();
      if (!trimmed) throw validationError('Write a comment.', { text: 'must not be blank' });
      const result = await runIdempotent(
        deps.db,
        { userId: author.id, key: idem.key, scope: `POST /designs/${designId}/comments`, requestHash: idem.requestHash },
        async () => {
          const comment = await comments.insertIfInGallery({ designId, authorId: author.id, text: trimmed });
          if (!comment) throw designNotFound();
          return comment;
        },
      );
      const row = result.value ? { comment: result.value, authorName: author.name } : await comments.findById(result.resourceId);
      return { status: result.status, replayed: result.replayed, comment: render(row!) };
    },
  };
}

export type CommentsService = ReturnType<typeof createCommentsService>;

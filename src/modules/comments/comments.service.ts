import type { Database } from '../../db/client.js';
import type { Routed } from '../../db/reader.js';
import { fail, validationError } from '../../errors.js';
import { type IdempotencyInput, runIdempotent } from '../../lib/idempotency.js';
import type { DesignsService } from '../designs/designs.service.js';
import type { Notify } from '../notifications/outbox.js';
import type { UserRow } from '../users/users.repository.js';
import type { CommentWithAuthor, CommentsRepository } from './comments.repository.js';
import type { DesignsRepository } from '../designs/designs.repository.js';

const commentNotFound = () => fail('COMMENT_NOT_FOUND', 'No such comment of yours on this design.');
const designNotFound = () => fail('DESIGN_NOT_FOUND', 'No such design in the gallery.');

const render = ({ comment, authorName }: CommentWithAuthor) => ({
  id: comment.id,
  design_id: comment.designId,
  author: { id: comment.authorId, name: authorName },
  text: comment.text,
  created_at: comment.createdAt.toISOString(),
});

/** Comments live only on public designs: anything else answers 404, as if the design did not exist. */
export function createCommentsService(deps: {
  db: Database;
  comments: CommentsRepository;
  designs: DesignsService;
  /** The design's comment counter, bumped in the comment's transaction. */
  designCounts: Pick<DesignsRepository, 'countIfInGallery' | 'shiftCommentCount'>;
  /** Anonymous reads (comment lists): on the follower when there is a fresh one (db/reader.ts). */
  anonymous: Routed<{ designs: DesignsRepository; comments: CommentsRepository }>;
  /** Records comment.created for the design's owner, in the comment's transaction. */
  notify?: Notify;
}) {
  const { comments, designs } = deps;
  return {
    async list(designId: string, limit: number, offset: number) {
      // The design and its comments from the same database, so the page matches the design it is for.
      const { rows, total } = await deps.anonymous.read(async (on) => {
        if (!designs.inGallery(await on.designs.findById(designId))) throw designNotFound();
        return on.comments.list(designId, limit, offset);
      });
      return { items: rows.map(render), total };
    },

    async post(author: UserRow, designId: string, text: string, idem: IdempotencyInput) {
      const trimmed = text.trim();
      if (!trimmed) throw validationError('Write a comment.', { text: 'must not be blank' });
      const result = await runIdempotent(
        deps.db,
        { userId: author.id, key: idem.key, scope: `POST /designs/${designId}/comments`, requestHash: idem.requestHash },
        async () => {
          // The counter first: its conditional update locks the design row, so a comment can neither land on
          // a design its owner is hiding at that moment nor leave the count behind.
          return deps.db.transaction(async (tx) => {
            if (!(await deps.designCounts.countIfInGallery(designId, 'commentCount', tx))) throw designNotFound();
            const comment = await comments.insert({ designId, authorId: author.id, text: trimmed }, tx);
            await deps.notify?.(
              { type: 'comment.created', actorId: author.id, designId, data: { comment_id: comment.id, author_name: author.name, text: comment.text } },
              tx,
            );
            return comment;
          });
        },
      );
      // A replay is answered only while the design is still in the gallery (hidden or removed since → 404).
      if (result.replayed) await designs.visible(designId, null);
      const row = result.value ? { comment: result.value, authorName: author.name } : await comments.findById(result.resourceId);
      return { status: result.status, replayed: result.replayed, comment: render(row!) };
    },

    /** The author's soft delete, whatever became of the design since; not theirs, or already deleted → 404. */
    async remove(author: UserRow, designId: string, commentId: string) {
      await deps.db.transaction(async (tx) => {
        const deleted = await comments.softDelete(commentId, designId, author.id, tx);
        if (!deleted) throw commentNotFound();
        if (deleted.wasShown) await deps.designCounts.shiftCommentCount(designId, -1, tx);
      });
    },
  };
}

export type CommentsService = ReturnType<typeof createCommentsService>;

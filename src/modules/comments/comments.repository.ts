import { and, asc, eq, sql } from '../../db/orm.js';
import type { Database, Executor } from '../../db/client.js';
import { comments, designs, users } from '../../db/schema.js';
import { inGallery } from '../designs/designs.repository.js';

export type CommentWithAuthor = { comment: typeof comments.$inferSelect; authorName: string };

export function createCommentsRepository(db: Database) {
  return {
    async list(designId: string, limit: number, offset: number, tx: Executor = db) {
      const where = eq(comments.designId, designId);
      const [rows, [count]] = await Promise.all([
        tx
          .select({ comment: comments, authorName: users.name })
          .from(comments)
          .innerJoin(users, eq(users.id, comments.authorId))
          .where(where)
          .orderBy(asc(comments.createdAt), asc(comments.id))
          .limit(limit)
          .offset(offset),
        tx.select({ total: sql<number>`count(*)::int` }).from(comments).where(where),
      ]);
      return { rows, total: count?.total ?? 0 };
    },

    async findById(id: string, tx: Executor = db): Promise<CommentWithAuthor | undefined> {
      const [row] = await tx
        .select({ comment: comments, authorName: users.name })
        .from(comments)
        .innerJoin(users, eq(users.id, comments.authorId))
        .where(eq(comments.id, id))
        .limit(1);
      return row;
    },

    /**
     * Adds a comment only while the design is in the gallery. The counter is bumped first, by a
     * conditional update that also locks the design row, so a comment can neither land on a design
     * its owner is hiding at that moment nor leave the count behind. Undefined when not in the gallery.
     */
    async insertIfInGallery(values: { designId: string; authorId: string; text: string }) {
      return db.transaction(async (tx) => {
        const bumped = await tx
          .update(designs)
          .set({ commentCount: sql`${designs.commentCount} + 1` })
          .where(and(eq(designs.id, values.designId), inGallery))
          .returning({ id: designs.id });
        if (bumped.length === 0) return undefined;
        const [row] = await tx.insert(comments).values(values).returning();
        return row!;
      });
    },
  };
}

export type CommentsRepository = ReturnType<typeof createCommentsRepository>;

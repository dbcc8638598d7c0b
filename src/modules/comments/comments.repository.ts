import { and, asc, eq, isNull, sql } from '../../db/orm.js';
import type { Database, Executor } from '../../db/client.js';
import { comments, users } from '../../db/schema.js';

export type CommentWithAuthor = { comment: typeof comments.$inferSelect; authorName: string };

export function createCommentsRepository(db: Database) {
  return {
    async list(designId: string, limit: number, offset: number, tx: Executor = db) {
      // Deleted by their author or hidden by moderation: gone from the list and from comment_count.
      const where = and(eq(comments.designId, designId), isNull(comments.deletedAt), isNull(comments.hiddenAt));
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

    /** The author's soft delete; true when it was shown until now (so the design's count goes down by one). */
    async softDelete(id: string, designId: string, authorId: string, tx: Executor): Promise<{ wasShown: boolean } | undefined> {
      const [row] = await tx
        .update(comments)
        .set({ deletedAt: sql`now()` })
        .where(and(eq(comments.id, id), eq(comments.designId, designId), eq(comments.authorId, authorId), isNull(comments.deletedAt)))
        .returning({ hiddenAt: comments.hiddenAt });
      return row && { wasShown: row.hiddenAt === null };
    },

    async insert(values: { designId: string; authorId: string; text: string }, tx: Executor): Promise<typeof comments.$inferSelect> {
      const [row] = await tx.insert(comments).values(values).returning();
      return row!;
    },
  };
}

export type CommentsRepository = ReturnType<typeof createCommentsRepository>;

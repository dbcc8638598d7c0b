import { asc, eq, sql } from '../../db/orm.js';
import type { Database, Executor } from '../../db/client.js';
import { comments, users } from '../../db/schema.js';

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

    async insert(values: { designId: string; authorId: string; text: string }, tx: Executor): Promise<typeof comments.$inferSelect> {
      const [row] = await tx.insert(comments).values(values).returning();
      return row!;
    },
  };
}

export type CommentsRepository = ReturnType<typeof createCommentsRepository>;

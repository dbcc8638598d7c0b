import { asc, eq, sql } from 'drizzle-orm';
import type { Database, Executor } from '../../db/client.js';
import { comments, designs, users } from '../../db/schema.js';

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
    /** The comment and the design's counter change together, so the count never drifts. */
    async insert(values: { designId: string; authorId: string; text: string }) {
      return db.transaction(async (tx) => {
        const [row] = await tx.insert(comments).values(values).returning();
        await tx
          .update(designs)
          .set({ commentCount: sql`${designs.commentCount} + 1` })
          .where(eq(designs.id, values.designId));
        return row!;
      });
    },
  };
}

export type CommentsRepository = ReturnType<typeof createCommentsRepository>;

import { and, asc, eq, isNull, sql } from '../../db/orm.js';
import type { Database, Executor } from '../../db/client.js';
import { comments, designs, moderationActions, reports, users } from '../../db/schema.js';
import { inGallery } from '../designs/designs.repository.js';
import type { ModerationAction, ReportReason, ReportStatus } from './moderation.domain.js';

/** What a report or a decision is about: a design, or one comment on it. */
export interface Item {
  designId: string;
  commentId: string | null;
}

const onItem = (table: typeof reports | typeof moderationActions, item: Item) =>
  and(eq(table.designId, item.designId), item.commentId ? eq(table.commentId, item.commentId) : isNull(table.commentId))!;

export type ReportRow = typeof reports.$inferSelect;

export function createModerationRepository(db: Database) {
  return {
    /**
     * Locks the reported item while it is shown (a design in the gallery; a comment neither deleted nor
     * hidden, on such a design), so concurrent reports of it are counted one after another. False when
     * it is not shown.
     */
    async lockShown(item: Item, tx: Executor): Promise<boolean> {
      if (item.commentId) {
        const [row] = await tx
          .select({ id: comments.id })
          .from(comments)
          .innerJoin(designs, eq(designs.id, comments.designId))
          .where(and(eq(comments.id, item.commentId), eq(comments.designId, item.designId), isNull(comments.deletedAt), isNull(comments.hiddenAt), inGallery))
          .for('update', { of: comments })
          .limit(1);
        return Boolean(row);
      }
      const [row] = await tx.select({ id: designs.id }).from(designs).where(and(eq(designs.id, item.designId), inGallery)).for('update').limit(1);
      return Boolean(row);
    },

    /** A new report, or undefined when this user already reported the item (the unique indexes). */
    async insertReport(values: Item & { reporterId: string; reason: ReportReason; text: string | null }, tx: Executor): Promise<ReportRow | undefined> {
      const [row] = await tx.insert(reports).values(values).onConflictDoNothing().returning();
      return row;
    },

    async openReports(item: Item, tx: Executor): Promise<number> {
      const [row] = await tx
        .select({ n: sql<number>`count(*)::int` })
        .from(reports)
        .where(and(onItem(reports, item), eq(reports.status, 'open')));
      return Number(row?.n ?? 0);
    },

    /** Hides or shows the item; false when it already was so (or, for a comment, its author deleted it). */
    async setHidden(item: Item, hidden: boolean, tx: Executor): Promise<boolean> {
      const hiddenAt = hidden ? sql`now()` : null;
      if (item.commentId) {
        const rows = await tx
          .update(comments)
          .set({ hiddenAt })
          .where(
            and(
              eq(comments.id, item.commentId),
              eq(comments.designId, item.designId),
              isNull(comments.deletedAt),
              hidden ? isNull(comments.hiddenAt) : sql`${comments.hiddenAt} is not null`,
            ),
          )
          .returning({ id: comments.id });
        return rows.length > 0;
      }
      const rows = await tx
        .update(designs)
        .set({ hiddenAt })
        .where(and(eq(designs.id, item.designId), hidden ? isNull(designs.hiddenAt) : sql`${designs.hiddenAt} is not null`))
        .returning({ id: designs.id });
      return rows.length > 0;
    },

    /** The item as a technician may act on it: it exists (a design not removed by its owner; a comment not deleted). */
    async findItem(item: Item, tx: Executor = db): Promise<{ hidden: boolean } | undefined> {
      if (item.commentId) {
        const [row] = await tx
          .select({ hiddenAt: comments.hiddenAt })
          .from(comments)
          .where(and(eq(comments.id, item.commentId), eq(comments.designId, item.designId), isNull(comments.deletedAt)))
          .limit(1);
        return row && { hidden: row.hiddenAt !== null };
      }
      const [row] = await tx
        .select({ hiddenAt: designs.hiddenAt })
        .from(designs)
        .where(and(eq(designs.id, item.designId), isNull(designs.removedAt)))
        .limit(1);
      return row && { hidden: row.hiddenAt !== null };
    },

    /** Closes the item's open reports with the decision taken on it. */
    async closeReports(item: Item, status: Exclude<ReportStatus, 'open'>, tx: Executor): Promise<number> {
      const rows = await tx
        .update(reports)
        .set({ status })
        .where(and(onItem(reports, item), eq(reports.status, 'open')))
        .returning({ id: reports.id });
      return rows.length;
    },

    async recordAction(values: Item & { moderatorId: string | null; action: ModerationAction; note: string }, tx: Executor) {
      const [row] = await tx.insert(moderationActions).values(values).returning();
      return row!;
    },

    /** The queue: reports in one status, oldest first, with the reporter's name and the item's state. */
    async queue(status: ReportStatus, limit: number, offset: number, tx: Executor = db) {
      const where = eq(reports.status, status);
      const [rows, [count]] = await Promise.all([
        tx
          .select({
            report: reports,
            reporterName: users.name,
            designHidden: sql<boolean>`${designs.hiddenAt} is not null`,
            commentHidden: sql<boolean | null>`${comments.hiddenAt} is not null`,
            commentText: comments.text,
          })
          .from(reports)
          .innerJoin(users, eq(users.id, reports.reporterId))
          .innerJoin(designs, eq(designs.id, reports.designId))
          .leftJoin(comments, eq(comments.id, reports.commentId))
          .where(where)
          .orderBy(asc(reports.createdAt), asc(reports.id))
          .limit(limit)
          .offset(offset),
        tx.select({ total: sql<number>`count(*)::int` }).from(reports).where(where),
      ]);
      return { rows, total: Number(count?.total ?? 0) };
    },
  };
}

export type ModerationRepository = ReturnType<typeof createModerationRepository>;

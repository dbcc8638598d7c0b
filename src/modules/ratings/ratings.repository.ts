import { and, eq, sql } from '../../db/orm.js';
import type { Database, Executor } from '../../db/client.js';
import { orderRatings, orders } from '../../db/schema.js';
import { RATING_EDITABLE_DAYS } from './ratings.domain.js';

export type RatingRow = typeof orderRatings.$inferSelect;

export function createRatingsRepository(db: Database) {
  return {
    /** The customer's delivered order, as ratings need it; undefined when it is not theirs. */
    async findOwnOrder(orderId: string, customerId: string, tx: Executor = db) {
      const [row] = await tx
        .select({ status: orders.status, technicianId: orders.technicianId })
        .from(orders)
        .where(and(eq(orders.id, orderId), eq(orders.customerId, customerId)))
        .limit(1);
      return row;
    },

    /**
     * Gives or changes the rating in one statement: the order's key makes it one per order, and an
     * existing rating changes only within RATING_EDITABLE_DAYS of its first giving (undefined after).
     */
    async upsert(values: { orderId: string; customerId: string; technicianId: string; stars: number; comment: string | null }, tx: Executor = db) {
      const [row] = await tx
        .insert(orderRatings)
        .values(values)
        .onConflictDoUpdate({
          target: orderRatings.orderId,
          set: { stars: values.stars, comment: values.comment, updatedAt: sql`now()` },
          setWhere: sql`${orderRatings.createdAt} > now() - ${sql.raw(`interval '${RATING_EDITABLE_DAYS} days'`)}`,
        })
        .returning();
      return row;
    },

    async forTechnician(technicianId: string, tx: Executor = db): Promise<{ average: number | null; count: number }> {
      const [row] = await tx
        .select({ average: sql<string | null>`avg(${orderRatings.stars})`, count: sql<number>`count(*)::int` })
        .from(orderRatings)
        .where(eq(orderRatings.technicianId, technicianId));
      return { average: row?.average == null ? null : Math.round(Number(row.average) * 100) / 100, count: Number(row?.count ?? 0) };
    },
  };
}

export type RatingsRepository = ReturnType<typeof createRatingsRepository>;

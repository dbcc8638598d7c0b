import type { Executor } from '../../db/client.js';
import { and, eq, sql } from '../../db/orm.js';
import { checkoutSessions, orders, stripeEvents } from '../../db/schema.js';
import type { CheckoutStatus } from '../orders/orders.domain.js';

export type CheckoutSessionRow = typeof checkoutSessions.$inferSelect;

export function createPaymentsRepository(db: Executor) {
  return {
    /** The order, locked until the caller's transaction ends: one checkout per order at a time. */
    async lockOrder(id: string, tx: Executor) {
      const [row] = await tx.select().from(orders).where(eq(orders.id, id)).for('update');
      return row;
    },

    async openSession(orderId: string, tx: Executor = db): Promise<CheckoutSessionRow | undefined> {
      const [row] = await tx
        .select()
        .from(checkoutSessions)
        .where(and(eq(checkoutSessions.orderId, orderId), eq(checkoutSessions.status, 'open')))
        .limit(1);
      return row;
    },

    /** How many sessions the order has had: part of the next one's idempotency key. */
    async sessionCount(orderId: string, tx: Executor = db): Promise<number> {
      const [row] = await tx.select({ n: sql<number>`count(*)` }).from(checkoutSessions).where(eq(checkoutSessions.orderId, orderId));
      return Number(row?.n ?? 0);
    },

    async insertSession(values: typeof checkoutSessions.$inferInsert, tx: Executor): Promise<CheckoutSessionRow> {
      const [row] = await tx.insert(checkoutSessions).values(values).returning();
      return row!;
    },

    async findSession(sessionId: string, tx: Executor = db): Promise<CheckoutSessionRow | undefined> {
      const [row] = await tx.select().from(checkoutSessions).where(eq(checkoutSessions.sessionId, sessionId)).limit(1);
      return row;
    },

    /** `complete` always wins; `expired` only replaces `open` (a late expiry never undoes a completion). */
    async setSessionStatus(sessionId: string, status: Exclude<CheckoutStatus, 'open'>, tx: Executor): Promise<void> {
      await tx
        .update(checkoutSessions)
        .set({ status, updatedAt: new Date() })
        .where(
          status === 'complete'
            ? eq(checkoutSessions.sessionId, sessionId)
            : and(eq(checkoutSessions.sessionId, sessionId), eq(checkoutSessions.status, 'open')),
        );
    },

    /** Records a Stripe event id; false when it was recorded before (a replay or a re-delivery). */
    async recordEvent(eventId: string, type: string, tx: Executor): Promise<boolean> {
      const rows = await tx
        .insert(stripeEvents)
        .values({ eventId, type, receivedAt: sql`now()` })
        .onConflictDoNothing({ target: stripeEvents.eventId })
        .returning({ eventId: stripeEvents.eventId });
      return rows.length === 1;
    },
  };
}

export type PaymentsRepository = ReturnType<typeof createPaymentsRepository>;

import { and, asc, desc, eq, inArray, lt, lte, ne, sql } from '../../db/orm.js';
import type { Database, Executor } from '../../db/client.js';
import { builtOnce } from '../../db/prepared.js';
import { designs, orders, users, webhookAttempts, webhookDeliveries, webhookSubscriptions } from '../../db/schema.js';
import { inGallery } from '../designs/designs.repository.js';
import type { DeliveryStatus, DisabledReason } from './webhooks.domain.js';

export type SubscriptionRow = typeof webhookSubscriptions.$inferSelect;
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;
export type AttemptRow = typeof webhookAttempts.$inferSelect;

/** Who an event may reach: named technicians, or every technician but one (an unassigned order's customer). */
export type Audience = { owners: string[] } | { everyTechnicianExcept: string | null };

const p = sql.placeholder;
/**
 * A delivered attempt, in one statement built once: the attempt recorded, the delivery settled (when still pending:
 * a re-send meanwhile is not overwritten by an older lease) and its subscription healthy again. Every delivery
 * ends here, so it costs one round trip instead of a transaction of three statements.
 */
const deliveredStatement = builtOnce(
  sql`with attempt as (
        insert into ${webhookAttempts} (delivery_id, attempted_at, status_code, duration_ms, error)
        values (${p('deliveryId')}::uuid, ${p('attemptedAt')}::timestamptz, ${p('statusCode')}::int, ${p('durationMs')}::int, ${p('error')}::text)
      ), settled as (
        update ${webhookDeliveries} set status = 'delivered', next_attempt_at = null, delivered_at = ${p('now')}::timestamptz, attempts = attempts + 1
        where id = ${p('deliveryId')}::uuid and status = 'pending'
      )
      update ${webhookSubscriptions} set failing_since = null where id = ${p('subscriptionId')}::uuid and failing_since is not null`,
);

export function createWebhooksRepository(db: Database) {
  const owned = (id: string, ownerId: string) => and(eq(webhookSubscriptions.id, id), eq(webhookSubscriptions.ownerId, ownerId))!;

  return {
    async insert(values: typeof webhookSubscriptions.$inferInsert, tx: Executor = db): Promise<SubscriptionRow> {
      const [row] = await tx.insert(webhookSubscriptions).values(values).returning();
      return row!;
    },

    async countOwned(ownerId: string, tx: Executor = db): Promise<number> {
      const [row] = await tx.select({ n: sql<number>`count(*)::int` }).from(webhookSubscriptions).where(eq(webhookSubscriptions.ownerId, ownerId));
      return Number(row?.n ?? 0);
    },

    async listOwned(ownerId: string, limit: number, offset: number, tx: Executor = db) {
      const where = eq(webhookSubscriptions.ownerId, ownerId);
      const [rows, [count]] = await Promise.all([
        tx.select().from(webhookSubscriptions).where(where).orderBy(desc(webhookSubscriptions.createdAt), desc(webhookSubscriptions.id)).limit(limit).offset(offset),
        tx.select({ n: sql<number>`count(*)::int` }).from(webhookSubscriptions).where(where),
      ]);
      return { rows, total: Number(count?.n ?? 0) };
    },

    /** The subscription when `ownerId` owns it; `lock` holds it for the caller's transaction. */
    async findOwned(id: string, ownerId: string, tx: Executor = db, lock = false): Promise<SubscriptionRow | undefined> {
      const query = tx.select().from(webhookSubscriptions).where(owned(id, ownerId)).limit(1);
      const [row] = lock ? await query.for('update') : await query;
      return row;
    },

    async updateOwned(id: string, ownerId: string, set: Partial<typeof webhookSubscriptions.$inferInsert>, tx: Executor = db): Promise<SubscriptionRow | undefined> {
      const [row] = await tx.update(webhookSubscriptions).set(set).where(owned(id, ownerId)).returning();
      return row;
    },

    async deleteOwned(id: string, ownerId: string, tx: Executor = db): Promise<boolean> {
      const rows = await tx.delete(webhookSubscriptions).where(owned(id, ownerId)).returning({ id: webhookSubscriptions.id });
      return rows.length > 0;
    },

    /** The order's customer and technician, as the audience of its events is decided. */
    async orderParties(orderId: string, tx: Executor = db) {
      const [row] = await tx.select({ customerId: orders.customerId, technicianId: orders.technicianId }).from(orders).where(eq(orders.id, orderId)).limit(1);
      return row;
    },

    async designInGallery(designId: string, tx: Executor = db): Promise<boolean> {
      const [row] = await tx.select({ id: designs.id }).from(designs).where(and(eq(designs.id, designId), inGallery)).limit(1);
      return Boolean(row);
    },

    /**
     * One pending delivery per enabled subscription of a technician in `audience` that asked for `eventType`;
     * an event enqueued twice (at-least-once upstream) adds nothing the second time. The ids created.
     */
    async fanOut(
      event: { id: string; type: string; payload: Record<string, unknown> },
      audience: Audience,
      schedule: { nextAttemptAt: Date; retryUntil: Date },
      tx: Executor = db,
    ): Promise<string[]> {
      const conditions = [
        eq(webhookSubscriptions.enabled, true),
        sql`${event.type} = any(${webhookSubscriptions.eventTypes})`,
        // A subscription works only while its owner is a technician: one whose role changed stops receiving.
        eq(users.role, 'nail_technician'),
      ];
      if ('owners' in audience) {
        if (audience.owners.length === 0) return [];
        conditions.push(inArray(webhookSubscriptions.ownerId, audience.owners));
      } else if (audience.everyTechnicianExcept) {
        conditions.push(ne(webhookSubscriptions.ownerId, audience.everyTechnicianExcept));
      }
      const targets = await tx
        .select({ id: webhookSubscriptions.id })
        .from(webhookSubscriptions)
        .innerJoin(users, eq(users.id, webhookSubscriptions.ownerId))
        .where(and(...conditions));
      if (targets.length === 0) return [];
      const rows = await tx
        .insert(webhookDeliveries)
        .values(targets.map((t) => ({ subscriptionId: t.id, eventId: event.id, eventType: event.type, payload: event.payload, ...schedule })))
        .onConflictDoNothing()
        .returning({ id: webhookDeliveries.id });
      return rows.map((r) => r.id);
    },

    /**
     * Claims up to `limit` due deliveries of enabled subscriptions: FOR UPDATE SKIP LOCKED, so concurrent workers
     * (or dynos) take different rows, and the claim moves next_attempt_at to the end of a lease, so a worker
     * that dies mid-attempt leaves a delivery another picks up after the lease (at-least-once).
     */
    async claimDue(now: Date, leaseUntil: Date, limit: number) {
      return db.transaction(async (tx) => {
        const due = await tx
          .select({ delivery: webhookDeliveries, subscription: webhookSubscriptions })
          .from(webhookDeliveries)
          .innerJoin(webhookSubscriptions, eq(webhookSubscriptions.id, webhookDeliveries.subscriptionId))
          .where(and(eq(webhookDeliveries.status, 'pending'), lte(webhookDeliveries.nextAttemptAt, now), eq(webhookSubscriptions.enabled, true)))
          .orderBy(asc(webhookDeliveries.nextAttemptAt))
          .limit(limit)
          .for('update', { of: webhookDeliveries, skipLocked: true });
        if (due.length > 0) {
          await tx
            .update(webhookDeliveries)
            .set({ nextAttemptAt: leaseUntil })
            .where(inArray(webhookDeliveries.id, due.map((d) => d.delivery.id)));
        }
        return due;
      });
    },

    async recordAttempt(values: typeof webhookAttempts.$inferInsert, tx: Executor = db) {
      await tx.insert(webhookAttempts).values(values);
    },

    /**
     * A failed attempt on a delivery still pending: retried later, or failed for good (a success is recordDelivered).
     * A re-send meanwhile does not get overwritten by an older lease.
     */
    async settleDelivery(id: string, set: { status: Extract<DeliveryStatus, 'pending' | 'failed'>; nextAttemptAt: Date | null }, tx: Executor = db) {
      const [row] = await tx
        .update(webhookDeliveries)
        .set({ ...set, attempts: sql`${webhookDeliveries.attempts} + 1` })
        .where(and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.status, 'pending')))
        .returning();
      return row;
    },

    /** A success (see deliveredStatement). */
    async recordDelivered(attempt: typeof webhookAttempts.$inferInsert, subscriptionId: string, now: Date, tx: Executor = db) {
      await deliveredStatement(tx, {
        deliveryId: attempt.deliveryId,
        attemptedAt: attempt.attemptedAt.toISOString(),
        statusCode: attempt.statusCode ?? null,
        durationMs: attempt.durationMs,
        error: attempt.error ?? null,
        now: now.toISOString(),
        subscriptionId,
      });
    },

    /** A failure: the start of the failing streak (kept when one is already running), returned. */
    async markFailing(id: string, now: Date, tx: Executor = db): Promise<Date | null> {
      const [row] = await tx
        .update(webhookSubscriptions)
        .set({ failingSince: sql`coalesce(${webhookSubscriptions.failingSince}, ${now.toISOString()}::timestamptz)` })
        .where(eq(webhookSubscriptions.id, id))
        .returning({ failingSince: webhookSubscriptions.failingSince });
      return row?.failingSince ?? null;
    },

    /** Disables an enabled subscription; undefined when it already was (so the owner is told once). */
    async disable(id: string, reason: DisabledReason, now: Date, tx: Executor = db): Promise<SubscriptionRow | undefined> {
      const [row] = await tx
        .update(webhookSubscriptions)
        .set({ enabled: false, disabledReason: reason, disabledAt: now })
        .where(and(eq(webhookSubscriptions.id, id), eq(webhookSubscriptions.enabled, true)))
        .returning();
      return row;
    },

    async listDeliveries(subscriptionId: string, status: DeliveryStatus | undefined, limit: number, offset: number, tx: Executor = db) {
      const where = and(eq(webhookDeliveries.subscriptionId, subscriptionId), status ? eq(webhookDeliveries.status, status) : undefined);
      const [rows, [count]] = await Promise.all([
        tx.select().from(webhookDeliveries).where(where).orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id)).limit(limit).offset(offset),
        tx.select({ n: sql<number>`count(*)::int` }).from(webhookDeliveries).where(where),
      ]);
      const attempts = rows.length
        ? await tx
            .select()
            .from(webhookAttempts)
            .where(inArray(webhookAttempts.deliveryId, rows.map((r) => r.id)))
            .orderBy(asc(webhookAttempts.attemptedAt), asc(webhookAttempts.id))
        : [];
      return { rows, attempts, total: Number(count?.n ?? 0) };
    },

    async attemptsOf(deliveryId: string, tx: Executor = db): Promise<AttemptRow[]> {
      return tx.select().from(webhookAttempts).where(eq(webhookAttempts.deliveryId, deliveryId)).orderBy(asc(webhookAttempts.attemptedAt), asc(webhookAttempts.id));
    },

    /** Retention: up to `limit` deliveries settled (delivered or failed) before `cutoff`, with their attempts (cascade). */
    async purgeSettledBefore(cutoff: Date, limit: number, tx: Executor = db): Promise<number> {
      const old = tx
        .select({ id: webhookDeliveries.id })
        .from(webhookDeliveries)
        .where(and(ne(webhookDeliveries.status, 'pending'), lt(webhookDeliveries.updatedAt, cutoff)))
        .limit(limit);
      return (await tx.delete(webhookDeliveries).where(inArray(webhookDeliveries.id, old)).returning({ id: webhookDeliveries.id })).length;
    },

    /** Sends the delivery again from now, for a new retry window; its earlier attempts stay in its log. */
    async requeue(deliveryId: string, subscriptionId: string, now: Date, retryUntil: Date, tx: Executor = db): Promise<DeliveryRow | undefined> {
      const [row] = await tx
        .update(webhookDeliveries)
        .set({ status: 'pending', nextAttemptAt: now, retryUntil, deliveredAt: null })
        .where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.subscriptionId, subscriptionId)))
        .returning();
      return row;
    },
  };
}

export type WebhooksRepository = ReturnType<typeof createWebhooksRepository>;

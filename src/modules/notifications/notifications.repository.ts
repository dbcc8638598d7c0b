import type { Executor } from '../../db/client.js';
import { builtOnce } from '../../db/prepared.js';
import { type SQL, and, asc, desc, eq, inArray, isNull, lt, notExists, sql } from '../../db/orm.js';
import { notificationPreferences, notifications, outboxEvents } from '../../db/schema.js';
import type { Category, EventType, OutboxEvent } from './events.js';

const count = () => sql<number>`count(*)::int`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type NotificationRow = typeof notifications.$inferSelect;
export type NewNotification = typeof notifications.$inferInsert;
export interface NewOutboxEvent {
  id?: string;
  type: EventType;
  actorId: string | null;
  orderId?: string | null;
  designId?: string | null;
  data: Record<string, unknown>;
}

const toEvent = (row: typeof outboxEvents.$inferSelect): OutboxEvent => ({
  id: row.id,
  type: row.type,
  occurredAt: row.occurredAt.toISOString(),
  actorId: row.actorId,
  orderId: row.orderId,
  designId: row.designId,
  data: row.data,
});

const p = sql.placeholder;
/** Built once: it runs on every change that tells someone, in that change's transaction. */
const insertEvent = builtOnce(
  sql`insert into ${outboxEvents} (id, type, actor_id, order_id, design_id, data)
      values (coalesce(${p('id')}::uuid, gen_random_uuid()), ${p('type')}, ${p('actorId')}::uuid, ${p('orderId')}::uuid, ${p('designId')}::uuid, ${p('data')}::jsonb)
      on conflict (id) do nothing returning id`,
);

/**
 * The outbox insert as one CTE of a change's own statement, for a change that is a single statement: its event
 * then costs no transaction and no second round trip (a message; bench figure 3b). Each column is an expression
 * over the change's CTE, `from`; the rows of `from` each record one event.
 */
export function eventInsertFrom(from: SQL, event: { type: SQL; actorId: SQL; orderId: SQL; data: SQL }): SQL {
  return sql`insert into ${outboxEvents} (type, actor_id, order_id, data) select ${event.type}, ${event.actorId}, ${event.orderId}, ${event.data} from ${from}`;
}

/** The outbox, the in-app notifications and the email preferences: this module's tables only. */
export function createNotificationsRepository(db: Executor) {
  return {
    /**
     * The one write an event costs the request path: in the caller's transaction. An event given a stable id (a
     * reminder) is recorded once: undefined when that id is there already.
     */
    async insertEvent(values: NewOutboxEvent, tx: Executor): Promise<string | undefined> {
      const [row] = await insertEvent<{ id: string }>(tx, {
        id: values.id ?? null,
        type: values.type,
        actorId: values.actorId,
        orderId: values.orderId ?? null,
        designId: values.designId ?? null,
        data: JSON.stringify(values.data),
      });
      return row?.id;
    },

    /**
     * The relay's claim: up to `limit` events not yet queued, oldest first, marked relayed in the caller's transaction
     * (which queues their jobs). A concurrent relay skips the rows this one holds instead of waiting for them.
     */
    async claimUnrelayed(limit: number, tx: Executor): Promise<string[]> {
      const pending = tx
        .select({ id: outboxEvents.id })
        .from(outboxEvents)
        .where(isNull(outboxEvents.relayedAt))
        .orderBy(asc(outboxEvents.occurredAt))
        .limit(limit)
        .for('update', { skipLocked: true });
      const rows = await tx.update(outboxEvents).set({ relayedAt: sql`now()` }).where(inArray(outboxEvents.id, pending)).returning({ id: outboxEvents.id });
      return rows.map((row) => row.id);
    },

    async findEvent(id: string, tx: Executor = db): Promise<OutboxEvent | undefined> {
      const [row] = await tx.select().from(outboxEvents).where(eq(outboxEvents.id, id)).limit(1);
      return row ? toEvent(row) : undefined;
    },

    async findEvents(ids: string[], tx: Executor = db): Promise<OutboxEvent[]> {
      if (ids.length === 0) return [];
      const rows = await tx.select().from(outboxEvents).where(inArray(outboxEvents.id, ids));
      return rows.map(toEvent);
    },

    /**
     * Retention: up to `limit` notifications made before `cutoff`, then up to `limit` events before it that no
     * notification refers to any more. No index on the dates: rows are appended in time order, so the oldest sit at
     * the start of each table and the LIMITed scans stop early, and the outbox insert on the request path stays one
     * index write.
     */
    async purgeBefore(cutoff: Date, limit: number, tx: Executor = db): Promise<{ notifications: number; events: number }> {
      const old = tx.select({ id: notifications.id }).from(notifications).where(lt(notifications.createdAt, cutoff)).limit(limit);
      const gone = await tx.delete(notifications).where(inArray(notifications.id, old)).returning({ id: notifications.id });
      const told = tx.select({ one: sql`1` }).from(notifications).where(eq(notifications.eventId, outboxEvents.id));
      const untold = tx
        .select({ id: outboxEvents.id })
        .from(outboxEvents)
        .where(and(lt(outboxEvents.occurredAt, cutoff), notExists(told)))
        .limit(limit);
      const events = await tx.delete(outboxEvents).where(inArray(outboxEvents.id, untold)).returning({ id: outboxEvents.id });
      return { notifications: gone.length, events: events.length };
    },

    /** Inserts the notifications not there yet; (event, recipient) is unique, so a re-run adds nothing. */
    async insertNotifications(rows: NewNotification[], tx: Executor = db): Promise<void> {
      if (rows.length === 0) return;
      await tx.insert(notifications).values(rows).onConflictDoNothing();
    },

    /** Unread first, then newest. */
    async list(recipientId: string, filter: { unread: boolean; limit: number; offset: number }, tx: Executor = db) {
      const where = and(eq(notifications.recipientId, recipientId), filter.unread ? isNull(notifications.readAt) : undefined);
      const [rows, [total]] = await Promise.all([
        tx
          .select()
          .from(notifications)
          .where(where)
          .orderBy(sql`${notifications.readAt} is null desc`, desc(notifications.createdAt), desc(notifications.id))
          .limit(filter.limit)
          .offset(filter.offset),
        tx.select({ n: count() }).from(notifications).where(where),
      ]);
      return { rows, total: Number(total?.n ?? 0) };
    },

    /** What a live stream resuming after notification `afterId` missed, oldest first (nothing when it is not theirs). */
    async after(recipientId: string, afterId: string, limit: number): Promise<NotificationRow[]> {
      if (!UUID.test(afterId)) return [];
      const mark = db
        .select({ at: notifications.createdAt, id: notifications.id })
        .from(notifications)
        .where(and(eq(notifications.id, afterId), eq(notifications.recipientId, recipientId)));
      return db
        .select()
        .from(notifications)
        .where(and(eq(notifications.recipientId, recipientId), sql`(${notifications.createdAt}, ${notifications.id}) > (${mark})`))
        .orderBy(asc(notifications.createdAt), asc(notifications.id))
        .limit(limit);
    },

    async unreadCount(recipientId: string, tx: Executor = db): Promise<number> {
      const [row] = await tx
        .select({ n: count() })
        .from(notifications)
        .where(and(eq(notifications.recipientId, recipientId), isNull(notifications.readAt)));
      return Number(row?.n ?? 0);
    },

    /** Marks one of `recipientId`'s notifications read (kept as first read); undefined when it is not theirs. */
    async markRead(id: string, recipientId: string, tx: Executor = db): Promise<NotificationRow | undefined> {
      const [row] = await tx
        .update(notifications)
        .set({ readAt: sql`coalesce(${notifications.readAt}, now())` })
        .where(and(eq(notifications.id, id), eq(notifications.recipientId, recipientId)))
        .returning();
      return row;
    },

    async markAllRead(recipientId: string, tx: Executor = db): Promise<number> {
      const rows = await tx
        .update(notifications)
        .set({ readAt: sql`now()` })
        .where(and(eq(notifications.recipientId, recipientId), isNull(notifications.readAt)))
        .returning({ id: notifications.id });
      return rows.length;
    },

    /** The categories whose email `userId` switched off or on explicitly (absent: on). */
    async preferences(userId: string, tx: Executor = db): Promise<Partial<Record<Category, boolean>>> {
      const rows = await tx.select().from(notificationPreferences).where(eq(notificationPreferences.userId, userId));
      return Object.fromEntries(rows.map((r) => [r.category, r.email]));
    },

    /** Of `userIds`, those who switched email off for `category`. */
    async emailOff(userIds: string[], category: Category, tx: Executor = db): Promise<Set<string>> {
      if (userIds.length === 0) return new Set();
      const rows = await tx
        .select({ userId: notificationPreferences.userId })
        .from(notificationPreferences)
        .where(and(inArray(notificationPreferences.userId, userIds), eq(notificationPreferences.category, category), eq(notificationPreferences.email, false)));
      return new Set(rows.map((r) => r.userId));
    },

    async setPreferences(userId: string, email: Partial<Record<Category, boolean>>, tx: Executor = db): Promise<void> {
      const rows = Object.entries(email).map(([category, on]) => ({ userId, category: category as Category, email: on! }));
      if (rows.length === 0) return;
      await tx
        .insert(notificationPreferences)
        .values(rows)
        .onConflictDoUpdate({
          target: [notificationPreferences.userId, notificationPreferences.category],
          set: { email: sql`excluded.email`, updatedAt: sql`now()` },
        });
    },
  };
}

export type NotificationsRepository = ReturnType<typeof createNotificationsRepository>;

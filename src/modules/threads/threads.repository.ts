import { and, asc, eq, getTableName, type Placeholder, type SQL, sql, unionAll } from '../../db/orm.js';
import type { AnyPgColumn } from '../../db/orm.js';
import type { Executor } from '../../db/client.js';
import { messages, orderEvents, orders, threadReads, users } from '../../db/schema.js';
import { type Position, RANK, type ThreadItemType } from './threads.domain.js';

/** One row of a thread page, events and messages in one shape (fields the other type lacks are null). */
export interface ThreadRow {
  type: ThreadItemType;
  id: string;
  createdAt: Date;
  /** created_at to the microsecond, for the cursor. */
  position: string;
  personId: string | null;
  personName: string | null;
  personRole: string | null;
  text: string | null;
  kind: string | null;
  fromStatus: string | null;
  toStatus: string | null;
  note: string | null;
  changes: Record<string, unknown> | null;
}

const microseconds = (column: AnyPgColumn) => sql<string>`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * The number of thread items of an order that `viewer` has not read: events and (when `participant`
 * holds: the customer and the assigned technician take part in the conversation) messages by anyone
 * else, after the viewer's marker (all of them without one). A correlated scalar subquery for the order
 * list and detail statements (orders.repository.ts), so a page of orders stays one round trip. The
 * statement must read the orders table under its own name.
 *
 * Cost per order: one primary-key probe of thread_reads and two index-only range scans, of
 * order_events (order_id, created_at, actor_id) and messages (order_id, created_at, sender_id), that
 * read only the unread items. Plans: README "Order threads".
 */
export function unreadCount(viewer: Placeholder<string> | string) {
  const me = sql`${viewer}::uuid`;
  // Qualified by hand: drizzle leaves a column of a one-table query unqualified, and inside these
  // subqueries a bare "id" would be the event's own.
  const order = (column: AnyPgColumn) => sql`${sql.identifier(getTableName(orders))}.${sql.identifier(column.name)}`;
  return sql<number>`(select ((select count(*) from ${orderEvents} ue where ue.order_id = ${order(orders.id)} and ue.created_at > m.at and ue.actor_id is distinct from ${me})
      + case when ${order(orders.customerId)} = ${me} or ${order(orders.technicianId)} = ${me}
        then (select count(*) from ${messages} um where um.order_id = ${order(orders.id)} and um.created_at > m.at and um.sender_id <> ${me}) else 0 end)::int
    from (select coalesce(max(tr.read_at), '-infinity'::timestamptz) as at from ${threadReads} tr where tr.order_id = ${order(orders.id)} and tr.user_id = ${me}) m)`;
}

/** After `after` in (created_at, rank, id) order; created_at >= … as well, so the range is the index's. */
const afterPosition = (createdAt: AnyPgColumn, id: AnyPgColumn, rank: number, after: Position): SQL =>
  sql`${createdAt} >= ${after.at}::timestamptz and (${createdAt}, ${sql.raw(String(rank))}, ${id}) > (${after.at}::timestamptz, ${after.rank}::int, ${after.id}::uuid)`;

export function createThreadsRepository(db: Executor) {
  return {
    /**
     * Up to `limit` items of the order's thread after `after` (from the start without), oldest first:
     * its events, and its messages when `withMessages`. Each side is read on its own (order_id,
     * created_at) index range and limited before the two are merged.
     */
    async page(orderId: string, opts: { withMessages: boolean; after?: Position; limit: number }, tx: Executor = db): Promise<ThreadRow[]> {
      const events = tx
        .select({
          type: sql<ThreadItemType>`'event'::text`.as('type'),
          rank: sql<number>`${sql.raw(String(RANK.event))}::int`.as('rank'),
          id: orderEvents.id,
          createdAt: orderEvents.createdAt,
          position: microseconds(orderEvents.createdAt).as('position'),
          personId: sql<string | null>`${orderEvents.actorId}`.as('person_id'),
          personName: sql<string | null>`${users.name}`.as('person_name'),
          personRole: sql<string | null>`${users.role}`.as('person_role'),
          text: sql<string | null>`null::text`.as('text'),
          kind: orderEvents.kind,
          fromStatus: sql<string | null>`${orderEvents.fromStatus}`.as('from_status'),
          toStatus: sql<string | null>`${orderEvents.toStatus}`.as('to_status'),
          note: orderEvents.note,
          changes: orderEvents.changes,
        })
        .from(orderEvents)
        .leftJoin(users, eq(users.id, orderEvents.actorId))
        .where(and(eq(orderEvents.orderId, orderId), opts.after ? afterPosition(orderEvents.createdAt, orderEvents.id, RANK.event, opts.after) : undefined))
        .orderBy(asc(orderEvents.createdAt), asc(orderEvents.id))
        .limit(opts.limit);
      if (!opts.withMessages) return (await events) as ThreadRow[];
      const said = tx
        .select({
          type: sql<ThreadItemType>`'message'::text`.as('type'),
          rank: sql<number>`${sql.raw(String(RANK.message))}::int`.as('rank'),
          id: messages.id,
          createdAt: messages.createdAt,
          position: microseconds(messages.createdAt).as('position'),
          personId: sql<string | null>`${messages.senderId}`.as('person_id'),
          personName: sql<string | null>`${users.name}`.as('person_name'),
          personRole: sql<string | null>`${users.role}`.as('person_role'),
          text: sql<string | null>`${messages.text}`.as('text'),
          kind: sql<string | null>`null::text`.as('kind'),
          fromStatus: sql<string | null>`null::text`.as('from_status'),
          toStatus: sql<string | null>`null::text`.as('to_status'),
          note: sql<string | null>`null::text`.as('note'),
          changes: sql<Record<string, unknown> | null>`null::jsonb`.as('changes'),
        })
        .from(messages)
        .innerJoin(users, eq(users.id, messages.senderId))
        .where(and(eq(messages.orderId, orderId), opts.after ? afterPosition(messages.createdAt, messages.id, RANK.message, opts.after) : undefined))
        .orderBy(asc(messages.createdAt), asc(messages.id))
        .limit(opts.limit);
      const rows = await unionAll(events, said)
        .orderBy(asc(sql.identifier('created_at')), asc(sql.identifier('rank')), asc(sql.identifier('id')))
        .limit(opts.limit);
      return rows as ThreadRow[];
    },

    /** What unreadCount says of one order for `viewer`. */
    async unread(orderId: string, viewer: string, tx: Executor = db): Promise<number> {
      const [row] = await tx.select({ n: unreadCount(viewer) }).from(orders).where(eq(orders.id, orderId));
      return Number(row?.n ?? 0);
    },

    /**
     * Moves `userId`'s marker on the order forward to `to` (an item's own instant, a time, or now),
     * never back and never past now. Returns the marker as stored; undefined when `to` names an item
     * that is not in the order's thread (or a message when `withMessages` is false).
     */
    async markRead(
      orderId: string,
      userId: string,
      to: { itemId: string; withMessages: boolean } | { at: Date } | 'now',
      tx: Executor = db,
    ): Promise<Date | undefined> {
      let at: SQL;
      if (to === 'now') at = sql`now()`;
      else if ('at' in to) at = sql`least(${to.at.toISOString()}::timestamptz, now())`;
      else {
        const item = sql`(select created_at from ${orderEvents} where id = ${to.itemId}::uuid and order_id = ${orderId}::uuid
          ${to.withMessages ? sql`union all select created_at from ${messages} where id = ${to.itemId}::uuid and order_id = ${orderId}::uuid` : sql``})`;
        const [found] = await tx.select({ at: sql<Date>`${item}` }).from(sql`(select 1) one`);
        if (!found?.at) return undefined;
        at = sql`${item}`;
      }
      const [row] = await tx
        .insert(threadReads)
        .values({ orderId, userId, readAt: at })
        .onConflictDoUpdate({
          target: [threadReads.orderId, threadReads.userId],
          set: { readAt: sql`greatest(${threadReads.readAt}, excluded.read_at)`, updatedAt: sql`now()` },
        })
        .returning({ readAt: threadReads.readAt });
      return row!.readAt;
    },
  };
}

export type ThreadsRepository = ReturnType<typeof createThreadsRepository>;

import { and, asc, eq, sql } from '../../db/orm.js';
import type { Executor } from '../../db/client.js';
import { preparedSql } from '../../db/prepared.js';
import type { Told } from '../notifications/events.js';
import { eventInsertFrom } from '../notifications/notifications.repository.js';
import { messages, orders, users } from '../../db/schema.js';
import type { Role } from '../users/users.domain.js';

/**
 * The statement behind insertIfParticipant: the message, if the sender takes part, and its outbox event (the
 * notifications module's insert) in one statement, so one round trip and no transaction. Values are placeholders.
 */
function insertAs(db: Executor, role: Role) {
  const p = sql.placeholder;
  const participant = role === 'customer' ? orders.customerId : orders.technicianId;
  const message = db
    .insert(messages)
    .select(
      db
        // insert … select takes every column of the table, in its order.
        .select({
          id: sql`gen_random_uuid()`.as('id'),
          orderId: orders.id,
          senderId: sql`${p('senderId')}::uuid`.as('sender_id'),
          text: sql`${p('text')}::text`.as('text'),
          createdAt: sql`now()`.as('created_at'),
          updatedAt: sql`now()`.as('updated_at'),
        })
        .from(orders)
        .where(and(eq(orders.id, p('orderId')), eq(participant, p('senderId')))),
    )
    .returning();
  const event = eventInsertFrom(sql`message`, {
    type: sql`${p('eventType')}::text`,
    actorId: sql`message.sender_id`,
    orderId: sql`message.order_id`,
    data: sql`${p('eventData')}::jsonb || jsonb_build_object('message_id', message.id)`,
  });
  return preparedSql(db, sql`with message as (${message.getSQL()}), event as (${event}) select * from message`);
}

interface MessageColumns {
  id: string;
  order_id: string;
  sender_id: string;
  text: string;
  created_at: unknown;
  updated_at: unknown;
}

const toMessage = (row: MessageColumns): MessageRow => ({
  id: row.id,
  orderId: row.order_id,
  senderId: row.sender_id,
  text: row.text,
  createdAt: messages.createdAt.mapFromDriverValue(row.created_at as string) as Date,
  updatedAt: messages.updatedAt.mapFromDriverValue(row.updated_at as string) as Date,
});

export type MessageRow = typeof messages.$inferSelect;

export function createMessagesRepository(db: Executor) {
  // Posting a message is one of the busiest writes: its statement is built once per role, not per request.
  const hot = { customer: insertAs(db, 'customer'), technician: insertAs(db, 'nail_technician') };
  return {
    async list(orderId: string, limit: number, offset: number, tx: Executor = db) {
      const [rows, [count]] = await Promise.all([
        tx
          .select({ message: messages, senderName: users.name })
          .from(messages)
          .innerJoin(users, eq(users.id, messages.senderId))
          .where(eq(messages.orderId, orderId))
          .orderBy(asc(messages.createdAt), asc(messages.id))
          .limit(limit)
          .offset(offset),
        tx.select({ total: sql<number>`count(*)::int` }).from(messages).where(eq(messages.orderId, orderId)),
      ]);
      return { rows, total: count?.total ?? 0 };
    },
    async findById(id: string, tx: Executor = db) {
      const [row] = await tx
        .select({ message: messages, senderName: users.name })
        .from(messages)
        .innerJoin(users, eq(users.id, messages.senderId))
        .where(eq(messages.id, id))
        .limit(1);
      return row;
    },
    /**
     * Adds the message only if the sender takes part in the order's conversation (a customer on their own
     * order, a technician on an order assigned to them), checked in the same statement, and records `event`
     * (its data gains the message's id) with it: one round trip, all or nothing.
     */
    async insertIfParticipant(
      values: { orderId: string; senderId: string; text: string },
      role: Role,
      event: Told,
    ): Promise<MessageRow | undefined> {
      const statement = hot[role === 'customer' ? 'customer' : 'technician'];
      const result = (await statement.execute({ ...values, eventType: event.type, eventData: JSON.stringify(event.data) })) as { rows: MessageColumns[] };
      const [row] = result.rows;
      return row ? toMessage(row) : undefined;
    },
  };
}

export type MessagesRepository = ReturnType<typeof createMessagesRepository>;

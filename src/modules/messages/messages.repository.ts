import { and, asc, eq, sql } from '../../db/orm.js';
import type { Executor } from '../../db/client.js';
import { prepared } from '../../db/prepared.js';
import { messages, orders, users } from '../../db/schema.js';
import type { Role } from '../users/users.domain.js';

/** The statement behind insertIfParticipant; values are placeholders, bound per execution. */
function insertAs(tx: Executor, role: Role) {
  const p = sql.placeholder;
  const participant = role === 'customer' ? orders.customerId : orders.technicianId;
  return tx
    .insert(messages)
    .select(
      tx
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
}

export function createMessagesRepository(db: Executor) {
  // Posting a message is one of the busiest writes: its statement is built once per role, not per request.
  const hot = { customer: prepared(insertAs(db, 'customer')), technician: prepared(insertAs(db, 'nail_technician')) };
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
     * order, a technician on an order assigned to them), checked in the same statement: one round trip.
     */
    /** In `tx` when given (the message's notification is written with it), else as the prepared statement. */
    async insertIfParticipant(values: { orderId: string; senderId: string; text: string }, role: Role, tx?: Executor) {
      const [row] = tx ? await insertAs(tx, role).execute(values) : await hot[role === 'customer' ? 'customer' : 'technician'].execute(values);
      return row;
    },
  };
}

export type MessagesRepository = ReturnType<typeof createMessagesRepository>;

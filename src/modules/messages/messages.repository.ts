import { asc, eq, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { messages, users } from '../../db/schema.js';

export function createMessagesRepository(db: Executor) {
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
    async insert(values: { orderId: string; senderId: string; text: string }, tx: Executor = db) {
      const [row] = await tx.insert(messages).values(values).returning();
      return row!;
    },
  };
}

export type MessagesRepository = ReturnType<typeof createMessagesRepository>;

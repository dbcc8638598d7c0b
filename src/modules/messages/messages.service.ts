import type { Database } from '../../db/client.js';
import { validationError } from '../../errors.js';
import { type IdempotencyInput, runIdempotent } from '../../lib/idempotency.js';
import type { OrdersService } from '../orders/orders.service.js';
import type { UserRow } from '../users/users.repository.js';
import type { MessagesRepository } from './messages.repository.js';

type Row = Awaited<ReturnType<MessagesRepository['list']>>['rows'][number];

const render = ({ message, senderName }: Row) => ({
  id: message.id,
  order_id: message.orderId,
  sender: { id: message.senderId, name: senderName },
  text: message.text,
  created_at: message.createdAt.toISOString(),
});

/** Only the order's customer and its assigned technician take part in its conversation. */
export function createMessagesService(deps: { db: Database; messages: MessagesRepository; orders: OrdersService }) {
  return {
    async list(user: UserRow, orderId: string, limit: number, offset: number) {
      await deps.orders.conversationOrder(user, orderId);
      const { rows, total } = await deps.messages.list(orderId, limit, offset);
      return { items: rows.map(render), total };
    },
    /** A retry with the same Idempotency-Key replays the first message instead of posting it twice. */
    async post(user: UserRow, orderId: string, text: string, idem: IdempotencyInput) {
      const trimmed = text.trim();
      if (!trimmed) throw validationError('Write a message.', { text: 'must not be blank' });
      await deps.orders.conversationOrder(user, orderId);
      const result = await runIdempotent(
        deps.db,
        { userId: user.id, key: idem.key, scope: `POST /orders/${orderId}/messages`, requestHash: idem.requestHash },
        () => deps.messages.insert({ orderId, senderId: user.id, text: trimmed }),
      );
      const row = result.value ? { message: result.value, senderName: user.name } : await deps.messages.findById(result.resourceId);
      return { status: result.status, replayed: result.replayed, message: render(row!) };
    },
  };
}

export type MessagesService = ReturnType<typeof createMessagesService>;

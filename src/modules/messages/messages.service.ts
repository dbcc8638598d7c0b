import type { Database } from '../../db/client.js';
import { fail, validationError } from '../../errors.js';
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
  /** The message and its message.created event, in one statement. */
  const insert = (values: { orderId: string; senderId: string; text: string }, sender: UserRow) =>
    deps.messages.insertIfParticipant(values, sender.role, { type: 'message.created', data: { sender_name: sender.name, text: values.text } });
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
      const values = { orderId, senderId: user.id, text: trimmed };
      const result = await runIdempotent(
        deps.db,
        { userId: user.id, key: idem.key, scope: `POST /orders/${orderId}/messages`, requestHash: idem.requestHash },
        async () => {
          // One statement checks the sender takes part and stores the message. Refused: conversationOrder
          // says why (404, or 403 for another technician's order); should the order have been assigned
          // to the sender in between, it lets the second attempt through.
          const message = await insert(values, user);
          if (message) return message;
          await deps.orders.conversationOrder(user, orderId);
          const retried = await insert(values, user);
          if (!retried) throw fail('NOT_ASSIGNED', 'Only the customer and the assigned technician can read or write messages on this order.');
          return retried;
        },
      );
      // A replay is answered only to someone who still takes part in the conversation.
      if (result.replayed) await deps.orders.conversationOrder(user, orderId);
      const row = result.value ? { message: result.value, senderName: user.name } : await deps.messages.findById(result.resourceId);
      return { status: result.status, replayed: result.replayed, message: render(row!) };
    },
  };
}

export type MessagesService = ReturnType<typeof createMessagesService>;

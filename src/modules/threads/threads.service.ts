import { validationError } from '../../errors.js';
import type { OrdersService } from '../orders/orders.service.js';
import type { UserRow } from '../users/users.repository.js';
import { type Position, RANK, THREAD_PAGE, decodeCursor, encodeCursor } from './threads.domain.js';
import type { ThreadRow, ThreadsRepository } from './threads.repository.js';

const str = (value: unknown) => (typeof value === 'string' ? value : null);

/** An item as clients see it: a message with its author, or a status event with its actor (null: the service). */
function render(row: ThreadRow) {
  const createdAt = row.createdAt.toISOString();
  if (row.type === 'message') {
    return {
      type: 'message' as const,
      id: row.id,
      author: { id: row.personId!, name: row.personName ?? '', role: row.personRole! },
      text: row.text!,
      created_at: createdAt,
    };
  }
  // Only what the move tells the reader; price fields stay on the order, where their rules live.
  const changes = row.changes ?? {};
  return {
    type: 'event' as const,
    id: row.id,
    kind: row.kind,
    from_status: row.fromStatus,
    to_status: row.toStatus!,
    actor: row.personId ? { id: row.personId, name: row.personName ?? '' } : null,
    note: row.note,
    feedback: str(changes.feedback),
    carrier: str(changes.carrier),
    tracking_number: str(changes.tracking_number),
    created_at: createdAt,
  };
}

/**
 * Who reads a thread is who reads the order (GET /orders/:id: other customers 404, other technicians
 * 403). Its messages are the conversation's (SPEC §3): only the customer and the assigned technician
 * see them, so a technician looking at an unassigned order sees its events alone.
 */
export function createThreadsService(deps: { threads: ThreadsRepository; orders: Pick<OrdersService, 'readableOrder'> }) {
  async function access(user: UserRow, orderId: string) {
    const order = await deps.orders.readableOrder(user, orderId);
    return { order, withMessages: order.customerId === user.id || order.technicianId === user.id };
  }

  return {
    async read(user: UserRow, orderId: string, q: { cursor?: string; limit?: number }) {
      let after: Position | undefined;
      if (q.cursor !== undefined) {
        after = decodeCursor(q.cursor);
        if (!after) throw validationError('The cursor is not one this API gave: pass pagination.nextCursor unchanged, or leave it out to start at the beginning.', { cursor: 'is not a valid cursor' });
      }
      const { withMessages } = await access(user, orderId);
      const limit = q.limit ?? THREAD_PAGE.default;
      // One more than the page: whether there is a next page, without counting the thread.
      const rows = await deps.threads.page(orderId, { withMessages, after, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const hasNext = rows.length > limit;
      return {
        items: page.map(render),
        pagination: {
          limit,
          hasNext,
          nextCursor: hasNext && last ? encodeCursor({ at: last.position, rank: RANK[last.type], id: last.id }) : null,
        },
      };
    },

    async markRead(user: UserRow, orderId: string, body: { item_id?: string; read_at?: string }) {
      if (body.item_id !== undefined && body.read_at !== undefined) {
        throw validationError('Send item_id or read_at, not both.', { item_id: 'cannot be combined with read_at', read_at: 'cannot be combined with item_id' });
      }
      const { withMessages } = await access(user, orderId);
      const to = body.item_id !== undefined ? { itemId: body.item_id, withMessages } : body.read_at !== undefined ? { at: new Date(body.read_at) } : 'now';
      const readAt = await deps.threads.markRead(orderId, user.id, to);
      if (!readAt) throw validationError('item_id is not an item of this order’s thread that you can see.', { item_id: 'is not in this thread' });
      return { order_id: orderId, read_at: readAt.toISOString(), unread_count: await deps.threads.unread(orderId, user.id) };
    },
  };
}

export type ThreadsService = ReturnType<typeof createThreadsService>;

import { Type } from 'typebox';
import { Enum, Nullable } from '../../lib/envelope.js';
import { ORDER_STATUSES } from '../orders/orders.domain.js';
import { ROLES } from '../users/users.domain.js';
import { THREAD_PAGE } from './threads.domain.js';

const DateTime = Type.String({ format: 'date-time' });

export const ThreadMessageSchema = Type.Object(
  {
    type: Type.Literal('message'),
    id: Type.String({ format: 'uuid' }),
    author: Type.Object(
      { id: Type.String({ format: 'uuid' }), name: Type.String(), role: Enum(ROLES) },
      { description: 'Who wrote it: display name and role, never the email' },
    ),
    text: Type.String(),
    created_at: DateTime,
  },
  { $id: 'ThreadMessage', title: 'ThreadMessage', description: 'A message of the order’s conversation' },
);

export const ThreadEventSchema = Type.Object(
  {
    type: Type.Literal('event'),
    id: Type.String({ format: 'uuid' }),
    kind: Nullable(Type.String({ description: 'The workflow move (submit, auto_assign, take, accept, reject, revise, record_payment, pay_online, start_production, ship, deliver, confirm_delivery…); null on events older than named moves' })),
    from_status: Nullable(Enum(ORDER_STATUSES)),
    to_status: Enum(ORDER_STATUSES),
    actor: Nullable(Type.Object({ id: Type.String({ format: 'uuid' }), name: Type.String() }, { description: 'Who made the move; null when the service or Stripe did' })),
    note: Nullable(Type.String()),
    feedback: Nullable(Type.String({ description: 'The rejection’s feedback (reject only)' })),
    carrier: Nullable(Type.String({ description: 'ship only, when given' })),
    tracking_number: Nullable(Type.String({ description: 'ship only, when given' })),
    created_at: DateTime,
  },
  { $id: 'ThreadEvent', title: 'ThreadEvent', description: 'A status event of the order’s timeline' },
);

export const ThreadItemSchema = Type.Unsafe<unknown>({
  $id: 'ThreadItem',
  title: 'ThreadItem',
  description: 'A message or a status event, told apart by `type`',
  oneOf: [{ $ref: 'ThreadEvent' }, { $ref: 'ThreadMessage' }],
});

export const CursorPaginationSchema = Type.Object(
  {
    limit: Type.Integer(),
    hasNext: Type.Boolean(),
    nextCursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page; null on the last page' })),
  },
  { $id: 'CursorPagination', title: 'CursorPagination' },
);

export const ThreadQuery = Type.Object(
  {
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'pagination.nextCursor of the previous page; absent: from the start' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: THREAD_PAGE.max, default: THREAD_PAGE.default })),
  },
  { additionalProperties: false },
);

export const ThreadReadBody = Type.Object(
  {
    item_id: Type.Optional(Type.String({ format: 'uuid', description: 'Read up to and including this item of the thread' })),
    read_at: Type.Optional(Type.String({ format: 'date-time', description: 'Read up to this instant (a later one counts as now)' })),
  },
  { additionalProperties: false, title: 'ThreadReadBody' },
);

export const ThreadReadMarkerSchema = Type.Object(
  {
    order_id: Type.String({ format: 'uuid' }),
    read_at: DateTime,
    unread_count: Type.Integer({ description: 'Items by others after read_at, as on the order' }),
  },
  { $id: 'ThreadReadMarker', title: 'ThreadReadMarker' },
);

import { Type } from 'typebox';
import { Nullable, PageQuery } from '../../lib/envelope.js';
import { CATEGORIES, EVENT_TYPES } from './events.js';

export const NotificationSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    event_id: Type.String({ format: 'uuid', description: 'The event it tells of; the same on every channel (email, live, webhooks)' }),
    type: Type.Union(EVENT_TYPES.map((t) => Type.Literal(t))),
    title: Type.String(),
    body: Type.String(),
    link: Type.String({ description: 'Path in the web front end, e.g. /orders/<id>' }),
    order: Nullable(
      Type.Object({
        id: Type.String({ format: 'uuid' }),
        number: Type.String({ description: "The order's short number: the first 8 hex digits of its id, upper case" }),
        status: Type.String({ description: 'The status the event moved it to' }),
        total_price_cents: Type.Optional(Nullable(Type.Integer())),
        currency: Type.Optional(Type.String()),
        feedback: Type.Optional(Nullable(Type.String())),
        carrier: Type.Optional(Nullable(Type.String())),
        tracking_number: Type.Optional(Nullable(Type.String())),
      }),
    ),
    read: Type.Boolean(),
    read_at: Nullable(Type.String({ format: 'date-time' })),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Notification', title: 'Notification' },
);

const flags = (description: string) =>
  Type.Object(Object.fromEntries(CATEGORIES.map((c) => [c, Type.Boolean()])) as Record<(typeof CATEGORIES)[number], ReturnType<typeof Type.Boolean>>, {
    description,
  });

export const NotificationPreferencesSchema = Type.Object(
  {
    email: flags('Email per category: order_updates (the order journey), messages (on my orders), gallery (comments on and reuse of my designs); on unless switched off'),
    in_app: flags('In-app notifications: always on'),
  },
  { $id: 'NotificationPreferences', title: 'NotificationPreferences' },
);

export const NotificationPreferencesBody = Type.Object(
  {
    email: Type.Object(
      Object.fromEntries(CATEGORIES.map((c) => [c, Type.Optional(Type.Boolean())])) as Record<(typeof CATEGORIES)[number], ReturnType<typeof Type.Optional<ReturnType<typeof Type.Boolean>>>>,
      { additionalProperties: false, description: 'Categories to switch on (true) or off (false); those left out keep their setting' },
    ),
  },
  { additionalProperties: false },
);

export const NotificationListQuery = Type.Object(
  {
    ...PageQuery,
    unread: Type.Optional(Type.Boolean({ description: 'true: only unread notifications' })),
  },
  { additionalProperties: false },
);

export const ReadAllResult = Type.Object({
  updated: Type.Integer({ description: 'Notifications marked read by this call' }),
  unread_notifications: Type.Integer(),
});

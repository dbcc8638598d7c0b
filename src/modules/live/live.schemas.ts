import { Type } from 'typebox';

export const StreamTicketSchema = Type.Object(
  {
    ticket: Type.String({ description: 'Single use: put it in `GET /api/v1/stream?ticket=…` before `expires_at`.' }),
    expires_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'StreamTicket', title: 'StreamTicket' },
);

export const StreamQuery = Type.Object(
  {
    ticket: Type.Optional(
      Type.String({
        maxLength: 100,
        description: 'A ticket from `POST /api/v1/stream/tickets`, for clients that cannot send `Authorization` (EventSource). Used up on the first try.',
      }),
    ),
    last_event_id: Type.Optional(
      Type.String({ maxLength: 200, description: 'Same as the `Last-Event-ID` header, for EventSource polyfills that cannot send it; the header wins.' }),
    ),
  },
  { additionalProperties: false },
);

export const StreamHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({ maxLength: 200, description: 'The id of the last event received: the events after it are sent first (browsers send it on reconnect).' }),
  ),
});

/** What a stream carries, for the document: the framing is text/event-stream, each event's `data` a Notice. */
export const StreamBody = Type.String({
  description:
    'Server-Sent Events. Each event: `id: <notification id>`, `event: notification`, `data: <Notice JSON>`. ' +
    'A `retry:` hint first, then `: heartbeat` comment lines while nothing happens.',
});

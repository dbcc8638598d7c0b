/**
 * What the outbox carries: one row per thing that happened and is worth telling, written in the transaction
 * of the change itself, with a stable id that every channel (in-app, email, webhooks, live stream) uses to
 * de-duplicate an at-least-once delivery.
 */
export const EVENT_TYPES = [
  'order.submitted',
  'order.assigned',
  'order.accepted',
  'order.rejected',
  'order.revised',
  'order.paid',
  'order.in_production',
  'order.shipped',
  'order.delivered',
  'order.ship_by_tomorrow',
  'message.created',
  'comment.created',
  'design.reused',
  'technician.invited',
  'webhook.disabled',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Email categories a person can switch off (in-app is always on). */
export const CATEGORIES = ['order_updates', 'messages', 'gallery'] as const;
export type Category = (typeof CATEGORIES)[number];

export const CATEGORY_OF: Record<EventType, Category | null> = {
  'order.submitted': 'order_updates',
  'order.assigned': 'order_updates',
  'order.accepted': 'order_updates',
  'order.rejected': 'order_updates',
  'order.revised': 'order_updates',
  'order.paid': 'order_updates',
  'order.in_production': 'order_updates',
  'order.shipped': 'order_updates',
  'order.delivered': 'order_updates',
  'order.ship_by_tomorrow': 'order_updates',
  'message.created': 'messages',
  'comment.created': 'gallery',
  'design.reused': 'gallery',
  // Sent to an address that has no account yet: no preferences apply.
  'technician.invited': null,
  // About the owner's own integration, which stopped receiving: always emailed.
  'webhook.disabled': null,
};

/** What a change tells, as a statement of another module writes it with the change (eventInsertFrom): type and data. */
export type Told = { type: EventType; data: Record<string, unknown> };

export interface OutboxEvent {
  id: string;
  type: EventType;
  occurredAt: string;
  actorId: string | null;
  orderId: string | null;
  designId: string | null;
  /** Type-specific facts, snake_case, safe to show the recipient (never another person's email). */
  data: Record<string, unknown>;
}

/** What one person is told about one event: an in-app notification, and the content of its email. */
export interface Notice {
  /** The notification's id (uuid): one per (event, recipient). */
  id: string;
  eventId: string;
  type: EventType;
  recipientId: string;
  createdAt: string;
  /** One line, e.g. "Order #3F9A12BC was shipped". */
  title: string;
  /** One or two sentences, plain text. */
  body: string;
  /** Path in the front end (joined to APP_URL), e.g. "/orders/<id>". */
  link: string;
  order?: {
    id: string;
    number: string;
    status: string;
    total_price_cents?: number | null;
    currency?: string;
    feedback?: string | null;
    carrier?: string | null;
    tracking_number?: string | null;
  };
}

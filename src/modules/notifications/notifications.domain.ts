import { createHash } from 'node:crypto';
import { shorten } from '../../lib/text.js';
import { shortOrderNumber } from '../orders/orders.domain.js';
import type { Category, EventType, Notice, OutboxEvent } from './events.js';

/**
 * How notices are made and delivered: the channel hooks the worker hands them to, the queues, and the
 * text of each notice. Pure: the worker (notifications.worker.ts) does the reading and writing.
 */

/** Delivery beyond in-app; each is optional and plugged in by the wiring (mailer, live stream, webhooks). */
export interface Channels {
  /** Called only when the recipient's preference for the event's category allows email (category null: always). */
  email?: (notice: Notice, to: { email: string; name: string }, category: Category | null) => Promise<void>;
  live?: (notice: Notice) => Promise<void>;
  webhooks?: (event: OutboxEvent) => Promise<void>;
}
export type ChannelName = keyof Channels;

/** In-app notifications (and the outbox events behind them) are kept this long, then removed by the worker. */
export const NOTIFICATION_RETENTION_DAYS = 180;
/** Outbox events the worker's relay queues per transaction (it goes on at once while batches come back full). */
export const RELAY_BATCH = 500;
export const CHANNEL_NAMES = ['email', 'live', 'webhooks'] as const satisfies readonly ChannelName[];

/**
 * pg-boss queues: the fan-out of one event, one job per (notice, channel) so a failing channel retries alone,
 * and the dead letters of all of them.
 */
export const QUEUES = {
  fanout: 'notify-fanout',
  email: 'notify-email',
  live: 'notify-live',
  webhooks: 'notify-webhooks',
  dead: 'notify-dead',
} as const;

/**
 * A uuid that is always the same for the same parts (name-based, RFC 9562 version 8 layout over SHA-256):
 * a notice's id from (event, recipient) and a channel job's from (notice, channel), so a re-run fan-out
 * writes and enqueues nothing new, and an email re-sent for the same notice carries the same Message-ID.
 */
export function stableId(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** The order as the fan-out reads it when it runs. */
export interface OrderFacts {
  id: string;
  customerId: string;
  technicianId: string | null;
  status: string;
  quantity: number;
  totalPriceCents: number | null;
  currency: string;
  feedback: string | null;
  carrier: string | null;
  trackingNumber: string | null;
}

export interface Person {
  id: string;
  name: string;
  email: string | null;
}

/** Everything a notice's text may draw on besides the event. */
export interface NoticeContext {
  order?: OrderFacts;
  /** Comment and reuse notices: whose design. */
  designOwnerId?: string;
  /** order.submitted that is still unassigned when the fan-out runs: every technician. */
  technicianIds?: string[];
}

const ORDER_STATUS_OF: Partial<Record<EventType, string>> = {
  'order.submitted': 'submitted',
  'order.assigned': 'under_review',
  'order.accepted': 'accepted',
  'order.rejected': 'rejected',
  'order.revised': 'under_review',
  'order.in_production': 'in_production',
  'order.shipped': 'shipped',
  'order.delivered': 'delivered',
};

/**
 * Who is told about `event`: never the person who did it.
 * - order events: the order's customer and its assigned technician; order.submitted while the order is still
 *   unassigned when the fan-out runs goes to every technician (the pool that may take it); once auto-assigned,
 *   the technician hears of it through order.assigned instead.
 * - message.created: the other party of the order. comment.created, design.reused: the design's owner.
 * - technician.invited: nobody with an account (the invited address, handled by the caller).
 * - webhook.disabled: the subscription's owner (the worker disabled it: there is no actor).
 * - order.ship_by_tomorrow: the order's technician only (the promise is theirs to keep).
 */
export function recipientsOf(event: OutboxEvent, context: NoticeContext): string[] {
  const ids = new Set<string>();
  if (event.type === 'technician.invited') return [];
  if (event.type === 'webhook.disabled') return typeof event.data.owner_id === 'string' ? [event.data.owner_id] : [];
  if (event.type === 'comment.created' || event.type === 'design.reused') {
    if (context.designOwnerId) ids.add(context.designOwnerId);
  } else if (context.order) {
    const order = context.order;
    if (event.type === 'order.submitted') {
      if (order.technicianId === null) for (const id of context.technicianIds ?? []) ids.add(id);
    } else if (event.type === 'order.ship_by_tomorrow') {
      if (order.technicianId) ids.add(order.technicianId);
    } else {
      ids.add(order.customerId);
      if (order.technicianId) ids.add(order.technicianId);
    }
  }
  if (event.actorId) ids.delete(event.actorId);
  return [...ids];
}

const text = (value: unknown) => (typeof value === 'string' ? value : '');
const excerpt = (value: unknown, max = 140) => shorten(text(value).replace(/\s+/g, ' ').trim(), max);

export function formatMoney(cents: number, currency: string): string {
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

/** The notice one recipient gets for one event: its title, body, link and the order's facts. */
export function buildNotice(event: OutboxEvent, recipientId: string, context: NoticeContext, now = new Date()): Notice {
  const d = event.data;
  const order = context.order;
  const number = order ? shortOrderNumber(order.id) : event.orderId ? shortOrderNumber(event.orderId) : '';
  const isCustomer = order?.customerId === recipientId;
  const orderLink = `/orders/${event.orderId ?? order?.id ?? ''}`;
  const designLink = `/designs/${event.designId ?? ''}`;
  let title: string;
  let body: string;
  let link = orderLink;
  switch (event.type) {
    case 'order.submitted':
      title = `Order #${number} is waiting for a technician`;
      body = `A new order for ${order?.quantity ?? d.quantity ?? 1} set(s) has no technician yet. Take it to review the design.`;
      break;
    case 'order.assigned':
      title = isCustomer ? `Order #${number} is being reviewed` : `Order #${number} was assigned to you`;
      body = isCustomer
        ? 'A nail technician is reviewing your design and will accept it with a price or send feedback.'
        : 'Review the design: accept it with a price, or reject it with feedback.';
      break;
    case 'order.accepted': {
      const cents = typeof d.total_price_cents === 'number' ? d.total_price_cents : order?.totalPriceCents;
      const price = cents == null ? 'its price' : formatMoney(cents, text(d.currency) || order?.currency || 'USD');
      title = `Order #${number} was accepted`;
      body = `The design was accepted at ${price}.${d.ship_by ? ` It ships by ${text(d.ship_by)} once paid.` : ''}`;
      break;
    }
    case 'order.rejected':
      title = `Order #${number} needs changes`;
      body = `The technician's feedback: "${excerpt(d.feedback, 500)}". Revise the design to send it again.`;
      break;
    case 'order.revised':
      title = `Order #${number} was revised`;
      body =
        typeof d.revision === 'number'
          ? `The customer sent revision ${d.revision} of the design; it is back for review.`
          : 'The customer revised the design; it is back for review.';
      break;
    case 'order.paid':
      title = `Order #${number} is paid`;
      body = isCustomer ? 'Your payment was recorded; production can start.' : 'The order is paid: production can start.';
      break;
    case 'order.in_production':
      title = `Order #${number} is in production`;
      body = 'Your press-on nails are being made.';
      break;
    case 'order.shipped': {
      const tracking = [text(d.carrier), text(d.tracking_number)].filter(Boolean).join(' ');
      title = `Order #${number} was shipped`;
      body = tracking ? `It is on its way: ${tracking}.` : 'It is on its way.';
      break;
    }
    case 'order.delivered':
      title = `Order #${number} was delivered`;
      body = isCustomer ? 'Enjoy your nails! You can rate the order now.' : 'The order reached its customer.';
      break;
    case 'order.ship_by_tomorrow':
      title = `Order #${number} ships by tomorrow`;
      body = `It promised to ship by ${text(d.ship_by)} and is ${text(d.status).replace('_', ' ')}: ship it with its tracking by then, or tell the customer.`;
      break;
    case 'message.created':
      title = `New message on order #${number}`;
      body = `${text(d.sender_name) || 'Someone'}: ${excerpt(d.text)}`;
      link = `${orderLink}#messages`;
      break;
    case 'comment.created':
      title = 'New comment on your design';
      body = `${text(d.author_name) || 'Someone'}: ${excerpt(d.text)}`;
      link = designLink;
      break;
    case 'design.reused':
      title = 'Your design was reused';
      body = `${text(d.user_name) || 'A customer'} started an order from your gallery design.`;
      link = designLink;
      break;
    case 'technician.invited':
      title = "You are invited to Kendall's Nails";
      body = `${text(d.invited_by_name) || "Kendall's Nails"} invited you to review and make orders as a nail technician. Set your password to start.`;
      link = '/';
      break;
    case 'webhook.disabled':
      title = 'Your webhook was disabled';
      body =
        d.reason === 'gone'
          ? `The receiver at ${text(d.host)} answered 410 Gone, so nothing more is sent to it.`
          : `Deliveries to ${text(d.host)} failed for ${text(d.retry_window)}, so nothing more is sent to it.`;
      body += ' Fix the receiver, then enable the webhook again and re-send the deliveries you need.';
      link = `/webhooks/${text(d.webhook_id)}`;
      break;
  }
  const notice: Notice = {
    id: stableId(event.id, recipientId),
    eventId: event.id,
    type: event.type,
    recipientId,
    createdAt: now.toISOString(),
    title,
    body,
    link,
  };
  if (order && event.type !== 'comment.created' && event.type !== 'design.reused') {
    notice.order = {
      id: order.id,
      number,
      // The status the event moved it to (the order may have moved on by the time the fan-out runs).
      status: ORDER_STATUS_OF[event.type] ?? order.status,
      total_price_cents: typeof d.total_price_cents === 'number' ? d.total_price_cents : order.totalPriceCents,
      currency: order.currency,
      feedback: event.type === 'order.rejected' ? text(d.feedback) : null,
      carrier: event.type === 'order.shipped' ? ((d.carrier as string | null) ?? null) : null,
      tracking_number: event.type === 'order.shipped' ? ((d.tracking_number as string | null) ?? null) : null,
    };
  }
  return notice;
}

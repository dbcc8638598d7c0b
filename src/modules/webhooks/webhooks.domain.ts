import { EVENT_TYPES, type EventType } from '../notifications/events.js';

/**
 * Outgoing webhooks (issue 16), following Standard Webhooks (https://www.standardwebhooks.com): technicians
 * subscribe a URL to event types; each matching event becomes one delivery, retried with backoff for a day.
 */

/**
 * What a technician's subscription may receive: never more than its owner could read through the API.
 * `design.reused` is left out: who reused a design is visible to the design's owner only, never to
 * technicians (GET /designs/{id}/inspiration is customers-only). `webhook.disabled` goes to the owner by email and
 * in-app only: the receiver it is about no longer gets anything.
 */
type NotForWebhooks = 'design.reused' | 'webhook.disabled';
export const WEBHOOK_EVENT_TYPES = EVENT_TYPES.filter((t) => t !== 'design.reused' && t !== 'webhook.disabled') as Exclude<EventType, NotForWebhooks>[];
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** Why a subscription is disabled: by its owner, by a 410 Gone from the receiver, or after failing for a whole retry window. */
export const DISABLED_REASONS = ['by_owner', 'gone', 'failing'] as const;
export type DisabledReason = (typeof DISABLED_REASONS)[number];

export const WEBHOOK_URL_MAX_LENGTH = 2000;
export const WEBHOOK_DESCRIPTION_MAX_LENGTH = 500;
/** Enough for every integration a small studio runs; bounds the fan-out of one event. */
export const WEBHOOKS_PER_OWNER_MAX = 20;
/** A delivery's log (its attempts) is kept this long after it settled (delivered, or failed for good). */
export const DELIVERY_RETENTION_DAYS = 30;

/**
 * Delay before retry n (1-based) after a failed attempt: Svix's published schedule, the reference
 * implementation of Standard Webhooks. Each delay gets ±20 % jitter so that a receiver coming back is
 * not hit by every waiting delivery in the same second. After the last entry, one final attempt at the
 * end of the retry window; a delivery still failing then is marked failed.
 */
export const RETRY_SCHEDULE_MS = [5_000, 5 * 60_000, 30 * 60_000, 2 * 3_600_000, 5 * 3_600_000, 10 * 3_600_000] as const;
/** A delivery is retried for this long after it was created (or re-sent). */
export const RETRY_WINDOW_MS = 24 * 3_600_000;
/** One attempt may take this long, connection included. */
export const ATTEMPT_TIMEOUT_MS = 10_000;
/** Old and new secrets both sign for this long after a rotation, unless the owner asks otherwise. */
export const DEFAULT_ROTATION_GRACE_S = 24 * 3600;
export const MAX_ROTATION_GRACE_S = 7 * 24 * 3600;

/** When the attempt after `attempts` failed ones is due, or null when the delivery has run out of time. */
export function nextAttemptAt(
  attempts: number,
  now: Date,
  deadline: Date,
  schedule: readonly number[] = RETRY_SCHEDULE_MS,
  random: () => number = Math.random,
): Date | null {
  if (now.getTime() >= deadline.getTime()) return null;
  const base = schedule[attempts - 1];
  if (base === undefined) return deadline;
  const at = now.getTime() + Math.round(base * (0.8 + 0.4 * random()));
  return new Date(Math.min(at, deadline.getTime()));
}

import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import type { Database, Executor } from '../../db/client.js';
import { fail, serviceUnavailable } from '../../errors.js';
import type { OutboxEvent } from '../notifications/events.js';
import type { Notify } from '../notifications/outbox.js';
import type { UserRow } from '../users/users.repository.js';
import {
  ATTEMPT_TIMEOUT_MS,
  DEFAULT_ROTATION_GRACE_S,
  type DeliveryStatus,
  RETRY_SCHEDULE_MS,
  RETRY_WINDOW_MS,
  WEBHOOKS_PER_OWNER_MAX,
  type WebhookEventType,
  nextAttemptAt,
} from './webhooks.domain.js';
import type { AttemptRow, Audience, DeliveryRow, SubscriptionRow, WebhooksRepository } from './webhooks.repository.js';
import { type SecretBox, newSigningSecret } from './secrets.js';
import { type AttemptResult, type PostRequest, postWebhook } from './sender.js';
import { type Resolve, UrlRefused, checkWebhookUrl, parseWebhookUrl, resolveTarget, systemResolve } from './url-guard.js';

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WebhooksOptions {
  db: Database;
  webhooks: WebhooksRepository;
  /** Seals signing secrets at rest; undefined when staging or production has no WEBHOOK_ENCRYPTION_KEYS (503 on create). */
  secrets: SecretBox | undefined;
  /** Staging and production: https only, public addresses only (url-guard.ts). */
  strictUrls: boolean;
  log: Logger;
  /** Records `webhook.disabled` in the outbox, in the transaction that disables a subscription: its owner is told. */
  notify?: Notify;
  /** Test seams: name resolution, the scheduler's clock and jitter, the HTTP call and the retry policy. */
  resolve?: Resolve;
  clock?: () => Date;
  random?: () => number;
  post?: (request: PostRequest) => Promise<AttemptResult>;
  schedule?: readonly number[];
  retryWindowMs?: number;
  timeoutMs?: number;
  /** Deliveries one deliverDue() call claims. */
  batchSize?: number;
}

export interface SubscriptionView {
  id: string;
  url: string;
  description: string | null;
  event_types: string[];
  enabled: boolean;
  disabled_reason: string | null;
  disabled_at: string | null;
  failing_since: string | null;
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export const renderSubscription = (s: SubscriptionRow, now: Date): SubscriptionView => ({
  id: s.id,
  url: s.url,
  description: s.description,
  event_types: s.eventTypes,
  enabled: s.enabled,
  disabled_reason: s.disabledReason,
  disabled_at: iso(s.disabledAt),
  failing_since: iso(s.failingSince),
  previous_secret_expires_at: s.previousSecretExpiresAt && s.previousSecretExpiresAt > now ? s.previousSecretExpiresAt.toISOString() : null,
  created_at: s.createdAt.toISOString(),
  updated_at: s.updatedAt.toISOString(),
});

const renderAttempt = (a: AttemptRow) => ({
  attempted_at: a.attemptedAt.toISOString(),
  status_code: a.statusCode,
  duration_ms: a.durationMs,
  error: a.error,
});

const renderDelivery = (d: DeliveryRow, attempts: AttemptRow[]) => ({
  id: d.id,
  event_id: d.eventId,
  event_type: d.eventType,
  status: d.status,
  attempt_count: d.attempts,
  next_attempt_at: d.status === 'pending' ? iso(d.nextAttemptAt) : null,
  retry_until: d.retryUntil.toISOString(),
  delivered_at: iso(d.deliveredAt),
  created_at: d.createdAt.toISOString(),
  payload: d.payload,
  attempts: attempts.map(renderAttempt),
});

const refused = (err: unknown): never => {
  if (err instanceof UrlRefused) {
    throw fail('WEBHOOK_URL_NOT_ALLOWED', err.message, { problem: err.problem, ...(err.address ? { address: err.address } : {}) });
  }
  throw err;
};

/** The body Standard Webhooks prescribes: the event type, when it happened, and its facts. */
export function webhookPayload(event: OutboxEvent): Record<string, unknown> {
  return {
    type: event.type,
    timestamp: event.occurredAt,
    data: { event_id: event.id, order_id: event.orderId, design_id: event.designId, actor_id: event.actorId, ...event.data },
  };
}

/**
 * Outgoing webhooks (issue 16): technicians' subscriptions, the fan-out of outbox events into deliveries
 * (`enqueue`, called by the outbox worker in its transaction), and their delivery (`deliverDue`, called
 * periodically by the worker). Nothing here is ever called from a request's path except the management routes.
 */
export function createWebhooksService(opts: WebhooksOptions) {
  const { db, webhooks, log } = opts;
  const resolve = opts.resolve ?? systemResolve;
  const clock = opts.clock ?? (() => new Date());
  const random = opts.random ?? Math.random;
  const post = opts.post ?? postWebhook;
  const schedule = opts.schedule ?? RETRY_SCHEDULE_MS;
  const windowMs = opts.retryWindowMs ?? RETRY_WINDOW_MS;
  const timeoutMs = opts.timeoutMs ?? ATTEMPT_TIMEOUT_MS;
  const batchSize = opts.batchSize ?? 20;
  const windowHours = Math.round(windowMs / 3_600_000);

  const notFound = () => fail('WEBHOOK_NOT_FOUND', 'No such webhook among yours.');
  const requireBox = (): SecretBox => {
    if (!opts.secrets) {
      throw serviceUnavailable('WEBHOOKS_NOT_CONFIGURED', 'Webhooks are not configured on this server (WEBHOOK_ENCRYPTION_KEYS is unset); ask its operator.', 60);
    }
    return opts.secrets;
  };

  async function owned(owner: UserRow, id: string, tx: Executor = db, lock = false) {
    const row = await webhooks.findOwned(id, owner.id, tx, lock);
    if (!row) throw notFound();
    return row;
  }

  /** Who an event may reach through a webhook: what its subscriber could read through the API (README "Outgoing webhooks"). */
  async function audienceOf(event: OutboxEvent, tx: Executor): Promise<Audience> {
    switch (event.type) {
      case 'comment.created':
        // Comments on a design in the gallery are public: every technician may read them (and moderates them).
        return event.designId && (await webhooks.designInGallery(event.designId, tx)) ? { everyTechnicianExcept: null } : { owners: [] };
      case 'technician.invited':
        // Only the technician who sent the invitation: invitations are listed nowhere.
        return { owners: event.actorId ? [event.actorId] : [] };
      case 'design.reused':
      case 'webhook.disabled':
        return { owners: [] };
      default: {
        // Order events and messages: the order's technician; an unassigned order's submission, every technician but its customer.
        if (!event.orderId) return { owners: [] };
        const parties = await webhooks.orderParties(event.orderId, tx);
        if (!parties) return { owners: [] };
        if (parties.technicianId) return { owners: [parties.technicianId] };
        return event.type === 'order.submitted' ? { everyTechnicianExcept: parties.customerId } : { owners: [] };
      }
    }
  }

  /** The signatures of one attempt: the current secret's, and the previous one's during a rotation's grace period. */
  function sign(subscription: SubscriptionRow, box: SecretBox, msgId: string, at: Date, body: string): string {
    const secrets = [box.open(subscription.secret, subscription.id)];
    if (subscription.previousSecret && subscription.previousSecretExpiresAt && subscription.previousSecretExpiresAt > clock()) {
      secrets.push(box.open(subscription.previousSecret, subscription.id));
    }
    return secrets.map((s) => new Webhook(s).sign(msgId, at, body)).join(' ');
  }

  /** One attempt of one claimed delivery, recorded with its outcome. */
  async function attempt(delivery: DeliveryRow, subscription: SubscriptionRow): Promise<DeliveryStatus> {
    const attemptedAt = clock();
    let result: AttemptResult;
    try {
      const url = parseWebhookUrl(subscription.url, opts.strictUrls);
      // Checked again now, and the connection goes to the address checked (DNS rebinding).
      const target = await resolveTarget(url, opts.strictUrls, resolve, timeoutMs);
      const body = JSON.stringify(delivery.payload);
      // webhook-timestamp is the real time of sending (receivers refuse one more than minutes away), never the scheduler's clock.
      const sentAt = new Date();
      const headers = {
        'content-type': 'application/json',
        'user-agent': 'KendallsNails-Webhooks/1',
        'webhook-id': delivery.eventId,
        'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
        'webhook-signature': sign(subscription, requireBox(), delivery.eventId, sentAt, body),
      };
      result = await post({ url, address: target.address, family: target.family, headers, body, timeoutMs });
    } catch (err) {
      // A refused address or a secret that no configured key opens: a failed attempt, never a crash of the batch.
      result = { statusCode: null, durationMs: 0, error: err instanceof UrlRefused ? `refused: ${err.message}` : `not sent: ${(err as Error).message}` };
    }
    const ok = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
    const now = clock();
    let disabled: { row: SubscriptionRow; reason: 'gone' | 'failing' } | undefined;
    let status: 'delivered' | 'pending' | 'failed';
    if (ok) {
      await webhooks.recordDelivered({ deliveryId: delivery.id, attemptedAt, ...result }, subscription.id, now);
      status = 'delivered';
    } else {
      // The owner is told through the outbox, in the transaction that disables: told exactly when it happened.
      status = await db.transaction(async (tx) => {
        await webhooks.recordAttempt({ deliveryId: delivery.id, attemptedAt, ...result }, tx);
        const next = result.statusCode === 410 ? null : nextAttemptAt(delivery.attempts + 1, now, delivery.retryUntil, schedule, random);
        await webhooks.settleDelivery(delivery.id, { status: next ? 'pending' : 'failed', nextAttemptAt: next }, tx);
        const failingSince = await webhooks.markFailing(subscription.id, now, tx);
        // 410 Gone: the receiver says the endpoint is gone for good. Otherwise a whole retry window without one success.
        const reason = result.statusCode === 410 ? 'gone' : failingSince && now.getTime() - failingSince.getTime() >= windowMs ? 'failing' : undefined;
        if (reason) {
          const row = await webhooks.disable(subscription.id, reason, now, tx);
          if (row) {
            disabled = { row, reason };
            await opts.notify?.(
              {
                type: 'webhook.disabled',
                actorId: null,
                data: { webhook_id: row.id, owner_id: row.ownerId, reason, host: new URL(row.url).host, retry_window: `${windowHours} hours` },
              },
              tx,
            );
          }
        }
        return next ? ('pending' as const) : ('failed' as const);
      });
    }
    log.info(
      { webhookId: subscription.id, deliveryId: delivery.id, eventId: delivery.eventId, statusCode: result.statusCode, durationMs: result.durationMs, outcome: status },
      ok ? 'webhook delivered' : `webhook attempt failed${result.error ? `: ${result.error}` : ''}`,
    );
    if (disabled) log.warn({ webhookId: disabled.row.id, ownerId: disabled.row.ownerId, reason: disabled.reason }, `webhook ${disabled.row.id} disabled (${disabled.reason}); its owner is told`);
    return status;
  }

  return {
    configured: Boolean(opts.secrets),

    /** Retention (the worker's sweep): deliveries settled before `cutoff`, with their attempts. */
    purgeSettledBefore: (cutoff: Date, limit: number) => webhooks.purgeSettledBefore(cutoff, limit),

    async create(owner: UserRow, input: { url: string; event_types: WebhookEventType[]; description?: string }) {
      const box = requireBox();
      await checkWebhookUrl(input.url, opts.strictUrls, resolve).catch(refused);
      const id = randomUUID();
      const secret = newSigningSecret();
      const row = await db.transaction(async (tx) => {
        if ((await webhooks.countOwned(owner.id, tx)) >= WEBHOOKS_PER_OWNER_MAX) {
          throw fail('WEBHOOK_LIMIT_REACHED', `You have ${WEBHOOKS_PER_OWNER_MAX} webhooks already; delete one you no longer use first.`);
        }
        return webhooks.insert(
          { id, ownerId: owner.id, url: input.url, description: input.description?.trim() || null, eventTypes: [...new Set(input.event_types)], secret: box.seal(secret, id) },
          tx,
        );
      });
      return { ...renderSubscription(row, clock()), secret };
    },

    async list(owner: UserRow, limit: number, offset: number) {
      const { rows, total } = await webhooks.listOwned(owner.id, limit, offset);
      const now = clock();
      return { items: rows.map((r) => renderSubscription(r, now)), total };
    },

    async get(owner: UserRow, id: string) {
      return renderSubscription(await owned(owner, id), clock());
    },

    /** Changes the URL, types or description, or enables/disables it. Enabling clears the failure state; waiting deliveries resume. */
    async update(owner: UserRow, id: string, input: { url?: string; event_types?: WebhookEventType[]; description?: string | null; enabled?: boolean }) {
      const current = await owned(owner, id);
      if (input.url !== undefined) await checkWebhookUrl(input.url, opts.strictUrls, resolve).catch(refused);
      const set: Parameters<WebhooksRepository['updateOwned']>[2] = {};
      if (input.url !== undefined) set.url = input.url;
      if (input.event_types !== undefined) set.eventTypes = [...new Set(input.event_types)];
      if (input.description !== undefined) set.description = input.description?.trim() || null;
      if (input.enabled === true && !current.enabled) Object.assign(set, { enabled: true, disabledReason: null, disabledAt: null, failingSince: null });
      if (input.enabled === false && current.enabled) Object.assign(set, { enabled: false, disabledReason: 'by_owner', disabledAt: clock() });
      const row = Object.keys(set).length ? await webhooks.updateOwned(id, owner.id, set) : current;
      if (!row) throw notFound();
      return renderSubscription(row, clock());
    },

    async remove(owner: UserRow, id: string) {
      if (!(await webhooks.deleteOwned(id, owner.id))) throw notFound();
    },

    /**
     * A new secret, shown once. The previous one keeps signing beside it for `graceSeconds` (Standard Webhooks
     * sends several signatures), so receivers can switch without losing a delivery; an older previous one is dropped.
     */
    async rotateSecret(owner: UserRow, id: string, graceSeconds = DEFAULT_ROTATION_GRACE_S) {
      const box = requireBox();
      const secret = newSigningSecret();
      const row = await db.transaction(async (tx) => {
        const current = await owned(owner, id, tx, true);
        return webhooks.updateOwned(
          id,
          owner.id,
          {
            secret: box.seal(secret, id),
            previousSecret: graceSeconds > 0 ? current.secret : null,
            previousSecretExpiresAt: graceSeconds > 0 ? new Date(clock().getTime() + graceSeconds * 1000) : null,
          },
          tx,
        );
      });
      if (!row) throw notFound();
      return { ...renderSubscription(row, clock()), secret };
    },

    async deliveries(owner: UserRow, id: string, status: DeliveryStatus | undefined, limit: number, offset: number) {
      await owned(owner, id);
      const { rows, attempts, total } = await webhooks.listDeliveries(id, status, limit, offset);
      const byDelivery = new Map<string, AttemptRow[]>();
      for (const a of attempts) byDelivery.set(a.deliveryId, [...(byDelivery.get(a.deliveryId) ?? []), a]);
      return { items: rows.map((d) => renderDelivery(d, byDelivery.get(d.id) ?? [])), total };
    },

    /** Queues one delivery again, now, with a fresh retry window; the worker sends it (never this request). */
    async resend(owner: UserRow, id: string, deliveryId: string) {
      const subscription = await owned(owner, id);
      if (!subscription.enabled) throw fail('WEBHOOK_DISABLED', 'This webhook is disabled: enable it (PATCH enabled=true) before re-sending.');
      const now = clock();
      const row = await webhooks.requeue(deliveryId, id, now, new Date(now.getTime() + windowMs));
      if (!row) throw fail('WEBHOOK_DELIVERY_NOT_FOUND', 'No such delivery of this webhook.');
      return renderDelivery(row, await webhooks.attemptsOf(row.id));
    },

    /**
     * Fans an outbox event out to the subscriptions allowed to see it, in the caller's transaction when given
     * (the outbox worker's, so that marking the event handled and queueing its deliveries commit together).
     * Idempotent per (subscription, event id). Returns how many deliveries were queued.
     */
    async enqueue(event: OutboxEvent, tx: Executor = db): Promise<number> {
      const audience = await audienceOf(event, tx);
      const now = clock();
      const ids = await webhooks.fanOut(
        { id: event.id, type: event.type, payload: webhookPayload(event) },
        audience,
        { nextAttemptAt: now, retryUntil: new Date(now.getTime() + windowMs) },
        tx,
      );
      return ids.length;
    },

    /** Sends what is due, once; the worker calls it periodically. Concurrent callers (dynos) take different deliveries. */
    async deliverDue(): Promise<{ attempted: number; delivered: number; retrying: number; failed: number }> {
      const now = clock();
      // The lease outlasts an attempt; a worker killed mid-attempt leaves the delivery due again after it.
      const claimed = await webhooks.claimDue(now, new Date(now.getTime() + timeoutMs + 50_000), batchSize);
      const outcomes = await Promise.all(claimed.map(({ delivery, subscription }) => attempt(delivery, subscription)));
      return {
        attempted: outcomes.length,
        delivered: outcomes.filter((o) => o === 'delivered').length,
        retrying: outcomes.filter((o) => o === 'pending').length,
        failed: outcomes.filter((o) => o === 'failed').length,
      };
    },
  };
}

export type WebhooksService = ReturnType<typeof createWebhooksService>;

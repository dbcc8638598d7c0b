import type { FastifyBaseLogger } from 'fastify';
import { type AdminLogger, createIdentityAdmin } from './auth/management.js';
import { type Config, issuerUrl } from './config.js';
import type { PgBoss } from 'pg-boss';
import type { Database, DatabaseHandle } from './db/client.js';
import { type Reader, primaryReader } from './db/reader.js';
import { createCommentsRepository } from './modules/comments/comments.repository.js';
import { createCommentsService } from './modules/comments/comments.service.js';
import { createDesignsRepository } from './modules/designs/designs.repository.js';
import { lineageCounter } from './modules/designs/lineage.js';
import { createDesignsService } from './modules/designs/designs.service.js';
import { createInvitationsRepository } from './modules/invitations/invitations.repository.js';
import { createInvitationsService } from './modules/invitations/invitations.service.js';
import { createMessagesRepository } from './modules/messages/messages.repository.js';
import { createMessagesService } from './modules/messages/messages.service.js';
import { createModerationRepository } from './modules/moderation/moderation.repository.js';
import { createModerationService } from './modules/moderation/moderation.service.js';
import { createThreadsRepository } from './modules/threads/threads.repository.js';
import { createThreadsService } from './modules/threads/threads.service.js';
import { createRatingsRepository } from './modules/ratings/ratings.repository.js';
import { createRatingsService } from './modules/ratings/ratings.service.js';
import { createOrdersRepository } from './modules/orders/orders.repository.js';
import { createOrdersService } from './modules/orders/orders.service.js';
import { type Channels, NOTIFICATION_RETENTION_DAYS } from './modules/notifications/notifications.domain.js';
import { createNotificationsRepository } from './modules/notifications/notifications.repository.js';
import { createNotificationsService, noticeOf } from './modules/notifications/notifications.service.js';
import { type MailLogger, createMailer } from './modules/notifications/mailer.js';
import type { Backlog } from './modules/live/live.domain.js';
import type { LiveBus } from './modules/live/bus.js';
import { type WorkerLogger, createNotificationWorker } from './modules/notifications/notifications.worker.js';
import { type Notify, createOutbox, toldByMove } from './modules/notifications/outbox.js';
import { createBoss, ensureQueues } from './modules/notifications/queue.js';
import { createPaymentsRepository } from './modules/payments/payments.repository.js';
import { createPaymentsService } from './modules/payments/payments.service.js';
import { type StripeEndpoint, createStripe } from './modules/payments/stripe.js';
import { createWorkflow, PAYMENT_MOVES } from './modules/orders/workflow.js';
import { cacheProfiles } from './modules/users/users.cache.js';
import { createUsersRepository } from './modules/users/users.repository.js';
import { createUserInfoFetcher, createUsersService } from './modules/users/users.service.js';
import { createWebhooksRepository } from './modules/webhooks/webhooks.repository.js';
import { DELIVERY_RETENTION_DAYS } from './modules/webhooks/webhooks.domain.js';
import { type PeriodicLogger, every } from './lib/periodic.js';
import { RETENTION_SWEEP_INTERVAL_MS, type RetentionLogger, retentionSweep } from './lib/retention.js';
import { REMINDERS_INTERVAL_MS, createShipByReminders } from './modules/notifications/ship-by-reminders.js';
import { type WebhooksOptions, type WebhooksService, createWebhooksService } from './modules/webhooks/webhooks.service.js';
import { type PumpLogger, createDeliveryPump } from './modules/webhooks/webhooks.pump.js';
import { DEVELOPMENT_KEY, createSecretBox } from './modules/webhooks/secrets.js';
import type { StorageCleanup } from './storage/cleanup.js';
import { processDesignImage } from './storage/png.js';
import type { Storage } from './storage/storage.js';

/**
 * The services, built from configuration and a database: the one wiring that the API (app.ts) and the
 * command-line tool (cli.ts) share, so both run the same code paths.
 */

/**
 * Notifications (issue 16): the job queue on the application's database, the outbox every service records its
 * events into, and the in-app API's service. `supervise`: this process runs pg-boss's maintenance (the worker does).
 */
export function wireNotifications(config: Config, handle: DatabaseHandle, deps: { log: WorkerLogger; supervise: boolean }) {
  const repo = createNotificationsRepository(handle.db);
  let started: Promise<PgBoss> | undefined;
  let boss: PgBoss | undefined;
  /**
   * Builds and starts the queue once (retried on the next call after a failure): the worker's, whether its own dyno
   * or in-process. A process that only records events never calls it, and never loads pg-boss (queue.ts).
   */
  const ready = () =>
    (started ??= (async () => {
      if (!boss) {
        boss = await createBoss(handle, { supervise: deps.supervise });
        boss.on('error', (err: Error) => deps.log.error({ err: { message: err.message } }, 'job queue error'));
      }
      await boss.start();
      await ensureQueues(boss, config.worker);
      return boss;
    })().catch((err: unknown) => {
      started = undefined;
      throw err;
    }));
  const outbox = createOutbox({ repo });
  return {
    repo,
    /** The started queue: only after `ready()` resolved. */
    get boss(): PgBoss {
      if (!boss || !started) throw new Error('the job queue is not started: await ready() first');
      return boss;
    },
    ready,
    notify: outbox.record as Notify,
    notifications: createNotificationsService({ repo }),
    /** Stops the queue (after any worker on it): jobs in hand finish within `timeoutMs`. */
    async stop(timeoutMs: number) {
      if (!started) return;
      const running = await started.catch(() => undefined);
      await running?.stop({ close: false, graceful: true, timeout: timeoutMs });
    },
  };
}

export type NotificationsWiring = ReturnType<typeof wireNotifications>;

/** The notification worker over the same repositories the API uses; `channels` are the delivery hooks plugged in. */
export function wireWorker(
  config: Config,
  db: Database,
  deps: {
    notifications: NotificationsWiring;
    identity: ReturnType<typeof wireIdentity>;
    orders: ReturnType<typeof wireOrders>;
    channels: Channels;
    log: WorkerLogger;
  },
) {
  return createNotificationWorker({
    db,
    boss: deps.notifications.boss,
    repo: deps.notifications.repo,
    orders: deps.orders.repositories.orders,
    designs: deps.orders.repositories.designs,
    users: deps.identity.usersRepository,
    invitations: deps.identity.invitationsRepository,
    channels: deps.channels,
    log: deps.log,
    settings: { pollIntervalS: config.worker.pollIntervalS, batchSize: config.worker.batchSize },
  });
}

/**
 * What the worker delivers through: email (the mailer; none when deployed without SMTP_URL), the live bus (each
 * notice to its recipient's streams on every web process) and outgoing webhooks (a delivery per matching
 * subscription), plus the worker's background work: the pump that sends due webhook deliveries, and hourly the
 * retention sweep of what was delivered and the ship-by reminders.
 */
export function wireDelivery(
  config: Config,
  db: Database,
  deps: {
    live: Pick<LiveBus, 'publish'>;
    webhooks: WebhooksService;
    notifications: NotificationsWiring;
    orders: ReturnType<typeof wireOrders>;
    identity: ReturnType<typeof wireIdentity>;
    log: MailLogger & PumpLogger & RetentionLogger & PeriodicLogger;
  },
) {
  const mailer = createMailer(config, deps.log);
  const channels: Channels = {
    ...(mailer.mode === 'off' ? {} : { email: (notice, to, category) => mailer.send(notice, to, category) }),
    live: (notice) => deps.live.publish(notice.recipientId, { id: notice.id, type: 'notification', data: notice }),
    webhooks: async (event) => {
      await deps.webhooks.enqueue(event);
    },
  };
  const pump = createDeliveryPump(deps.webhooks, { intervalMs: config.worker.pollIntervalS * 1000, log: deps.log });
  const sweep = retentionSweep(
    [
      {
        name: 'notifications',
        keepDays: NOTIFICATION_RETENTION_DAYS,
        purge: async (cutoff, limit) => {
          const { notifications, events } = await deps.notifications.repo.purgeBefore(cutoff, limit);
          return Math.max(notifications, events);
        },
      },
      { name: 'webhook_deliveries', keepDays: DELIVERY_RETENTION_DAYS, purge: (cutoff, limit) => deps.webhooks.purgeSettledBefore(cutoff, limit) },
    ],
    { log: deps.log },
  );
  const reminders = createShipByReminders({ db, orders: deps.orders.repositories.orders, users: deps.identity.usersRepository, notify: deps.notifications.notify });
  const upkeep = {
    retention: every(RETENTION_SWEEP_INTERVAL_MS, sweep, { name: 'retention', log: deps.log }),
    reminders: every(REMINDERS_INTERVAL_MS, reminders.run, { name: 'ship-by reminders', log: deps.log }),
  };
  return {
    channels,
    pump,
    upkeep,
    start() {
      pump.start();
      upkeep.retention.start();
      upkeep.reminders.start();
    },
    async stop() {
      await pump.stop();
      await upkeep.retention.stop();
      await upkeep.reminders.stop();
      await mailer.close();
    },
  };
}

/** A resuming live stream's backlog: the person's stored notifications after the last one it saw. */
export const notificationBacklog =
  (notifications: NotificationsWiring): Backlog =>
  async (userId, afterId, limit) =>
    (await notifications.repo.after(userId, afterId, limit)).map((row) => ({ id: row.id, type: 'notification' as const, data: noticeOf(row) }));

/** People: profiles and technician invitations. Needs neither image storage nor anything only the web process has. */
export function wireIdentity(config: Config, db: Database, deps: { log: AdminLogger; fetch?: typeof globalThis.fetch; notify?: Notify }) {
  const usersRepository = cacheProfiles(createUsersRepository(db));
  const invitationsRepository = createInvitationsRepository(db);
  return {
    usersRepository,
    invitationsRepository,
    users: createUsersService({
      db,
      users: usersRepository,
      invitations: invitationsRepository,
      userInfo: createUserInfoFetcher(issuerUrl(config), deps.fetch ?? globalThis.fetch),
    }),
    invitations: createInvitationsService({
      db,
      invitations: invitationsRepository,
      users: usersRepository,
      identity: createIdentityAdmin(config, { fetch: deps.fetch, log: deps.log }),
      notify: deps.notify,
    }),
  };
}

/** Orders and what hangs off them: the workflow, messages, the gallery and its comments. */
export function wireOrders(
  config: Config,
  db: Database,
  deps: {
    storage: Storage;
    cleanup: Pick<StorageCleanup, 'remove' | 'settle'>;
    users: ReturnType<typeof wireIdentity>['usersRepository'];
    log: FastifyBaseLogger;
    /** Where the Stripe SDK sends its calls (tests: a local fake); api.stripe.com when absent. */
    stripeEndpoint?: Partial<StripeEndpoint>;
    /** Where anonymous gallery and comment reads go (db/reader.ts); the primary when absent. */
    reader?: Reader;
    /** The notifications outbox: every event worth telling is recorded in its change's transaction. */
    notify?: Notify;
  },
) {
  const ordersRepository = createOrdersRepository(db);
  const designsRepository = createDesignsRepository(db);
  // Built once per database handle: a repository's prepared statements belong to the handle it was made with.
  const anonymous = (deps.reader ?? primaryReader(db)).bind((handle) => ({
    designs: createDesignsRepository(handle),
    comments: createCommentsRepository(handle),
  }));
  const workflow = createWorkflow({ db, orders: ordersRepository });
  workflow.subscribe(lineageCounter(designsRepository), PAYMENT_MOVES);
  if (deps.notify) workflow.tellWith(toldByMove, deps.notify);
  const orders = createOrdersService({
    db,
    orders: ordersRepository,
    designs: designsRepository,
    users: deps.users,
    workflow,
    storage: deps.storage,
    cleanup: deps.cleanup,
    processImage: processDesignImage,
    pricing: { basePriceCents: config.basePriceCents, currency: config.currency },
    turnaroundBusinessDays: config.turnaroundBusinessDays,
    notify: deps.notify,
  });
  const designs = createDesignsService({ db, designs: designsRepository, storage: deps.storage, anonymous });
  const payments = createPaymentsService({
    db,
    payments: createPaymentsRepository(db),
    orders: ordersRepository,
    workflow,
    stripe: config.stripe
      ? { client: createStripe(config.stripe.secretKey, deps.stripeEndpoint), webhookSecret: config.stripe.webhookSecret }
      : undefined,
    appUrl: config.appUrl,
    log: deps.log,
  });
  return {
    repositories: { orders: ordersRepository, designs: designsRepository },
    workflow,
    orders,
    payments,
    messages: createMessagesService({ db, messages: createMessagesRepository(db), orders }),
    threads: createThreadsService({ threads: createThreadsRepository(db), orders }),
    designs,
    comments: createCommentsService({ db, comments: createCommentsRepository(db), designs, designCounts: designsRepository, anonymous, notify: deps.notify }),
    ratings: createRatingsService({ ratings: createRatingsRepository(db) }),
    moderation: createModerationService({ db, moderation: createModerationRepository(db), designCounts: designsRepository }),
  };
}

/** What a test or the worker may replace in the webhooks service (its clock, resolver, retry policy, owner notice). */
export type WebhooksSeams = Partial<Pick<WebhooksOptions, 'resolve' | 'clock' | 'random' | 'post' | 'schedule' | 'retryWindowMs' | 'timeoutMs' | 'batchSize'>>;

/**
 * Outgoing webhooks: the API manages subscriptions with it; the worker calls its enqueue(event, tx) for each
 * outbox event and deliverDue() periodically. Development without WEBHOOK_ENCRYPTION_KEYS seals secrets with a
 * public built-in key; staging and production without one answer 503 WEBHOOKS_NOT_CONFIGURED.
 */
export function wireWebhooks(config: Config, db: Database, deps: Pick<WebhooksOptions, 'log' | 'notify'> & WebhooksSeams) {
  const { log, ...seams } = deps;
  const keys = config.webhooks.encryptionKeys ?? (config.environment === 'development' ? [DEVELOPMENT_KEY] : undefined);
  return createWebhooksService({
    db,
    webhooks: createWebhooksRepository(db),
    secrets: keys ? createSecretBox(keys) : undefined,
    strictUrls: config.environment !== 'development',
    log,
    ...seams,
  });
}

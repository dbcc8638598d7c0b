import type { JobWithMetadata, PgBoss } from 'pg-boss';
import type { Database } from '../../db/client.js';
import type { DesignsRepository } from '../designs/designs.repository.js';
import type { InvitationsRepository } from '../invitations/invitations.repository.js';
import type { OrderRow, OrdersRepository } from '../orders/orders.repository.js';
import type { UsersRepository } from '../users/users.repository.js';
import { CATEGORY_OF, type Category, type Notice, type OutboxEvent } from './events.js';
import { every } from '../../lib/periodic.js';
import { type ChannelName, type Channels, type NoticeContext, QUEUES, RELAY_BATCH, buildNotice, recipientsOf, stableId } from './notifications.domain.js';
import type { NotificationsRepository } from './notifications.repository.js';
import { inTransaction } from './queue.js';

export interface WorkerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WorkerDeps {
  db: Database;
  boss: PgBoss;
  repo: NotificationsRepository;
  /** Reads of the other modules (never their writes): the order, people, the design, the invitation. */
  orders: Pick<OrdersRepository, 'findByIds'>;
  users: Pick<UsersRepository, 'findPeople' | 'technicianIds'>;
  designs: Pick<DesignsRepository, 'findById'>;
  invitations: Pick<InvitationsRepository, 'findWithInviter'>;
  channels: Channels;
  log: WorkerLogger;
  settings: { pollIntervalS: number; batchSize: number };
}

interface FanoutJob {
  event_id: string;
}
interface EmailJob {
  notice: Notice;
  to: { email: string; name: string };
  category: Category | null;
}
interface LiveJob {
  notice: Notice;
}
interface WebhooksJob {
  event_id: string;
}

/** An error a channel marks as not worth retrying (e.g. a mailer's 5xx "no such recipient"): dead-lettered at once. */
const isPermanent = (err: unknown) => typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === false;

/**
 * The notification worker: the fan-out job of each outbox event writes the in-app notifications and enqueues
 * one job per (notice, channel) in one transaction, with ids derived from the event, so a fan-out run twice
 * (at-least-once) writes and enqueues nothing twice; each channel job then retries on its own, with
 * exponential backoff, into the dead-letter queue after the configured attempts. One log line per retry and
 * per dead letter.
 */
export function createNotificationWorker(deps: WorkerDeps) {
  const { boss, repo, log } = deps;
  const queues: string[] = [];
  /** This process's pg-boss worker of each queue, woken when this process has just queued work for it. */
  const workerIds = new Map<string, string>();
  const wake = (queue: string) => {
    const id = workerIds.get(queue);
    if (id) boss.notifyWorker(id);
  };

  /** What the fan-out of `event` needs besides it, given the batch's orders (read together) and technicians (read once, if needed). */
  async function contextOf(event: OutboxEvent, orders: Map<string, OrderRow>, technicianIds: () => Promise<string[]>): Promise<NoticeContext> {
    const context: NoticeContext = {};
    const order = event.orderId ? orders.get(event.orderId) : undefined;
    if (order) {
      context.order = {
        id: order.id,
        customerId: order.customerId,
        technicianId: order.technicianId,
        status: order.status,
        quantity: order.quantity,
        totalPriceCents: order.totalPriceCents,
        currency: order.currency,
        feedback: order.feedback,
        carrier: order.carrier,
        trackingNumber: order.trackingNumber,
      };
      if (event.type === 'order.submitted' && order.technicianId === null) context.technicianIds = await technicianIds();
    }
    if (event.designId && (event.type === 'comment.created' || event.type === 'design.reused')) {
      context.designOwnerId = (await deps.designs.findById(event.designId))?.design.ownerId;
    }
    return context;
  }

  /** The invitation's address: read here, never carried by the event (webhooks see events). */
  async function invitedNotice(event: OutboxEvent): Promise<EmailJob | undefined> {
    const found = await deps.invitations.findWithInviter(String(event.data.invitation_id ?? ''));
    if (!found) return undefined;
    const { invitation } = found;
    const notice = buildNotice(event, invitation.id, {});
    notice.body += ` Your link, valid until ${invitation.expiresAt.toISOString().slice(0, 10)}: ${invitation.ticketUrl}`;
    return { notice, to: { email: invitation.email, name: invitation.name }, category: null };
  }

  /**
   * The fan-out of a batch of events in one go: the events, their orders, the people and their preferences read
   * together, and every notification and channel job written in one transaction (bench figure 8: the worker's cost
   * was its statements per event). A fan-out run again writes and enqueues nothing new (stable ids).
   */
  async function fanOut(eventIds: string[]): Promise<void> {
    const events = await repo.findEvents(eventIds);
    // The job commits with its event, so a missing one was removed by hand: nothing to tell.
    for (const id of eventIds) if (!events.some((e) => e.id === id)) log.warn({ event_id: id }, 'notification event not found; nothing to deliver');
    const orders = new Map((await deps.orders.findByIds([...new Set(events.flatMap((e) => (e.orderId ? [e.orderId] : [])))])).map((o) => [o.id, o]));
    let technicians: Promise<string[]> | undefined;
    const technicianIds = () => (technicians ??= deps.users.technicianIds());
    const told: Array<{ event: OutboxEvent; context: NoticeContext; recipients: string[] }> = [];
    const emails: EmailJob[] = [];
    const notices: Notice[] = [];
    for (const event of events) {
      if (event.type === 'technician.invited') {
        const invited = await invitedNotice(event);
        if (invited) emails.push(invited);
        continue;
      }
      const context = await contextOf(event, orders, technicianIds);
      told.push({ event, context, recipients: recipientsOf(event, context) });
    }
    const people = new Map((await deps.users.findPeople([...new Set(told.flatMap((t) => t.recipients))])).map((p) => [p.id, p]));
    const off = new Map<Category, Set<string>>();
    for (const { event, context, recipients } of told) {
      const category = CATEGORY_OF[event.type];
      if (category && deps.channels.email && !off.has(category)) {
        const inCategory = told.filter((t) => CATEGORY_OF[t.event.type] === category).flatMap((t) => t.recipients);
        off.set(category, await repo.emailOff([...new Set(inCategory)], category));
      }
      for (const id of new Set(recipients)) {
        const person = people.get(id);
        if (!person) continue;
        const notice = buildNotice(event, person.id, context);
        notices.push(notice);
        if (person.email && !(category && off.get(category)?.has(person.id))) emails.push({ notice, to: { email: person.email, name: person.name }, category });
      }
    }
    await deps.db.transaction(async (tx) => {
      await repo.insertNotifications(
        notices.map((n) => ({
          id: n.id,
          eventId: n.eventId,
          recipientId: n.recipientId,
          type: n.type,
          title: n.title,
          body: n.body,
          link: n.link,
          orderFacts: n.order ?? null,
          createdAt: new Date(n.createdAt),
        })),
        tx,
      );
      const db = inTransaction(tx);
      const jobs = (channel: ChannelName, items: Array<{ key: string; data: object }>) =>
        deps.channels[channel] && items.length
          ? boss.insert(QUEUES[channel], items.map((i) => ({ id: stableId(i.key, channel), data: i.data })), { db })
          : undefined;
      await jobs('live', notices.map((notice) => ({ key: notice.id, data: { notice } satisfies LiveJob })));
      await jobs('email', emails.map((job) => ({ key: job.notice.id, data: job })));
      await jobs('webhooks', events.map((event) => ({ key: event.id, data: { event_id: event.id } satisfies WebhooksJob })));
    });
    for (const channel of ['live', 'email', 'webhooks'] as const) wake(QUEUES[channel]);
  }

  /**
   * The outbox relay: queues the fan-out job of each event the request path recorded, a batch per transaction
   * (the job's id is the event's, so an event relayed twice is queued once), and goes on while batches come back
   * full. One statement per batch instead of a job insert on every request.
   */
  async function relay(): Promise<number> {
    let relayed = 0;
    for (;;) {
      const ids = await deps.db.transaction(async (tx) => {
        const claimed = await repo.claimUnrelayed(RELAY_BATCH, tx);
        if (claimed.length) {
          await boss.insert(QUEUES.fanout, claimed.map((id) => ({ id, data: { event_id: id } satisfies FanoutJob })), { db: inTransaction(tx) });
        }
        return claimed;
      });
      relayed += ids.length;
      if (ids.length) wake(QUEUES.fanout);
      if (ids.length < RELAY_BATCH) return relayed;
    }
  }
  const relaying = every(deps.settings.pollIntervalS * 1000, relay, { name: 'outbox relay', log });

  const handlers: Record<string, (data: never) => Promise<void>> = {
    [QUEUES.fanout]: (data: FanoutJob) => fanOut([data.event_id]),
    [QUEUES.email]: (data: EmailJob) => deps.channels.email!(data.notice, data.to, data.category),
    [QUEUES.live]: (data: LiveJob) => deps.channels.live!(data.notice),
    [QUEUES.webhooks]: async (data: WebhooksJob) => {
      const event = await repo.findEvent(data.event_id);
      if (event) await deps.channels.webhooks!(event);
    },
  };

  /**
   * Each job of a batch settles on its own: one failure retries that job only. The fan-out tries the whole batch
   * at once first, and only if that fails goes job by job, to find the one that fails.
   */
  async function run(queue: string, jobs: Array<JobWithMetadata<unknown>>) {
    if (queue === QUEUES.fanout && jobs.length > 1) {
      try {
        await fanOut(jobs.map((job) => (job.data as FanoutJob).event_id));
        return jobs.map((job) => ({ id: job.id, status: 'completed' as const }));
      } catch (err) {
        log.warn({ queue, jobs: jobs.length, err: { message: err instanceof Error ? err.message : String(err) } }, 'batched fan-out failed; retrying its events one by one');
      }
    }
    const handler = handlers[queue]!;
    return Promise.all(
      jobs.map(async (job) => {
        try {
          await handler(job.data as never);
          return { id: job.id, status: 'completed' as const };
        } catch (err) {
          const error = { message: err instanceof Error ? err.message : String(err) };
          const attempt = job.retryCount + 1;
          if (isPermanent(err) || job.retryCount >= job.retryLimit) {
            log.error({ queue, job_id: job.id, attempt, err: error }, `notification job dead-lettered to ${QUEUES.dead}`);
            return { id: job.id, status: 'deadletter' as const, output: error };
          }
          log.warn({ queue, job_id: job.id, attempt, retry_limit: job.retryLimit, err: error }, 'notification job failed; it will be retried with backoff');
          return { id: job.id, status: 'failed' as const, output: error };
        }
      }),
    );
  }

  return {
    /** Starts the relay, and polling the fan-out queue and the queue of every channel plugged in. */
    async start() {
      const names = [QUEUES.fanout, ...(['email', 'live', 'webhooks'] as const).filter((c) => deps.channels[c]).map((c) => QUEUES[c])];
      for (const name of names) {
        if (queues.includes(name)) continue;
        const id = await boss.work(
          name,
          {
            batchSize: deps.settings.batchSize,
            pollingIntervalSeconds: deps.settings.pollIntervalS,
            // A full batch means a backlog: fetch again at once instead of after the poll interval, which otherwise caps
            // each queue at batchSize jobs per interval (20 events/s by default; bench figure 8 found it).
            burstWhenBatchFull: true,
            includeMetadata: true,
            perJobResults: true,
          },
          (jobs) => run(name, jobs),
        );
        workerIds.set(name, id);
        queues.push(name);
      }
      relaying.start();
      log.info({ queues: names }, 'notification worker started');
    },

    /** Stops fetching and waits for the jobs in hand to finish; what was not fetched stays queued for the next worker. */
    async stop() {
      await relaying.stop();
      const names = queues.splice(0);
      workerIds.clear();
      await Promise.all(names.map((name) => boss.offWork(name, { wait: true })));
      if (names.length) log.info({ queues: names }, 'notification worker stopped');
    },

    /** The fan-out of one event, as its job runs it. */
    fanOut: (eventId: string) => fanOut([eventId]),
    /** One relay pass now (or the one in progress): the number of events queued. */
    relay: () => relaying.run(),
  };
}

export type NotificationWorker = ReturnType<typeof createNotificationWorker>;

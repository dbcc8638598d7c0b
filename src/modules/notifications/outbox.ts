import type { PgBoss } from 'pg-boss';
import type { Executor } from '../../db/client.js';
import type { OrderEvent } from '../orders/workflow.js';
import type { EventType } from './events.js';
import { QUEUES } from './notifications.domain.js';
import type { NewOutboxEvent, NotificationsRepository } from './notifications.repository.js';
import { inTransaction } from './queue.js';

/**
 * Writes what happened, in the transaction of the change: the outbox row, and the fan-out job whose id is
 * the event's id (pg-boss inserts a job id once), through the same transaction. A change that rolls back
 * leaves neither; one that commits always has both, so nothing has to relay the outbox to the queue and no
 * event waits for a polling relay. Nothing is sent from the request path.
 */
export function createOutbox(deps: { repo: NotificationsRepository; boss: () => Promise<PgBoss> }) {
  return {
    /** Returns the event's id; an event with a stable `id` already recorded is left as it was (no second job). */
    async record(event: NewOutboxEvent, tx: Executor): Promise<string> {
      const boss = await deps.boss();
      const row = await deps.repo.insertEvent(event, tx);
      if (!row) return event.id!;
      await boss.send(QUEUES.fanout, { event_id: row.id }, { id: row.id, db: inTransaction(tx) });
      return row.id;
    },
  };
}

export type Outbox = ReturnType<typeof createOutbox>;

/** What a service needs to record an event: the outbox's one method. */
export type Notify = Outbox['record'];

/**
 * The event type a workflow move tells, if any (workflow.ts's MoveName → EventType); a payment move tells
 * only when the order becomes paid, and a failed online payment tells nobody.
 */
export function eventTypeOfMove(event: OrderEvent): EventType | null {
  switch (event.kind) {
    case 'submit':
      return 'order.submitted';
    case 'auto_assign':
    case 'take':
      return 'order.assigned';
    case 'accept':
      return 'order.accepted';
    case 'reject':
      return 'order.rejected';
    case 'revise':
      return 'order.revised';
    case 'record_payment':
    case 'pay_online':
      return (event.changes as { payment_status?: string }).payment_status === 'paid' ? 'order.paid' : null;
    case 'start_production':
      return 'order.in_production';
    case 'ship':
      return 'order.shipped';
    case 'deliver':
    case 'confirm_delivery':
      return 'order.delivered';
    case 'online_payment_failed':
      return null;
  }
}

/** A workflow subscriber (workflow.subscribe) that records each telling move in the move's own transaction. */
export function outboxForWorkflow(record: Notify) {
  return async (event: OrderEvent, tx: Executor) => {
    const type = eventTypeOfMove(event);
    if (!type) return;
    await record(
      {
        type,
        actorId: event.actorId,
        orderId: event.orderId,
        data: { move: event.kind, from_status: event.from, to_status: event.to, ...(event.changes as Record<string, unknown>) },
      },
      tx,
    );
  };
}

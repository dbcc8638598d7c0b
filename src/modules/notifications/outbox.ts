import type { Executor } from '../../db/client.js';
import type { OrderEvent } from '../orders/workflow.js';
import type { EventType, Told } from './events.js';
import type { NewOutboxEvent, NotificationsRepository } from './notifications.repository.js';

/**
 * Writes what happened, in the transaction of the change: the outbox row only. A change that rolls back leaves
 * none; one that commits has it, and the worker's relay (notifications.worker.ts) queues its fan-out job. The
 * request path pays one insert per event and never touches the job queue (bench figures 3a and 3b).
 */
export function createOutbox(deps: { repo: NotificationsRepository }) {
  return {
    /** Returns the event's id; an event with a stable `id` already recorded is left as it was. */
    async record(event: NewOutboxEvent, tx: Executor): Promise<string> {
      return (await deps.repo.insertEvent(event, tx)) ?? event.id!;
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
export function eventTypeOfMove(event: Pick<OrderEvent, 'kind' | 'changes'>): EventType | null {
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

/** The workflow's teller (workflow.tellWith): the outbox event of each telling move, written by the move's own statement. */
export function toldByMove(event: Omit<OrderEvent, 'id' | 'at' | 'note'>): Told | null {
  const type = eventTypeOfMove(event);
  if (!type) return null;
  return { type, data: { move: event.kind, from_status: event.from, to_status: event.to, ...(event.changes as Record<string, unknown>) } };
}

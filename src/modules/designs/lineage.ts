import type { Executor } from '../../db/client.js';
import { type EventHandler, type OrderEvent, PAYMENT_MOVES } from '../orders/workflow.js';
import type { DesignsRepository } from './designs.repository.js';

const isPayment = (event: OrderEvent): event is OrderEvent<(typeof PAYMENT_MOVES)[number]> =>
  (PAYMENT_MOVES as readonly string[]).includes(event.kind);

/**
 * Keeps designs' ordered_count: an order made from a gallery design (a reuse, or a reuse of a reuse)
 * counts once for every design on its chain when it becomes paid, by hand or through Stripe, and
 * stops counting when a manual payment is set back to unpaid. Subscribed to the workflow, so it runs
 * in the payment move's transaction: the count and the payment commit or roll back together.
 */
export function lineageCounter(designs: Pick<DesignsRepository, 'countOrdered' | 'uncountOrdered'>): EventHandler {
  return async (event: OrderEvent, tx: Executor) => {
    if (!isPayment(event)) return;
    if (event.changes.payment_status === 'paid') await designs.countOrdered(event.orderId, tx);
    else await designs.uncountOrdered(event.orderId, tx);
  };
}

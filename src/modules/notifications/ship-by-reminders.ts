import type { Database } from '../../db/client.js';
import type { OrdersRepository } from '../orders/orders.repository.js';
import { utcDate } from '../orders/orders.domain.js';
import type { UsersRepository } from '../users/users.repository.js';
import { stableId } from './notifications.domain.js';
import type { Notify } from './outbox.js';

/** Hourly: a reminder goes out within the hour its order's eve begins (UTC). */
export const REMINDERS_INTERVAL_MS = 3_600_000;

/**
 * The day before an accepted, not yet shipped order's ship-by date (UTC), its technician is told (issue 19):
 * `order.ship_by_tomorrow`, recorded under an id made of the order and the date, so an hourly run, several workers
 * or a restart tell each order once per date (a new date after a change would be told again).
 */
export function createShipByReminders(deps: {
  db: Database;
  orders: Pick<OrdersRepository, 'dueToShipOn'>;
  users: Pick<UsersRepository, 'technicianIds'>;
  notify: Notify;
  clock?: () => Date;
}) {
  const clock = deps.clock ?? (() => new Date());
  return {
    /** Records the reminders due now; how many orders are due tomorrow (told now or before). */
    async run(): Promise<number> {
      const tomorrow = utcDate(new Date(clock().getTime() + 86_400_000));
      const due = await deps.orders.dueToShipOn(tomorrow, await deps.users.technicianIds());
      for (const order of due) {
        await deps.db.transaction((tx) =>
          deps.notify(
            {
              id: stableId('order.ship_by_tomorrow', order.id, tomorrow),
              type: 'order.ship_by_tomorrow',
              actorId: null,
              orderId: order.id,
              data: { ship_by: order.shipBy, status: order.status },
            },
            tx,
          ),
        );
      }
      return due.length;
    },
  };
}

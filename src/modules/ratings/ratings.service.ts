import { fail } from '../../errors.js';
import type { UserRow } from '../users/users.repository.js';
import { RATING_EDITABLE_DAYS } from './ratings.domain.js';
import type { RatingRow, RatingsRepository } from './ratings.repository.js';

const DAY_MS = 24 * 60 * 60 * 1000;

const render = (r: RatingRow) => ({
  order_id: r.orderId,
  stars: r.stars,
  comment: r.comment,
  editable_until: new Date(r.createdAt.getTime() + RATING_EDITABLE_DAYS * DAY_MS).toISOString(),
  created_at: r.createdAt.toISOString(),
  updated_at: r.updatedAt.toISOString(),
});

export function createRatingsService(deps: { ratings: RatingsRepository }) {
  const { ratings } = deps;
  return {
    /** The order's customer rates it once it is delivered; the same call changes it within the editing window. */
    async rate(user: UserRow, orderId: string, stars: number, comment: string | undefined) {
      const order = await ratings.findOwnOrder(orderId, user.id);
      if (!order) throw fail('ORDER_NOT_FOUND', 'No such order among the orders you can see.');
      if (order.status !== 'delivered' || !order.technicianId) {
        throw fail('INVALID_STATE', `An order that is ${order.status} cannot be rated yet; that needs status delivered.`, {
          current_status: order.status,
          requested_status: 'delivered',
        });
      }
      const row = await ratings.upsert({ orderId, customerId: user.id, technicianId: order.technicianId, stars, comment: comment?.trim() || null });
      if (!row) throw fail('RATING_LOCKED', `A rating can be changed for ${RATING_EDITABLE_DAYS} days after it is given; this one no longer can.`);
      return render(row);
    },

    async technicianSummary(user: UserRow) {
      return ratings.forTechnician(user.id);
    },
  };
}

export type RatingsService = ReturnType<typeof createRatingsService>;

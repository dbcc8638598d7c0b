/**
 * The order domain's vocabulary and limits: each enum and each limit is stated here once, and the
 * database schema, the request schemas, the docs and the workflow all read it from here.
 */

export const SHAPES = ['square', 'squoval', 'round', 'oval', 'almond', 'coffin', 'stiletto'] as const;
export const LENGTHS = ['short', 'medium', 'long', 'extra_long'] as const;
export const ORDER_STATUSES = ['submitted', 'under_review', 'accepted', 'rejected', 'in_production', 'shipped', 'delivered'] as const;
/** Statuses that count towards a technician's workload when auto-assigning. */
export const OPEN_STATUSES = ['under_review', 'accepted', 'in_production'] as const satisfies readonly (typeof ORDER_STATUSES)[number][];
export const PAYMENT_STATUSES = ['unpaid', 'paid'] as const;
/** How a paid order was paid: through Stripe Checkout, or recorded by its technician (cash, transfer). */
export const PAYMENT_METHODS = ['stripe', 'manual'] as const;
/** A Stripe Checkout Session as this service tracks it. */
export const CHECKOUT_STATUSES = ['open', 'complete', 'expired'] as const;

export type Shape = (typeof SHAPES)[number];
export type Length = (typeof LENGTHS)[number];
export type OrderStatus = (typeof ORDER_STATUSES)[number];
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];
export type CheckoutStatus = (typeof CHECKOUT_STATUSES)[number];

/** A design's description, and the feedback a technician writes about it. */
export const DESCRIPTION_MAX_LENGTH = 2000;
export const FEEDBACK_MAX_LENGTH = DESCRIPTION_MAX_LENGTH;
/** Sets per order (hand nails only): what a customer may ask for. The database allows more, for later. */
export const QUANTITY = { min: 1, max: 20 } as const;
/** One size per finger, thumb to pinky, left hand then right. */
export const NAIL_SIZES = { count: 10, min: 0, max: 11 } as const;
/** The technician's complexity multiplier (SPEC §3 pricing). */
export const MULTIPLIER = { min: 1, max: 5, decimals: 2 } as const;
export const NOTE_MAX_LENGTH = 500;
export const CARRIER_MAX_LENGTH = 100;

/** Business days from acceptance to the promised ship-by date, unless TURNAROUND_BUSINESS_DAYS says otherwise. */
export const DEFAULT_TURNAROUND_BUSINESS_DAYS = 10;
/** Accepted but not shipped yet: an order in one of these past its ship_by date is overdue. */
export const UNSHIPPED_STATUSES = ['accepted', 'in_production'] as const satisfies readonly (typeof ORDER_STATUSES)[number][];

/** A calendar date (YYYY-MM-DD, UTC) as PostgreSQL's `date` reads it. */
export const utcDate = (at: Date) => at.toISOString().slice(0, 10);

/** `days` business days after `from` (Saturdays and Sundays skipped), as a UTC calendar date. */
export function addBusinessDays(from: Date, days: number): string {
  const d = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate()));
  for (let left = days; left > 0; ) {
    d.setUTCDate(d.getUTCDate() + 1);
    const weekday = d.getUTCDay();
    if (weekday !== 0 && weekday !== 6) left--;
  }
  return utcDate(d);
}

/** Past its ship-by date and not shipped yet (`today` as a UTC calendar date). */
export const isOverdue = (order: { status: string; shipBy: string | null }, today: string) =>
  order.shipBy !== null && order.shipBy < today && (UNSHIPPED_STATUSES as readonly string[]).includes(order.status);

/** What people call an order: the first 8 hex digits of its id, upper case ("#3F9A12BC"). */
export const shortOrderNumber = (orderId: string) => orderId.replace(/-/g, '').slice(0, 8).toUpperCase();

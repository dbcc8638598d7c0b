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

/** The roles a token may carry (SPEC §2). */
export const ROLES = ['customer', 'nail_technician'] as const;
export type Role = (typeof ROLES)[number];

export interface ShippingAddress {
  line1: string;
  line2?: string | null;
  city: string;
  region?: string | null;
  postal_code: string;
  country: string;
}

import { type TSchema, Type } from 'typebox';
import { Enum } from '../../lib/envelope.js';
import { LENGTHS, NAIL_SIZES, SHAPES } from '../orders/orders.domain.js';
import { ROLES } from './users.domain.js';
import type { UserRow } from './users.repository.js';

const Nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()]);
/**
 * One schema with `type: ["string", "null"]` rather than a union: with coerceTypes on, Ajv's string branch of
 * an anyOf turns a null into "" before the null branch is tried, so `"line2": null` came back as "".
 */
const NullableString = (opts: { maxLength: number }) => Type.Unsafe<string | null>({ type: ['string', 'null'], ...opts });

export const ShapeSchema = Enum(SHAPES, { description: 'Nail shape' });
export const LengthSchema = Enum(LENGTHS, { description: 'Nail length' });
export const NailSizesSchema = Type.Array(Type.Integer({ minimum: NAIL_SIZES.min, maximum: NAIL_SIZES.max }), {
  minItems: NAIL_SIZES.count,
  maxItems: NAIL_SIZES.count,
  description: `${NAIL_SIZES.count} sizes ${NAIL_SIZES.min}–${NAIL_SIZES.max}, thumb to pinky, left hand then right hand`,
});

export const ShippingAddressSchema = Type.Object(
  {
    line1: Type.String({ minLength: 1, maxLength: 200 }),
    line2: Type.Optional(NullableString({ maxLength: 200 })),
    city: Type.String({ minLength: 1, maxLength: 100 }),
    region: Type.Optional(NullableString({ maxLength: 100 })),
    postal_code: Type.String({ minLength: 1, maxLength: 20 }),
    country: Type.String({ pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2 country code' }),
  },
  { additionalProperties: false },
);

export const UserSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    email: Nullable(
      Type.String({
        description:
          'From the identity provider, and only once it is verified (email_verified): null while the address is unverified, ' +
          'taken up at the next sign-in after verification unless another account registered it verified meanwhile',
      }),
    ),
    name: Type.String(),
    role: Type.Union(ROLES.map((r) => Type.Literal(r))),
    phone: Nullable(Type.String()),
    shipping_address: Nullable(ShippingAddressSchema),
    nail_sizes: Nullable(Type.Array(Type.Integer())),
    preferred_shape: Nullable(Type.String()),
    preferred_length: Nullable(Type.String()),
    last_login_at: Nullable(Type.String({ format: 'date-time' })),
    unread_notifications: Type.Optional(Type.Integer({ minimum: 0, description: 'GET /users/me only: my unread in-app notifications' })),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'User', title: 'User' },
);

export const UserSummarySchema = Type.Object(
  { id: Type.String({ format: 'uuid' }), name: Type.String() },
  { $id: 'UserSummary', title: 'UserSummary', description: 'What others see of a user: never the email' },
);

const readOnly = { description: 'Read-only: accepted so a GET body can be sent back, and ignored' };
export const ProfileBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, pattern: '\\S' }),
    phone: Type.Optional(Nullable(Type.String({ pattern: '^\\+?[0-9 ()./-]{5,30}$' }))),
    shipping_address: Type.Optional(Nullable(ShippingAddressSchema)),
    nail_sizes: Type.Optional(Nullable(NailSizesSchema)),
    preferred_shape: Type.Optional(Nullable(ShapeSchema)),
    preferred_length: Type.Optional(Nullable(LengthSchema)),
    id: Type.Optional(Type.String(readOnly)),
    email: Type.Optional(Nullable(Type.String(readOnly))),
    role: Type.Optional(Type.String(readOnly)),
    last_login_at: Type.Optional(Nullable(Type.String(readOnly))),
    created_at: Type.Optional(Type.String(readOnly)),
    updated_at: Type.Optional(Type.String(readOnly)),
  },
  { additionalProperties: false },
);

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function toUser(row: UserRow) {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    phone: row.phone,
    shipping_address: row.shippingAddress ?? null,
    nail_sizes: row.nailSizes ?? null,
    preferred_shape: row.preferredShape,
    preferred_length: row.preferredLength,
    last_login_at: iso(row.lastLoginAt),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export const toSummary = (row: { id: string; name: string }) => ({ id: row.id, name: row.name });

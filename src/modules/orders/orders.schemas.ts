import { Type } from 'typebox';
import { ORDER_STATUSES, type OrderStatus, PAYMENT_STATUSES } from '../../db/schema.js';
import { Nullable, PageQuery } from '../../lib/envelope.js';
import { LengthSchema, NailSizesSchema, ShapeSchema, UserSummarySchema } from '../users/users.schemas.js';

const DateTime = Type.String({ format: 'date-time' });
const Summary = Type.Ref('UserSummary');
// Responses are written by fast-json-stringify, which picks an anyOf branch by running ajv on the value,
// branch after branch: a Union of literals (or a nullable Ref) costs up to one validation per literal
// for every value written, a third of the time of a 20-order page. Response schemas therefore say the
// same as plain types: enums of strings, and a nullable object written out, both answered by a type check.
const Enum = <T extends string>(values: readonly T[]) => Type.Unsafe<T>({ type: 'string', enum: [...values] });
const NullableSummary = Nullable(Type.Object(UserSummarySchema.properties, { description: 'What others see of a user: never the email' }));

export const OrderStatusSchema = Type.Union(ORDER_STATUSES.map((s) => Type.Literal(s)));
const OrderStatusOut = Enum(ORDER_STATUSES);

export const OrderSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    status: OrderStatusOut,
    description: Type.String(),
    quantity: Type.Integer(),
    shape: Nullable(Type.String()),
    length: Nullable(Type.String()),
    nail_sizes: Nullable(Type.Array(Type.Integer())),
    customer_id: Type.String({ format: 'uuid' }),
    customer: Summary,
    technician_id: Nullable(Type.String({ format: 'uuid' })),
    technician: NullableSummary,
    design_id: Nullable(Type.String({ format: 'uuid' })),
    image_url: Type.String({ description: 'Signed link, valid for at least an hour (the same link for five minutes, so browsers can cache the image)' }),
    thumbnail_url: Type.String({ description: 'Signed link to a 320-px WebP thumbnail, valid for at least an hour' }),
    complexity_multiplier: Nullable(Type.Number()),
    unit_price_cents: Nullable(Type.Integer()),
    total_price_cents: Nullable(Type.Integer()),
    currency: Type.String(),
    payment_status: Enum(PAYMENT_STATUSES),
    feedback: Nullable(Type.String()),
    revision_count: Type.Integer(),
    carrier: Nullable(Type.String()),
    tracking_number: Nullable(Type.String()),
    original_order_id: Nullable(Type.String({ format: 'uuid' })),
    source_design_id: Nullable(Type.String({ format: 'uuid' })),
    status_changed_at: DateTime,
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'Order', title: 'Order' },
);

export const OrderEventSchema = Type.Object({
  from_status: Type.Unsafe<OrderStatus | null>({ type: ['string', 'null'], enum: [...ORDER_STATUSES, null] }),
  to_status: OrderStatusOut,
  actor: NullableSummary,
  note: Nullable(Type.String()),
  created_at: DateTime,
});

export const OrderRevisionSchema = Type.Object({
  revision: Type.Integer({ description: '0 is the original design' }),
  description: Type.String(),
  image_url: Type.String(),
  thumbnail_url: Type.String(),
  feedback: Nullable(Type.String()),
  created_at: DateTime,
});

export const OrderDetailSchema = Type.Intersect(
  [
    Type.Ref('Order'),
    Type.Object({
      events: Type.Array(OrderEventSchema, { description: 'Every transition, oldest first' }),
      revisions: Type.Array(OrderRevisionSchema, { description: 'Earlier rejected versions, oldest first' }),
    }),
  ],
  { $id: 'OrderDetail', title: 'OrderDetail' },
);

const DateOrDateTime = (description: string) =>
  Type.Union([Type.String({ format: 'date-time' }), Type.String({ format: 'date' })], { description });

export const SORT_FIELDS = ['created_at', 'updated_at', 'status'] as const;
const sortValues = SORT_FIELDS.flatMap((f) => [f, `-${f}`]);

export const ListOrdersQuery = Type.Object(
  {
    ...PageQuery,
    status: Type.Optional(
      Type.Array(OrderStatusSchema, {
        description: 'One or several statuses: repeat the parameter (status=a&status=b) or separate with commas',
        maxItems: 7,
      }),
    ),
    search: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Words in the description' })),
    from_date: Type.Optional(DateOrDateTime('Created at or after (ISO 8601 date or date-time)')),
    to_date: Type.Optional(DateOrDateTime('Created before (ISO 8601 date or date-time; a date means its start)')),
    sort: Type.Optional(Type.Union(sortValues.map((s) => Type.Literal(s)), { default: '-created_at' })),
  },
  { additionalProperties: false },
);

/** The JSON form of POST /orders: reuse a gallery design without uploading an image. */
export const CreateFromDesignBody = Type.Object(
  {
    source_design_id: Type.String({ format: 'uuid' }),
    description: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    quantity: Type.Integer({ minimum: 1, maximum: 20 }),
    shape: Type.Optional(ShapeSchema),
    length: Type.Optional(LengthSchema),
    nail_sizes: Type.Optional(NailSizesSchema),
  },
  { additionalProperties: false },
);

/** Documents the multipart form; the handler reads and validates it while streaming the file. */
export const CreateOrderForm = {
  type: ['object', 'null'],
  description: 'multipart/form-data',
  properties: {
    image: { type: 'string', format: 'binary', description: 'PNG, 100–4096 px per side, at most MAX_UPLOAD_SIZE_MB (10) MB' },
    description: { type: 'string', minLength: 1, maxLength: 2000 },
    quantity: { type: 'integer', minimum: 1, maximum: 20 },
    shape: { type: 'string', enum: ShapeSchema.anyOf.map((s: { const: string }) => s.const) },
    length: { type: 'string', enum: LengthSchema.anyOf.map((s: { const: string }) => s.const) },
    nail_sizes: { type: 'string', description: 'Ten sizes 0–11 as JSON ([1,2,…]) or comma-separated; defaults to my profile' },
    source_design_id: { type: 'string', format: 'uuid', description: 'Reuse a gallery design, replacing its image with this one' },
  },
} as const;

export const ReviseForm = {
  type: ['object', 'null'],
  description: 'multipart/form-data with a new image and/or description, or JSON {"description"}',
  properties: {
    image: { type: 'string', format: 'binary' },
    description: { type: 'string', minLength: 1, maxLength: 2000 },
  },
} as const;

export const ReviseJsonBody = Type.Object(
  { description: Type.String({ minLength: 1, maxLength: 2000 }) },
  { additionalProperties: false },
);

export const ReviewBody = Type.Object(
  {
    action: Type.Union([Type.Literal('accept'), Type.Literal('reject')]),
    complexity_multiplier: Type.Optional(
      Type.Number({ minimum: 1, maximum: 5, description: 'Required to accept: 1.00 to 5.00, at most two decimals' }),
    ),
    feedback: Type.Optional(Type.String({ minLength: 1, maxLength: 2000, description: 'Required to reject: what to change' })),
  },
  { additionalProperties: false },
);

export const StatusBody = Type.Object(
  {
    status: OrderStatusSchema,
    carrier: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    tracking_number: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9 -]+$' })),
    note: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
  },
  { additionalProperties: false },
);

export const PaymentBody = Type.Object(
  { payment_status: Type.Union(PAYMENT_STATUSES.map((s) => Type.Literal(s))) },
  { additionalProperties: false },
);

export const ReorderBody = Type.Object(
  { quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, description: 'Defaults to the original quantity' })) },
  { additionalProperties: false },
);

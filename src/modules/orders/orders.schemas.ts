import { type Static, Type } from 'typebox';
import {
  CARRIER_MAX_LENGTH,
  DESCRIPTION_MAX_LENGTH,
  FEEDBACK_MAX_LENGTH,
  MULTIPLIER,
  NOTE_MAX_LENGTH,
  ORDER_STATUSES,
  PAYMENT_METHODS,
  PAYMENT_STATUSES,
  type PaymentMethod,
  QUANTITY,
} from './orders.domain.js';
import { Enum, Nullable, PageQuery } from '../../lib/envelope.js';
import { LengthSchema, NailSizesSchema, ShapeSchema, UserSummarySchema } from '../users/users.schemas.js';

const DateTime = Type.String({ format: 'date-time' });
const Summary = Type.Ref('UserSummary');
// Responses are written by fast-json-stringify, which picks an anyOf branch by running ajv on the value,
// branch after branch: a nullable Ref costs a validation for every value written. Response schemas therefore
// say the same as plain types: enums (lib/envelope.ts) and a nullable object written out, answered by a type check.
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
    payment_method: Type.Unsafe<PaymentMethod | null>({
      type: ['string', 'null'],
      enum: [...PAYMENT_METHODS, null],
      description: 'stripe (Checkout) or manual (recorded by the technician); null while unpaid',
    }),
    payment_reference: Nullable(Type.String({ description: 'Stripe’s payment reference (PaymentIntent id) for Checkout payments' })),
    paid_at: Nullable(DateTime),
    feedback: Nullable(Type.String()),
    revision_count: Type.Integer(),
    carrier: Nullable(Type.String()),
    tracking_number: Nullable(Type.String()),
    ship_by: Nullable(Type.String({ format: 'date', description: 'Promised ship-by date, set at acceptance (TURNAROUND_BUSINESS_DAYS business days later)' })),
    overdue: Type.Boolean({ description: 'Past ship_by and not shipped yet' }),
    original_order_id: Nullable(Type.String({ format: 'uuid' })),
    source_design_id: Nullable(Type.String({ format: 'uuid' })),
    status_changed_at: DateTime,
    created_at: DateTime,
    updated_at: DateTime,
    unread_count: Type.Integer({
      description:
        'Items of the order’s thread (GET /orders/{id}/thread) by others — status events, and messages if I take part in the conversation — ' +
        'after my read marker (PUT /orders/{id}/thread/read); all of them before I first mark it',
    }),
  },
  { $id: 'Order', title: 'Order' },
);

export const OrderEventSchema = Type.Object({
  from_status: Nullable(OrderStatusOut),
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

export const SORT_FIELDS = ['created_at', 'updated_at', 'status', 'ship_by'] as const;
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
    overdue: Type.Optional(Type.Boolean({ description: 'true: only orders past their ship_by date and not shipped yet; false: only the others' })),
    sort: Type.Optional(Type.Union(sortValues.map((s) => Type.Literal(s)), { default: '-created_at' })),
  },
  { additionalProperties: false },
);

// A non-blank text: at least one character that is not white space (it is stored trimmed).
const Description = Type.String({ minLength: 1, maxLength: DESCRIPTION_MAX_LENGTH, pattern: '\\S', description: `1–${DESCRIPTION_MAX_LENGTH} characters` });
const Quantity = Type.Integer({ minimum: QUANTITY.min, maximum: QUANTITY.max, description: `Sets of press-on nails (${QUANTITY.min}–${QUANTITY.max})` });
const Binary = (description: string) => ({ type: 'string', format: 'binary', description }) as const;

/** POST /orders's text fields, as JSON or as multipart text (validated by formFields). */
export const SubmitFields = Type.Object(
  {
    description: Type.Optional(Description),
    quantity: Quantity,
    shape: Type.Optional(ShapeSchema),
    length: Type.Optional(LengthSchema),
    nail_sizes: Type.Optional(NailSizesSchema),
    source_design_id: Type.Optional(Type.String({ format: 'uuid', description: 'Reuse a gallery design' })),
  },
  { additionalProperties: false },
);
export type SubmitFields = Static<typeof SubmitFields>;

/** The JSON form of POST /orders: reuse a gallery design without uploading an image. */
export const CreateFromDesignBody = Type.Object(
  { ...SubmitFields.properties, source_design_id: Type.String({ format: 'uuid', description: 'The public design to start from (its image is copied)' }) },
  { additionalProperties: false },
);

/**
 * The multipart forms, for the document: the same fields plus the file. Null too, since the handler
 * reads the form itself while streaming the file (request.body is empty when validation runs).
 */
const form = (description: string, properties: Record<string, unknown>) => ({ type: ['object', 'null'], description, properties }) as const;

export const CreateOrderForm = form('multipart/form-data', {
  image: Binary('PNG, 100–4096 px per side, at most MAX_UPLOAD_SIZE_MB (10) MB'),
  ...SubmitFields.properties,
  nail_sizes: { type: 'string', description: 'Ten sizes 0–11 as JSON ([1,2,…]) or comma-separated; defaults to my profile' },
  source_design_id: { type: 'string', format: 'uuid', description: 'Reuse a gallery design, replacing its image with this one' },
});

/** PUT /orders/:id/design's text field (multipart). */
export const ReviseFields = Type.Object({ description: Type.Optional(Description) }, { additionalProperties: false });

export const ReviseForm = form('multipart/form-data with a new image and/or description, or JSON {"description"}', {
  image: Binary('The new PNG'),
  ...ReviseFields.properties,
});

export const ReviseJsonBody = Type.Object({ description: Description }, { additionalProperties: false });

const AcceptBody = Type.Object(
  {
    action: Type.Literal('accept'),
    complexity_multiplier: Type.Number({
      minimum: MULTIPLIER.min,
      maximum: MULTIPLIER.max,
      description: `${MULTIPLIER.min.toFixed(2)} to ${MULTIPLIER.max.toFixed(2)}, at most ${MULTIPLIER.decimals} decimals`,
    }),
  },
  { additionalProperties: false, title: 'Accept' },
);
const RejectBody = Type.Object(
  {
    action: Type.Literal('reject'),
    feedback: Type.String({ minLength: 1, maxLength: FEEDBACK_MAX_LENGTH, pattern: '\\S', description: 'What to change (required, not blank)' }),
  },
  { additionalProperties: false, title: 'Reject' },
);
/** Accept with a multiplier, or reject with feedback: Ajv picks the branch by `action` (discriminator). */
export const ReviewBody = Type.Unsafe<Static<typeof AcceptBody> | Static<typeof RejectBody>>({
  type: 'object',
  oneOf: [AcceptBody, RejectBody],
  discriminator: { propertyName: 'action' },
  required: ['action'],
});

export const StatusBody = Type.Object(
  {
    status: OrderStatusSchema,
    carrier: Type.Optional(Type.String({ minLength: 1, maxLength: CARRIER_MAX_LENGTH })),
    tracking_number: Type.Optional(Type.String({ minLength: 1, maxLength: CARRIER_MAX_LENGTH, pattern: '^[A-Za-z0-9 -]+$' })),
    note: Type.Optional(Type.String({ minLength: 1, maxLength: NOTE_MAX_LENGTH })),
  },
  { additionalProperties: false },
);

export const PaymentBody = Type.Object(
  { payment_status: Type.Union(PAYMENT_STATUSES.map((s) => Type.Literal(s))) },
  { additionalProperties: false },
);

export const ReorderBody = Type.Object(
  { quantity: Type.Optional(Type.Integer({ minimum: QUANTITY.min, maximum: QUANTITY.max, description: 'Defaults to the original quantity' })) },
  { additionalProperties: false },
);

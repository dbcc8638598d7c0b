import { Type } from 'typebox';
import { Nullable, PageQuery, Uuid } from '../../lib/envelope.js';
import {
  DELIVERY_STATUSES,
  DISABLED_REASONS,
  MAX_ROTATION_GRACE_S,
  DEFAULT_ROTATION_GRACE_S,
  WEBHOOK_DESCRIPTION_MAX_LENGTH,
  WEBHOOK_EVENT_TYPES,
  WEBHOOK_URL_MAX_LENGTH,
} from './webhooks.domain.js';

const DateTime = Type.String({ format: 'date-time' });

const Url = Type.String({
  minLength: 1,
  maxLength: WEBHOOK_URL_MAX_LENGTH,
  description: 'Where deliveries are POSTed. Staging and production: https only, to a host whose every address is public.',
  examples: ['https://example.com/hooks/kendalls-nails'],
});
const EventTypes = Type.Array(Type.Union(WEBHOOK_EVENT_TYPES.map((t) => Type.Literal(t))), {
  minItems: 1,
  maxItems: WEBHOOK_EVENT_TYPES.length,
  uniqueItems: true,
  description: 'The event types to receive',
});
const Description = Type.String({ maxLength: WEBHOOK_DESCRIPTION_MAX_LENGTH, description: 'What the webhook is for, for you' });

export const CreateWebhookBody = Type.Object({ url: Url, event_types: EventTypes, description: Type.Optional(Description) }, { additionalProperties: false });

export const UpdateWebhookBody = Type.Object(
  {
    url: Type.Optional(Url),
    event_types: Type.Optional(EventTypes),
    description: Type.Optional(Nullable(Description)),
    enabled: Type.Optional(Type.Boolean({ description: 'false pauses deliveries (they wait); true resumes them and clears a failure' })),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const RotateSecretBody = Type.Object(
  {
    grace_period_seconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_ROTATION_GRACE_S,
        description: `How long the previous secret keeps signing beside the new one (0: stop at once); ${DEFAULT_ROTATION_GRACE_S} when absent`,
      }),
    ),
  },
  { additionalProperties: false },
);

export const WebhookSchema = Type.Object(
  {
    id: Uuid,
    url: Type.String(),
    description: Nullable(Type.String()),
    event_types: Type.Array(Type.String()),
    enabled: Type.Boolean(),
    disabled_reason: Nullable(Type.String({ description: `Why it is disabled: ${DISABLED_REASONS.join(', ')}` })),
    disabled_at: Nullable(DateTime),
    failing_since: Nullable(Type.String({ format: 'date-time', description: 'The first failed attempt since the last success' })),
    previous_secret_expires_at: Nullable(Type.String({ format: 'date-time', description: 'Until when the previous secret also signs (after a rotation)' })),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'Webhook', title: 'Webhook' },
);

export const WebhookWithSecretSchema = Type.Object(
  {
    ...WebhookSchema.properties,
    secret: Type.String({ description: 'The signing secret (whsec_…), shown this once: verify webhook-signature with it' }),
  },
  { $id: 'WebhookWithSecret', title: 'WebhookWithSecret' },
);

export const WebhookAttemptSchema = Type.Object(
  {
    attempted_at: DateTime,
    status_code: Nullable(Type.Integer({ description: 'The receiver’s answer; null when there was none' })),
    duration_ms: Type.Integer(),
    error: Nullable(Type.String({ description: 'Why the attempt failed without an answer, or the redirect not followed' })),
  },
  { $id: 'WebhookAttempt', title: 'WebhookAttempt' },
);

export const WebhookDeliverySchema = Type.Object(
  {
    id: Uuid,
    event_id: Type.String({ description: 'Sent as webhook-id: the same on every attempt and re-send' }),
    event_type: Type.String(),
    status: Type.String({ description: `One of ${DELIVERY_STATUSES.join(', ')}` }),
    attempt_count: Type.Integer(),
    next_attempt_at: Nullable(DateTime),
    retry_until: DateTime,
    delivered_at: Nullable(DateTime),
    created_at: DateTime,
    payload: Type.Record(Type.String(), Type.Unknown(), { description: 'The JSON body sent: { type, timestamp, data }' }),
    attempts: Type.Array(Type.Ref('WebhookAttempt'), { description: 'Oldest first' }),
  },
  { $id: 'WebhookDelivery', title: 'WebhookDelivery' },
);

export const DeliveriesQuery = Type.Object(
  { ...PageQuery, status: Type.Optional(Type.Union(DELIVERY_STATUSES.map((s) => Type.Literal(s)), { description: 'Only deliveries in this status' })) },
  { additionalProperties: false },
);

export const WebhookListQuery = Type.Object({ ...PageQuery }, { additionalProperties: false });

export const DeliveryParams = Type.Object({ id: Uuid, deliveryId: Uuid }, { additionalProperties: false });

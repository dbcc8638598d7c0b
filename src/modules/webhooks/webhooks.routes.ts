import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Envelope, IdParams, PageEnvelope, ok, okPage, pageInfo, paging } from '../../lib/envelope.js';
import { requireUser } from '../../plugins/auth.js';
import { RETRY_WINDOW_MS, WEBHOOKS_PER_OWNER_MAX } from './webhooks.domain.js';
import {
  CreateWebhookBody,
  DeliveriesQuery,
  DeliveryParams,
  RotateSecretBody,
  UpdateWebhookBody,
  WebhookAttemptSchema,
  WebhookDeliverySchema,
  WebhookListQuery,
  WebhookSchema,
  WebhookWithSecretSchema,
} from './webhooks.schemas.js';
import type { WebhooksService } from './webhooks.service.js';

const mine = 'Technicians only, on their own webhooks: another technician’s answers 404 WEBHOOK_NOT_FOUND.';
const signing =
  'Deliveries follow Standard Webhooks: a POST of `{ type, timestamp, data }` with `webhook-id` (the event id, the same on every retry), ' +
  '`webhook-timestamp` and `webhook-signature` (HMAC-SHA256 with the secret; verify with any Standard Webhooks library).';

export const webhooksRoutes: FastifyPluginAsyncTypebox<{ webhooks: WebhooksService }> = async (app, { webhooks }) => {
  app.addSchema(WebhookSchema);
  app.addSchema(WebhookWithSecretSchema);
  app.addSchema(WebhookAttemptSchema);
  app.addSchema(WebhookDeliverySchema);

  const access = 'nail_technician' as const;

  app.post(
    '/api/v1/webhooks',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'createWebhook',
        summary: 'Subscribe a URL to events',
        description:
          `Technicians only, up to ${WEBHOOKS_PER_OWNER_MAX} each. The signing secret is in this answer only. ${signing} ` +
          'A webhook receives only what its owner may read through the API: events of orders assigned to them, the submission of ' +
          'unassigned orders, messages on their orders, comments on public designs, and invitations they sent. Staging and production ' +
          'accept only https URLs whose host resolves to public addresses only (422 WEBHOOK_URL_NOT_ALLOWED).',
        body: CreateWebhookBody,
        response: { 201: Envelope(Type.Ref('WebhookWithSecret')) },
      },
      config: { access, errors: ['WEBHOOK_URL_NOT_ALLOWED', 'WEBHOOK_LIMIT_REACHED', 'WEBHOOKS_NOT_CONFIGURED'] },
    },
    async (request, reply) => reply.code(201).send(ok(await webhooks.create(requireUser(request), request.body))),
  );

  app.get(
    '/api/v1/webhooks',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'listWebhooks',
        summary: 'My webhooks, newest first',
        description: 'Technicians only; each technician sees their own. Secrets are never listed.',
        querystring: WebhookListQuery,
        response: { 200: PageEnvelope(Type.Ref('Webhook')) },
      },
      config: { access },
    },
    async (request) => {
      const { page, limit, offset } = paging(request.query);
      const { items, total } = await webhooks.list(requireUser(request), limit, offset);
      return okPage(items, pageInfo(page, limit, total));
    },
  );

  app.get(
    '/api/v1/webhooks/:id',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'getWebhook',
        summary: 'One of my webhooks',
        description: mine,
        params: IdParams,
        response: { 200: Envelope(Type.Ref('Webhook')) },
      },
      config: { access, errors: ['WEBHOOK_NOT_FOUND'] },
    },
    async (request) => ok(await webhooks.get(requireUser(request), request.params.id)),
  );

  app.patch(
    '/api/v1/webhooks/:id',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'updateWebhook',
        summary: 'Change, enable or disable a webhook',
        description:
          `${mine} A new URL is checked as at creation. \`enabled: false\` pauses it: its deliveries wait. \`enabled: true\` resumes ` +
          'one disabled by you, by a 410 Gone or by a day of failures, and sends what was waiting.',
        params: IdParams,
        body: UpdateWebhookBody,
        response: { 200: Envelope(Type.Ref('Webhook')) },
      },
      config: { access, errors: ['WEBHOOK_NOT_FOUND', 'WEBHOOK_URL_NOT_ALLOWED'] },
    },
    async (request) => ok(await webhooks.update(requireUser(request), request.params.id, request.body)),
  );

  app.delete(
    '/api/v1/webhooks/:id',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'deleteWebhook',
        summary: 'Delete a webhook',
        description: `${mine} Its deliveries and their log go with it.`,
        params: IdParams,
        response: { 204: Type.Null() },
      },
      config: { access, errors: ['WEBHOOK_NOT_FOUND'] },
    },
    async (request, reply) => {
      await webhooks.remove(requireUser(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/v1/webhooks/:id/rotate-secret',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'rotateWebhookSecret',
        summary: 'Replace the signing secret',
        description:
          `${mine} The new secret is in this answer only. The previous one keeps signing beside it (two signatures in ` +
          '`webhook-signature`) for `grace_period_seconds` (a day by default), so the receiver can switch without missing a delivery.',
        params: IdParams,
        body: Type.Union([RotateSecretBody, Type.Null()], { description: 'Optional; an empty body keeps the previous secret for a day' }),
        response: { 200: Envelope(Type.Ref('WebhookWithSecret')) },
      },
      config: { access, errors: ['WEBHOOK_NOT_FOUND', 'WEBHOOKS_NOT_CONFIGURED'] },
    },
    async (request) => ok(await webhooks.rotateSecret(requireUser(request), request.params.id, request.body?.grace_period_seconds)),
  );

  app.get(
    '/api/v1/webhooks/:id/deliveries',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'listWebhookDeliveries',
        summary: 'A webhook’s deliveries and their attempts, newest first',
        description:
          `${mine} A delivery is retried with growing delays (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, with jitter) for ${RETRY_WINDOW_MS / 3_600_000} h, ` +
          'then marked failed; any 2xx answer delivers it, redirects are not followed. A day without a single success, or one 410 Gone, disables the webhook.',
        params: IdParams,
        querystring: DeliveriesQuery,
        response: { 200: PageEnvelope(Type.Ref('WebhookDelivery')) },
      },
      config: { access, errors: ['WEBHOOK_NOT_FOUND'] },
    },
    async (request) => {
      const { page, limit, offset } = paging(request.query);
      const { items, total } = await webhooks.deliveries(requireUser(request), request.params.id, request.query.status, limit, offset);
      return okPage(items, pageInfo(page, limit, total));
    },
  );

  app.post(
    '/api/v1/webhooks/:id/deliveries/:deliveryId/resend',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'resendWebhookDelivery',
        summary: 'Send a delivery again',
        description:
          `${mine} Queues it now with a fresh retry window, delivered or not, with the same \`webhook-id\` (receivers de-duplicate on it); ` +
          'the worker sends it within seconds. A disabled webhook must be enabled first (422 WEBHOOK_DISABLED).',
        params: DeliveryParams,
        response: { 202: Envelope(Type.Ref('WebhookDelivery')) },
      },
      config: { access, errors: ['WEBHOOK_NOT_FOUND', 'WEBHOOK_DELIVERY_NOT_FOUND', 'WEBHOOK_DISABLED'] },
    },
    async (request, reply) => reply.code(202).send(ok(await webhooks.resend(requireUser(request), request.params.id, request.params.deliveryId))),
  );
};

import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { DESCRIPTION_MAX_LENGTH, type OrderStatus, QUANTITY, utcDate } from './orders.domain.js';
import { validationError } from '../../errors.js';
import { formFields } from '../../lib/form-fields.js';
import { Envelope, IdParams, PageEnvelope, errorResponses, ok, okPage, pageInfo, paging } from '../../lib/envelope.js';
import { IdempotencyHeaders, fingerprint, idempotencyKeyOf, idempotencyOf, sendCreated } from '../../lib/idempotency.js';
import { requireUser } from '../../plugins/auth.js';
import { readDesignForm } from './design-upload.js';
import {
  CreateFromDesignBody,
  CreateOrderForm,
  ListOrdersQuery,
  OrderDetailSchema,
  OrderSchema,
  PaymentBody,
  ReorderBody,
  ReviewBody,
  ReviseFields,
  ReviseForm,
  ReviseJsonBody,
  StatusBody,
  SubmitFields,
} from './orders.schemas.js';
import type { OrdersService } from './orders.service.js';
import { describeMoves, refusalCodes } from './workflow.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Counts against the per-user upload rate limit. */
    upload?: boolean;
  }
}

const checkSubmitFields = formFields(SubmitFields);
const checkReviseFields = formFields(ReviseFields);

function parseDate(value: string | undefined, field: string): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw validationError(`${field} is not a valid date.`, { [field]: 'must be an ISO 8601 date' });
  return date;
}

const OrderEnvelope = Envelope(Type.Ref('OrderDetail'));

export const ordersRoutes: FastifyPluginAsyncTypebox<{ orders: OrdersService; maxUploadBytes: number }> = async (app, opts) => {
  const { orders } = opts;
  app.addSchema(OrderSchema);
  app.addSchema(OrderDetailSchema);
  // preservePath: see the file name as sent, so one carrying a path is refused rather than silently trimmed.
  await app.register(multipart, { throwFileSizeLimit: true, preservePath: true, limits: { fileSize: opts.maxUploadBytes } });

  const uploadForm = (request: FastifyRequest, reply: FastifyReply, allowed: readonly string[]) =>
    readDesignForm(request, reply, { maxBytes: opts.maxUploadBytes, allowedFields: allowed, digest: request.headers['idempotency-key'] !== undefined });

  app.post(
    '/api/v1/orders',
    {
      schema: {
        tags: ['orders'],
        operationId: 'submitOrder',
        summary: 'Submit an order',
        description:
          `multipart/form-data with the PNG in \`image\` plus \`description\` (1–${DESCRIPTION_MAX_LENGTH}), \`quantity\` (${QUANTITY.min}–${QUANTITY.max}) and optional \`shape\`, \`length\`, ` +
          '`nail_sizes` (default: my profile). Or reuse a public gallery design: JSON `{"source_design_id", "quantity", "description"?}` ' +
          '(the image is copied), or multipart with `source_design_id` and a replacement image. The order is assigned to the technician ' +
          'with the fewest open orders when one exists (status under_review), else stays submitted. Accepts Idempotency-Key. ' +
          'The image is stored as its own image and colour chunks, without metadata chunks (text, EXIF, time…) or anything after its end (e.g. the ZIP of a PNG/ZIP polyglot); a ' +
          'file that is truncated, fails a chunk checksum or unpacks to more than its pixels need (a decompression bomb) is ' +
          'refused with 400 INVALID_IMAGE and `details.problem` (truncated, corrupt, decompression_bomb).' +
          describeMoves('submit'),
        headers: IdempotencyHeaders,
        body: {
          content: {
            'application/json': { schema: CreateFromDesignBody },
            'multipart/form-data': { schema: CreateOrderForm },
          },
        },
        response: { 201: OrderEnvelope, 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 422, 503) },
      },
      config: { access: 'customer', upload: true, errors: [...refusalCodes('submit'), 'DESIGN_NOT_FOUND'] },
    },
    async (request, reply) => {
      const user = requireUser(request);
      const key = idempotencyKeyOf(request);
      if (!request.isMultipart()) {
        const body = request.body as Static<typeof CreateFromDesignBody> | undefined;
        if (!body) throw validationError('Send the order as multipart/form-data with an image, or JSON with source_design_id.', { body: 'is required' });
        const result = await orders.submit(
          user,
          {
            description: body.description,
            quantity: body.quantity,
            shape: body.shape,
            length: body.length,
            nailSizes: body.nail_sizes,
            sourceDesignId: body.source_design_id,
          },
          { key, requestHash: fingerprint(body) },
        );
        return sendCreated(reply, result, result.order, 'Order submitted.');
      }
      const form = await uploadForm(request, reply, Object.keys(SubmitFields.properties));
      // The request ended while the form arrived (client gone, or already answered 503): nothing to answer.
      if (!form) return reply.hijack();
      try {
        const fields = checkSubmitFields(form.fields);
        const input = {
          description: fields.description,
          quantity: fields.quantity,
          shape: fields.shape,
          length: fields.length,
          nailSizes: fields.nail_sizes,
          sourceDesignId: fields.source_design_id?.toLowerCase(),
        };
        const result = await orders.submit(user, { ...input, file: form.file }, { key, requestHash: fingerprint(form.fields, form.file?.sha256 ?? null) });
        return sendCreated(reply, result, result.order, 'Order submitted.');
      } finally {
        await form.cleanup();
      }
    },
  );

  app.get(
    '/api/v1/orders',
    {
      schema: {
        tags: ['orders'],
        operationId: 'listOrders',
        summary: 'List orders',
        description:
          'Customers see their own orders; technicians see orders assigned to them plus unassigned ones. ' +
          'Filters: status (repeat or comma-separate), search (description), from_date, to_date, overdue (past ship_by, not shipped). ' +
          'Sort: created_at, updated_at, status, ship_by (prefix - for descending; default -created_at).',
        querystring: ListOrdersQuery,
        response: { 200: PageEnvelope(Type.Ref('Order')), ...errorResponses(400, 401, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND'] },
      preValidation: async (request) => {
        const q = request.query as Record<string, unknown>;
        if (typeof q.status === 'string') q.status = q.status.split(',').map((s) => s.trim());
        else if (Array.isArray(q.status)) q.status = q.status.flatMap((s) => String(s).split(',').map((x) => x.trim()));
      },
    },
    async (request) => {
      const user = requireUser(request);
      const q = request.query;
      const { page, limit, offset } = paging(q);
      const sort = q.sort ?? '-created_at';
      const fromDate = parseDate(q.from_date, 'from_date');
      const toDate = parseDate(q.to_date, 'to_date');
      if (fromDate && toDate && fromDate > toDate) throw validationError('from_date is after to_date.', { from_date: 'must not be after to_date' });
      const { items, total } = await orders.list(user, {
        statuses: q.status as OrderStatus[] | undefined,
        search: q.search?.trim() || undefined,
        fromDate,
        toDate,
        overdue: q.overdue === undefined ? undefined : { is: q.overdue, today: utcDate(new Date()) },
        sort: { field: sort.replace(/^-/, '') as 'created_at' | 'updated_at' | 'status' | 'ship_by', descending: sort.startsWith('-') },
        limit,
        offset,
      });
      return okPage(items, pageInfo(page, limit, total));
    },
  );

  app.get(
    '/api/v1/orders/:id',
    {
      schema: {
        tags: ['orders'],
        operationId: 'getOrder',
        summary: 'One order with its timeline and earlier versions',
        description: "Another customer's order answers 404. An order assigned to another technician answers 403.",
        params: IdParams,
        response: { 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND', 'ORDER_NOT_FOUND', 'NOT_ASSIGNED'] },
    },
    async (request) => ok(await orders.get(requireUser(request), request.params.id)),
  );

  app.put(
    '/api/v1/orders/:id/assign',
    {
      schema: {
        tags: ['orders'],
        operationId: 'assignOrder',
        summary: 'Take an unassigned order',
        description: 'Exactly one technician wins; the others get 422 ORDER_ALREADY_ASSIGNED.' + describeMoves('assign'),
        params: IdParams,
        response: { 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 422) },
      },
      config: { access: 'nail_technician', errors: ['ORDER_NOT_FOUND', ...refusalCodes('assign')] },
    },
    async (request) => ok(await orders.assign(requireUser(request), request.params.id), 'Order assigned to you.'),
  );

  app.put(
    '/api/v1/orders/:id/review',
    {
      schema: {
        tags: ['orders'],
        operationId: 'reviewOrder',
        summary: 'Accept with a price, or reject with feedback',
        description:
          '`{"action":"accept","complexity_multiplier":1.5}` sets unit price = BASE_PRICE_CENTS × multiplier (rounded to the cent) and total = unit × quantity. ' +
          '`{"action":"reject","feedback":"…"}` sends it back to the customer.' +
          describeMoves('review'),
        params: IdParams,
        body: ReviewBody,
        response: { 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 422) },
      },
      config: { access: 'nail_technician', errors: ['ORDER_NOT_FOUND', ...refusalCodes('review')] },
    },
    async (request) => ok(await orders.review(requireUser(request), request.params.id, request.body)),
  );

  app.put(
    '/api/v1/orders/:id/design',
    {
      schema: {
        tags: ['orders'],
        operationId: 'reviseOrderDesign',
        summary: 'Revise a rejected design',
        description:
          'multipart with a new `image` and/or `description`, or JSON `{"description"}`. Back to under_review with the same technician; ' +
          'the rejected version is kept with its feedback.' +
          describeMoves('design'),
        params: IdParams,
        body: { content: { 'application/json': { schema: ReviseJsonBody }, 'multipart/form-data': { schema: ReviseForm } } },
        response: { 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 413, 415, 422, 503) },
      },
      config: { access: 'customer', upload: true, errors: ['ORDER_NOT_FOUND', ...refusalCodes('design')] },
    },
    async (request, reply) => {
      const user = requireUser(request);
      if (!request.isMultipart()) {
        const body = request.body as Static<typeof ReviseJsonBody> | undefined;
        if (!body) throw validationError('Send a new image and/or description.', { description: 'is required' });
        return ok(await orders.revise(user, request.params.id, { description: body.description }), 'Revision sent for review.');
      }
      const form = await uploadForm(request, reply, ['description']);
      if (!form) return reply.hijack();
      try {
        const { description } = checkReviseFields(form.fields);
        return ok(await orders.revise(user, request.params.id, { description, file: form.file }), 'Revision sent for review.');
      } finally {
        await form.cleanup();
      }
    },
  );

  app.put(
    '/api/v1/orders/:id/payment',
    {
      schema: {
        tags: ['orders'],
        operationId: 'recordPayment',
        summary: 'Record payment (until a gateway is chosen)',
        description: 'Production cannot start before payment_status is paid.' + describeMoves('payment'),
        params: IdParams,
        body: PaymentBody,
        response: { 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 422) },
      },
      config: { access: 'nail_technician', errors: ['ORDER_NOT_FOUND', ...refusalCodes('payment')] },
    },
    async (request) => ok(await orders.setPayment(requireUser(request), request.params.id, request.body.payment_status)),
  );

  app.put(
    '/api/v1/orders/:id/status',
    {
      schema: {
        tags: ['orders'],
        operationId: 'updateOrderStatus',
        summary: 'Move an order one step forward',
        description:
          'One step forward; `status` names the step. A step of another role → 403 FORBIDDEN; any move not in the table → 422 INVALID_STATE ' +
          'with current_status.' +
          describeMoves('status'),
        params: IdParams,
        body: StatusBody,
        response: { 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 422) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND', 'FORBIDDEN', 'ORDER_NOT_FOUND', ...refusalCodes('status')] },
    },
    async (request) => ok(await orders.setStatus(requireUser(request), request.params.id, request.body)),
  );

  app.post(
    '/api/v1/orders/:id/reorder',
    {
      schema: {
        tags: ['orders'],
        operationId: 'reorder',
        summary: 'New order from one of mine',
        description: 'Copies the image to the new order, links original_order_id, and goes through review again. Accepts Idempotency-Key.',
        params: IdParams,
        headers: IdempotencyHeaders,
        body: Type.Union([ReorderBody, Type.Null()], { description: 'Optional; an empty body reorders the same quantity' }),
        response: { 201: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 409, 422, 503) },
      },
      config: { access: 'customer', errors: ['ORDER_NOT_FOUND', 'STORAGE_UNAVAILABLE'] },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const result = await orders.reorder(requireUser(request), request.params.id, body, idempotencyOf(request, request.params.id, body));
      return sendCreated(reply, result, result.order, 'Order placed again.');
    },
  );
};

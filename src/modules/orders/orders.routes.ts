import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { LENGTHS, type Length, type OrderStatus, SHAPES, type Shape } from '../../db/schema.js';
import { validationError } from '../../errors.js';
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
  ReviseForm,
  ReviseJsonBody,
  StatusBody,
} from './orders.schemas.js';
import type { OrdersService, SubmitInput } from './orders.service.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Counts against the per-user upload rate limit. */
    upload?: boolean;
  }
}

const SUBMIT_FIELDS = ['description', 'quantity', 'shape', 'length', 'nail_sizes', 'source_design_id'] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Multipart fields arrive as strings; validate them with the same rules and error shape as JSON. */
function parseSubmitFields(fields: Record<string, string>): Omit<SubmitInput, 'file'> {
  const details: Record<string, string> = {};
  const out: Omit<SubmitInput, 'file'> = { quantity: 0 };
  if (fields.description !== undefined) {
    const d = fields.description.trim();
    if (d.length < 1 || d.length > 2000) details.description = 'must be 1–2000 characters';
    else out.description = d;
  }
  const q = fields.quantity;
  if (q === undefined) details.quantity = 'is required';
  else if (!/^\d{1,3}$/.test(q.trim()) || Number(q) < 1 || Number(q) > 20) details.quantity = 'must be a whole number from 1 to 20';
  else out.quantity = Number(q);
  if (fields.shape !== undefined) {
    if (!(SHAPES as readonly string[]).includes(fields.shape)) details.shape = `must be one of: ${SHAPES.join(', ')}`;
    else out.shape = fields.shape as Shape;
  }
  if (fields.length !== undefined) {
    if (!(LENGTHS as readonly string[]).includes(fields.length)) details.length = `must be one of: ${LENGTHS.join(', ')}`;
    else out.length = fields.length as Length;
  }
  if (fields.nail_sizes !== undefined) {
    const raw = fields.nail_sizes.trim();
    let sizes: unknown;
    try {
      sizes = raw.startsWith('[') ? JSON.parse(raw) : raw.split(',').map((s) => (/^\s*\d+\s*$/.test(s) ? Number(s) : NaN));
    } catch {
      sizes = undefined;
    }
    if (!Array.isArray(sizes) || sizes.length !== 10 || !sizes.every((n) => Number.isInteger(n) && n >= 0 && n <= 11)) {
      details.nail_sizes = 'must be ten whole numbers from 0 to 11, thumb to pinky, left hand then right';
    } else out.nailSizes = sizes as number[];
  }
  if (fields.source_design_id !== undefined) {
    if (!UUID.test(fields.source_design_id)) details.source_design_id = 'must be a design id (UUID)';
    else out.sourceDesignId = fields.source_design_id.toLowerCase();
  }
  if (Object.keys(details).length) throw validationError(`Some fields are invalid: ${Object.keys(details).join(', ')}. See details.`, details);
  return out;
}

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

  const uploadForm = (request: FastifyRequest, allowed: readonly string[]) =>
    readDesignForm(request, { maxBytes: opts.maxUploadBytes, allowedFields: allowed, digest: request.headers['idempotency-key'] !== undefined });

  app.post(
    '/api/v1/orders',
    {
      schema: {
        tags: ['orders'],
        summary: 'Submit an order',
        description:
          'multipart/form-data with the PNG in `image` plus `description` (1–2000), `quantity` (1–20) and optional `shape`, `length`, ' +
          '`nail_sizes` (default: my profile). Or reuse a public gallery design: JSON `{"source_design_id", "quantity", "description"?}` ' +
          '(the image is copied), or multipart with `source_design_id` and a replacement image. The order is assigned to the technician ' +
          'with the fewest open orders when one exists (status under_review), else stays submitted. Accepts Idempotency-Key. ' +
          'The image is stored as its own image and colour chunks, without metadata chunks (text, EXIF, time…) or anything after its end (e.g. the ZIP of a PNG/ZIP polyglot); a ' +
          'file that is truncated, fails a chunk checksum or unpacks to more than its pixels need (a decompression bomb) is ' +
          'refused with 400 INVALID_IMAGE and `details.problem` (truncated, corrupt, decompression_bomb).',
        headers: IdempotencyHeaders,
        body: {
          content: {
            'application/json': { schema: CreateFromDesignBody },
            'multipart/form-data': { schema: CreateOrderForm },
          },
        },
        response: { 201: OrderEnvelope, 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 409, 413, 415, 422, 503) },
      },
      config: { access: 'customer', upload: true },
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
      const form = await uploadForm(request, SUBMIT_FIELDS);
      try {
        const input = parseSubmitFields(form.fields);
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
        summary: 'List orders',
        description:
          'Customers see their own orders; technicians see orders assigned to them plus unassigned ones. ' +
          'Filters: status (repeat or comma-separate), search (description), from_date, to_date. Sort: created_at, updated_at, status (prefix - for descending; default -created_at).',
        querystring: ListOrdersQuery,
        response: { 200: PageEnvelope(Type.Ref('Order')), ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'authenticated' },
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
        sort: { field: sort.replace(/^-/, '') as 'created_at' | 'updated_at' | 'status', descending: sort.startsWith('-') },
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
        summary: 'One order with its timeline and earlier versions',
        description: "Another customer's order answers 404. An order assigned to another technician answers 403.",
        params: IdParams,
        response: { 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'authenticated' },
    },
    async (request) => ok(await orders.get(requireUser(request), request.params.id)),
  );

  app.put(
    '/api/v1/orders/:id/assign',
    {
      schema: {
        tags: ['orders'],
        summary: 'Take an unassigned order',
        description: 'Exactly one technician wins; the others get 422 ORDER_ALREADY_ASSIGNED.',
        params: IdParams,
        response: { 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 422) },
      },
      config: { access: 'nail_technician' },
    },
    async (request) => ok(await orders.assign(requireUser(request), request.params.id), 'Order assigned to you.'),
  );

  app.put(
    '/api/v1/orders/:id/review',
    {
      schema: {
        tags: ['orders'],
        summary: 'Accept with a price, or reject with feedback',
        description:
          '`{"action":"accept","complexity_multiplier":1.5}` sets unit price = BASE_PRICE_CENTS × multiplier (rounded to the cent) and total = unit × quantity. ' +
          '`{"action":"reject","feedback":"…"}` sends it back to the customer. Only the assigned technician, only while under_review.',
        params: IdParams,
        body: ReviewBody,
        response: { 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 422) },
      },
      config: { access: 'nail_technician' },
    },
    async (request) => ok(await orders.review(requireUser(request), request.params.id, request.body)),
  );

  app.put(
    '/api/v1/orders/:id/design',
    {
      schema: {
        tags: ['orders'],
        summary: 'Revise a rejected design',
        description:
          'multipart with a new `image` and/or `description`, or JSON `{"description"}`. Back to under_review with the same technician; ' +
          'the rejected version is kept with its feedback.',
        params: IdParams,
        body: { content: { 'application/json': { schema: ReviseJsonBody }, 'multipart/form-data': { schema: ReviseForm } } },
        response: { 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 413, 415, 422, 503) },
      },
      config: { access: 'customer', upload: true },
    },
    async (request) => {
      const user = requireUser(request);
      if (!request.isMultipart()) {
        const body = request.body as Static<typeof ReviseJsonBody> | undefined;
        if (!body) throw validationError('Send a new image and/or description.', { description: 'is required' });
        return ok(await orders.revise(user, request.params.id, { description: body.description }), 'Revision sent for review.');
      }
      const form = await uploadForm(request, ['description']);
      try {
        const description = form.fields.description;
        if (description !== undefined && (description.trim().length < 1 || description.length > 2000)) {
          throw validationError('The description must be 1–2000 characters.', { description: 'must be 1–2000 characters' });
        }
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
        summary: 'Record payment (until a gateway is chosen)',
        description: 'Assigned technician, accepted orders only. Production cannot start before payment_status is paid.',
        params: IdParams,
        body: PaymentBody,
        response: { 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 422) },
      },
      config: { access: 'nail_technician' },
    },
    async (request) => ok(await orders.setPayment(requireUser(request), request.params.id, request.body.payment_status)),
  );

  app.put(
    '/api/v1/orders/:id/status',
    {
      schema: {
        tags: ['orders'],
        summary: 'Move an order one step forward',
        description:
          'Assigned technician: accepted → in_production (needs paid) → shipped (optional carrier, tracking_number) → delivered. ' +
          'The customer may only confirm delivered on a shipped order. Any other move → 422 INVALID_STATE with current_status.',
        params: IdParams,
        body: StatusBody,
        response: { 200: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 422) },
      },
      config: { access: 'authenticated' },
    },
    async (request) => ok(await orders.setStatus(requireUser(request), request.params.id, request.body)),
  );

  app.post(
    '/api/v1/orders/:id/reorder',
    {
      schema: {
        tags: ['orders'],
        summary: 'New order from one of mine',
        description: 'Copies the image to the new order, links original_order_id, and goes through review again. Accepts Idempotency-Key.',
        params: IdParams,
        headers: IdempotencyHeaders,
        body: Type.Union([ReorderBody, Type.Null()], { description: 'Optional; an empty body reorders the same quantity' }),
        response: { 201: OrderEnvelope, ...errorResponses(400, 401, 403, 404, 409, 422, 503) },
      },
      config: { access: 'customer' },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const result = await orders.reorder(requireUser(request), request.params.id, body, idempotencyOf(request, request.params.id, body));
      return sendCreated(reply, result, result.order, 'Order placed again.');
    },
  );
};

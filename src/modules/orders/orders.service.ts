import { randomUUID } from 'node:crypto';
import type { Database, Executor } from '../../db/client.js';
import type { orders } from '../../db/schema.js';
import { AppError, fail, invalidTransition, serviceUnavailable, validationError } from '../../errors.js';
import { type IdempotencyInput, runIdempotent } from '../../lib/idempotency.js';
import { isDatabaseUnavailable } from '../../db/errors.js';
import type { StorageCleanup } from '../../storage/cleanup.js';
import { type ObjectBody, type Storage, StorageUnavailableError } from '../../storage/storage.js';
import type { DesignsRepository } from '../designs/designs.repository.js';
import type { Notify } from '../notifications/outbox.js';
import type { UserRow, UsersRepository } from '../users/users.repository.js';
import type { SpooledFile } from './design-upload.js';
import { type Length, type OrderStatus, type PaymentStatus, type Shape, isOverdue, utcDate } from './orders.domain.js';
import type { OrderListFilter, OrderRow, OrderWithNames, OrdersRepository } from './orders.repository.js';
import { MOVES, type MoveInput, type Workflow, movesOf } from './workflow.js';

export interface ProcessedImage {
  png: ObjectBody;
  thumbnail: Buffer;
}

export interface OrdersServiceDeps {
  db: Database;
  orders: OrdersRepository;
  /** Writes of the other modules' tables an order needs (its design, a reuse, the assignment tie-break). */
  designs: Pick<DesignsRepository, 'insert' | 'updateDescription' | 'findReusable' | 'recordUsage'>;
  users: Pick<UsersRepository, 'touchAssigned'>;
  workflow: Workflow;
  storage: Storage;
  /** Removes the objects of an order that was never created, now or later (SPEC §5). */
  cleanup: Pick<StorageCleanup, 'remove' | 'settle'>;
  processImage: (file: SpooledFile) => Promise<ProcessedImage>;
  pricing: { basePriceCents: number; currency: string };
  /** TURNAROUND_BUSINESS_DAYS: from acceptance to ship_by. */
  turnaroundBusinessDays: number;
  /** Records design.reused in the new order's transaction (order moves are told by the workflow's teller). */
  notify?: Notify;
}

export interface SubmitInput {
  description?: string;
  quantity: number;
  shape?: Shape;
  length?: Length;
  nailSizes?: number[];
  sourceDesignId?: string;
  file?: SpooledFile;
}

export interface StatusChange {
  status: OrderStatus;
  carrier?: string;
  tracking_number?: string;
  note?: string;
}

interface StoredImage {
  imageKey: string;
  thumbnailKey: string;
}

const orderNotFound = () => fail('ORDER_NOT_FOUND', 'No such order among the orders you can see.');
const designNotReusable = () =>
  fail('DESIGN_NOT_FOUND', 'That design is not in the public gallery (it may be private or removed).');
const notYours = () =>
  fail('NOT_ASSIGNED', 'This order is assigned to another technician; only they can see or change it.');

export function createOrdersService(deps: OrdersServiceDeps) {
  const { db, orders: repo, storage, workflow } = deps;

  const keysFor = (orderId: string): StoredImage => {
    const id = randomUUID();
    return { imageKey: `${orderId}/${id}.png`, thumbnailKey: `${orderId}/${id}.thumb.webp` };
  };

  /**
   * Writes both objects or neither; a failure answers 503. Whatever did land is removed in the background
   * (a store that is not answering would hold the request a second time), or later by the sweeper.
   */
  async function place(orderId: string, write: (keys: StoredImage) => Promise<void>): Promise<StoredImage> {
    const keys = keysFor(orderId);
    try {
      await write(keys);
    } catch (err) {
      await removeImages(keys, 'record');
      throw storageError(err);
    }
    return keys;
  }

  /** Both objects at once, so a slow store costs one timeout, not two; both have settled when it returns. */
  async function both(a: Promise<void>, b: Promise<void>) {
    const failed = (await Promise.allSettled([a, b])).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  const storeImage = (orderId: string, image: ProcessedImage) =>
    place(orderId, (keys) =>
      both(
        storage.put(keys.imageKey, image.png, { contentType: 'image/png', orderId }),
        storage.put(keys.thumbnailKey, image.thumbnail, { contentType: 'image/webp', orderId }),
      ),
    );

  const copyImage = (orderId: string, from: StoredImage) =>
    place(orderId, (keys) =>
      both(
        storage.copy(from.imageKey, keys.imageKey, { contentType: 'image/png', orderId }),
        storage.copy(from.thumbnailKey, keys.thumbnailKey, { contentType: 'image/webp', orderId }),
      ),
    );

  async function removeImages(keys: StoredImage, wait: 'record' | 'deletion') {
    await deps.cleanup.remove([keys.imageKey, keys.thumbnailKey], { wait });
  }

  /**
   * Runs the database part after the upload; if it fails, the uploaded objects are removed again. When the
   * database stopped answering, its COMMIT may still have landed: the objects are removed only once the
   * database says order `orderId` does not reference them.
   */
  async function withCompensation<T>(orderId: string, keys: StoredImage, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      const objects = [keys.imageKey, keys.thumbnailKey];
      if (isDatabaseUnavailable(err)) deps.cleanup.settle(objects, () => repo.referencesImages(orderId, objects));
      else await removeImages(keys, 'deletion');
      throw err;
    }
  }

  /** Inserts the order, its private design and its creation event, auto-assigning when a technician exists. */
  async function createOrder(
    tx: Executor,
    values: Omit<typeof orders.$inferInsert, 'status' | 'technicianId' | 'currency'> & { id: string },
    actor: UserRow,
    /** The lineage of the design it reuses, that design last (none for an original). */
    ancestorIds: string[] = [],
  ): Promise<OrderRow> {
    const submit = MOVES.submit.effect({ quantity: values.quantity }, actor.id);
    const { order: row, event } = await repo.insert(
      { ...values, status: MOVES.submit.to, technicianId: null, currency: deps.pricing.currency },
      { kind: 'submit', actorId: actor.id, fromStatus: null, toStatus: MOVES.submit.to, note: submit.note, changes: submit.changes },
      tx,
    );
    await deps.designs.insert({ orderId: row.id, ownerId: actor.id, description: row.description, shape: row.shape, length: row.length, ancestorIds }, tx);
    await workflow.created({ ...event, kind: 'submit', from: null, to: MOVES.submit.to, changes: submit.changes }, tx);
    await repo.lockAssignment(tx);
    const technicianId = await repo.pickTechnician(actor.id, tx);
    if (technicianId) {
      await workflow.perform('auto_assign', null, row.id, { technicianId }, tx);
      await deps.users.touchAssigned(technicianId, tx);
    }
    return row;
  }

  /** Loads an order the way `user` may see it: other customers' orders are hidden, other technicians' forbidden. */
  async function visibleOrder(user: UserRow, id: string, tx: Executor = db): Promise<OrderRow> {
    const row = await repo.findById(id, tx);
    if (!row) throw orderNotFound();
    if (user.role === 'customer') {
      if (row.customerId !== user.id) throw orderNotFound();
    } else if (row.technicianId !== null && row.technicianId !== user.id) {
      throw notYours();
    }
    return row;
  }

  async function render(item: OrderWithNames) {
    const o = item.order;
    const [imageUrl, thumbnailUrl] = await Promise.all([storage.signedUrl(o.imageKey), storage.signedUrl(o.thumbnailKey)]);
    return {
      id: o.id,
      status: o.status,
      description: o.description,
      quantity: o.quantity,
      shape: o.shape,
      length: o.length,
      nail_sizes: o.nailSizes ?? null,
      customer_id: o.customerId,
      customer: { id: o.customerId, name: item.customerName },
      technician_id: o.technicianId,
      technician: o.technicianId ? { id: o.technicianId, name: item.technicianName ?? '' } : null,
      design_id: item.designId,
      image_url: imageUrl,
      thumbnail_url: thumbnailUrl,
      complexity_multiplier: o.complexityMultiplier === null ? null : Number(o.complexityMultiplier),
      unit_price_cents: o.unitPriceCents,
      total_price_cents: o.totalPriceCents,
      currency: o.currency,
      payment_status: o.paymentStatus,
      payment_method: o.paymentMethod,
      payment_reference: o.paymentReference,
      paid_at: o.paidAt?.toISOString() ?? null,
      feedback: o.feedback,
      revision_count: o.revisionCount,
      carrier: o.carrier,
      tracking_number: o.trackingNumber,
      ship_by: o.shipBy,
      overdue: isOverdue(o, utcDate(new Date())),
      original_order_id: o.originalOrderId,
      source_design_id: o.sourceDesignId,
      status_changed_at: o.statusChangedAt.toISOString(),
      created_at: o.createdAt.toISOString(),
      updated_at: o.updatedAt.toISOString(),
      unread_count: Number(item.unreadCount),
    };
  }

  /** The order as `viewerId` sees it (their unread count). */
  async function detail(id: string, viewerId: string) {
    const item = await repo.findDetail(id, viewerId);
    if (!item) throw orderNotFound();
    const iso = (text: string) => new Date(text).toISOString();
    const revisions = await Promise.all(
      item.revisions.map(async (r) => ({
        revision: r.revision,
        description: r.description,
        image_url: await storage.signedUrl(r.imageKey),
        thumbnail_url: await storage.signedUrl(r.thumbnailKey),
        feedback: r.feedback,
        created_at: iso(r.createdAt),
      })),
    );
    return {
      ...(await render(item)),
      events: item.events.map((event) => ({
        from_status: event.fromStatus,
        to_status: event.toStatus,
        actor: event.actorId ? { id: event.actorId, name: event.actorName ?? '' } : null,
        note: event.note,
        created_at: iso(event.createdAt),
      })),
      revisions,
    };
  }

  return {
    detail,

    async submit(user: UserRow, input: SubmitInput, idem: IdempotencyInput) {
      const source = input.sourceDesignId ? await deps.designs.findReusable(input.sourceDesignId) : undefined;
      if (input.sourceDesignId && !source) throw designNotReusable();
      const description = (input.description ?? source?.description)?.trim();
      if (!description) throw validationError('Describe the design.', { description: 'is required' });
      if (!input.file && !source) throw validationError('Attach the design as a PNG in the "image" field.', { image: 'is required' });

      const result = await runIdempotent(db, { userId: user.id, key: idem.key, scope: 'POST /orders', requestHash: idem.requestHash }, async () => {
        const orderId = randomUUID();
        const keys = input.file
          ? await storeImage(orderId, await deps.processImage(input.file))
          : await copyImage(orderId, source!);
        return withCompensation(orderId, keys, () =>
          db.transaction(async (tx) => {
            const row = await createOrder(
              tx,
              {
                id: orderId,
                customerId: user.id,
                description,
                quantity: input.quantity,
                shape: input.shape ?? source?.shape ?? user.preferredShape,
                length: input.length ?? source?.length ?? user.preferredLength,
                nailSizes: input.nailSizes ?? user.nailSizes,
                imageKey: keys.imageKey,
                thumbnailKey: keys.thumbnailKey,
                sourceDesignId: source?.id ?? null,
              },
              user,
              source ? [...source.ancestorIds, source.id] : [],
            );
            if (source && source.ownerId !== user.id && !(await deps.designs.recordUsage({ designId: source.id, orderId: row.id, userId: user.id }, tx))) {
              throw designNotReusable();
            }
            if (source && source.ownerId !== user.id) {
              await deps.notify?.(
                { type: 'design.reused', actorId: user.id, orderId: row.id, designId: source.id, data: { order_id: row.id, user_name: user.name } },
                tx,
              );
            }
            return row;
          }),
        );
      });
      return { status: result.status, replayed: result.replayed, order: await detail(result.resourceId, user.id) };
    },

    async list(user: UserRow, filter: Omit<OrderListFilter, 'customerId' | 'technicianId' | 'viewerId'>) {
      const scoped: OrderListFilter =
        user.role === 'customer' ? { ...filter, viewerId: user.id, customerId: user.id } : { ...filter, viewerId: user.id, technicianId: user.id };
      const { rows, total } = await repo.list(scoped);
      return { items: await Promise.all(rows.map(render)), total };
    },

    async get(user: UserRow, id: string) {
      await visibleOrder(user, id);
      return detail(id, user.id);
    },

    /** The order's row if `user` may read it as GET /orders/:id does: 404 for other customers, 403 for other technicians. */
    readableOrder: (user: UserRow, id: string): Promise<OrderRow> => visibleOrder(user, id),

    async assign(user: UserRow, id: string) {
      await db.transaction(async (tx) => {
        await workflow.perform('take', user.id, id, {}, tx);
        await deps.users.touchAssigned(user.id, tx);
      });
      return detail(id, user.id);
    },

    async review(user: UserRow, id: string, body: { action: 'accept'; complexity_multiplier: number } | { action: 'reject'; feedback: string }) {
      if (body.action === 'reject') {
        await workflow.perform('reject', user.id, id, { feedback: body.feedback.trim() });
        return detail(id, user.id);
      }
      // The total needs the quantity; the move itself still checks the order as it is when it is written.
      const { quantity } = await visibleOrder(user, id);
      await workflow.perform('accept', user.id, id, {
        complexityMultiplier: body.complexity_multiplier,
        basePriceCents: deps.pricing.basePriceCents,
        quantity,
        turnaroundBusinessDays: deps.turnaroundBusinessDays,
      });
      return detail(id, user.id);
    },

    async revise(user: UserRow, id: string, input: { description?: string; file?: SpooledFile }) {
      const description = input.description?.trim();
      if (!input.file && !description) {
        throw validationError('Send a new image, a new description, or both.', { image: 'or description is required' });
      }
      const current = await visibleOrder(user, id);
      // Refused before the upload, so a revision that cannot apply stores nothing.
      workflow.precheck('revise', user.id, current, { seenRevision: current.revisionCount });
      const keys = input.file ? await storeImage(id, await deps.processImage(input.file)) : undefined;
      const run = () =>
        db.transaction(async (tx) => {
          await workflow.perform('revise', user.id, id, { seenRevision: current.revisionCount, description, image: keys }, tx);
          // The version the technician rejected, kept with its feedback; images are never deleted.
          await repo.addRevision(
            {
              orderId: id,
              revision: current.revisionCount,
              description: current.description,
              imageKey: current.imageKey,
              thumbnailKey: current.thumbnailKey,
              feedback: current.feedback,
            },
            tx,
          );
          if (description) await deps.designs.updateDescription(id, description, tx);
        });
      if (keys) await withCompensation(id, keys, run);
      else await run();
      return detail(id, user.id);
    },

    async setPayment(user: UserRow, id: string, paymentStatus: PaymentStatus) {
      await workflow.perform('record_payment', user.id, id, { paymentStatus });
      return detail(id, user.id);
    },

    /** PUT /status: the move of the caller's role that leads to the requested status, if the table has one. */
    async setStatus(user: UserRow, id: string, body: StatusChange) {
      const move = movesOf('status', user.role).find((m) => m.to === body.status);
      if (!move) {
        const current = await visibleOrder(user, id);
        const others = movesOf('status').filter((m) => m.to === body.status);
        if (others.length) {
          const mine = movesOf('status', user.role).map((m) => `${m.from} → ${m.to}`);
          throw fail('FORBIDDEN', `Your role may not move an order to ${body.status}; it may only move ${mine.join(', ')}.`);
        }
        throw invalidTransition(current.status, body.status);
      }
      const input: MoveInput['ship'] = { carrier: body.carrier, tracking_number: body.tracking_number, note: body.note };
      await workflow.perform(move.name as 'ship', user.id, id, input);
      return detail(id, user.id);
    },

    async reorder(user: UserRow, id: string, input: { quantity?: number }, idem: IdempotencyInput) {
      const original = await visibleOrder(user, id);
      const result = await runIdempotent(db, { userId: user.id, key: idem.key, scope: `POST /orders/${id}/reorder`, requestHash: idem.requestHash }, async () => {
        const orderId = randomUUID();
        const keys = await copyImage(orderId, original);
        return withCompensation(orderId, keys, () =>
          db.transaction((tx) =>
            createOrder(
              tx,
              {
                id: orderId,
                customerId: user.id,
                description: original.description,
                quantity: input.quantity ?? original.quantity,
                shape: original.shape,
                length: original.length,
                nailSizes: original.nailSizes,
                imageKey: keys.imageKey,
                thumbnailKey: keys.thumbnailKey,
                originalOrderId: original.id,
              },
              user,
            ),
          ),
        );
      });
      return { status: result.status, replayed: result.replayed, order: await detail(result.resourceId, user.id) };
    },

    /** For messages: the order if `user` is its customer or its assigned technician. */
    async conversationOrder(user: UserRow, id: string): Promise<OrderRow> {
      const row = await visibleOrder(user, id);
      if (user.role === 'nail_technician' && row.technicianId !== user.id) {
        throw fail('NOT_ASSIGNED', 'Only the customer and the assigned technician can read or write messages on this order.');
      }
      return row;
    },
  };
}

function storageError(err: unknown): Error {
  if (err instanceof AppError) return err;
  if (err instanceof StorageUnavailableError) {
    return serviceUnavailable('STORAGE_UNAVAILABLE', 'Image storage is unavailable, so nothing was saved. Try again in a minute.');
  }
  return err instanceof Error ? err : new Error(String(err));
}

export type OrdersService = ReturnType<typeof createOrdersService>;

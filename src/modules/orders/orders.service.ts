import { randomUUID } from 'node:crypto';
import { and, eq, isNull } from '../../db/orm.js';
import type { Database, Executor } from '../../db/client.js';
import { type Length, type OrderStatus, type Shape, orders } from '../../db/schema.js';
import { AppError, fail, invalidTransition, serviceUnavailable, validationError } from '../../errors.js';
import { type IdempotencyInput, runIdempotent } from '../../lib/idempotency.js';
import type { StorageCleanup } from '../../storage/cleanup.js';
import { type ObjectBody, type Storage, StorageUnavailableError } from '../../storage/storage.js';
import type { UserRow } from '../users/users.repository.js';
import type { SpooledFile } from './design-upload.js';
import { type Expected, type OrderListFilter, type OrderRow, type OrderWithNames, type OrdersRepository, findReusableDesign } from './orders.repository.js';

export interface ProcessedImage {
  png: ObjectBody;
  thumbnail: Buffer;
}

export interface OrdersServiceDeps {
  db: Database;
  orders: OrdersRepository;
  storage: Storage;
  /** Removes the objects of an order that was never created, now or later (SPEC §5). */
  cleanup: Pick<StorageCleanup, 'remove'>;
  processImage: (file: SpooledFile) => Promise<ProcessedImage>;
  pricing: { basePriceCents: number; currency: string };
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

/** Next status each forward step leads from; the only moves PUT /status accepts. */
const FORWARD: Partial<Record<OrderStatus, OrderStatus>> = {
  in_production: 'accepted',
  shipped: 'in_production',
  delivered: 'shipped',
};

export function createOrdersService(deps: OrdersServiceDeps) {
  const { db, orders: repo, storage } = deps;

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

  /** Runs the database part after the upload; if it fails, the uploaded objects are removed again. */
  async function withCompensation<T>(keys: StoredImage, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      await removeImages(keys, 'deletion');
      throw err;
    }
  }

  /** Inserts the order, its private design and its first events, auto-assigning when a technician exists. */
  async function createOrder(
    tx: Executor,
    values: Omit<typeof orders.$inferInsert, 'status' | 'technicianId' | 'currency'> & { id: string },
    actor: UserRow,
  ): Promise<OrderRow> {
    await repo.lockAssignment(tx);
    const technicianId = await repo.pickTechnician(tx);
    const status: OrderStatus = technicianId ? 'under_review' : 'submitted';
    const row = await repo.insert(
      { ...values, status, technicianId: technicianId ?? null, currency: deps.pricing.currency },
      tx,
    );
    await repo.insertDesign({ orderId: row.id, ownerId: actor.id, description: row.description }, tx);
    await repo.addEvent({ orderId: row.id, actorId: actor.id, fromStatus: null, toStatus: 'submitted', note: null }, tx);
    if (technicianId) {
      await repo.touchAssigned(technicianId, tx);
      await repo.addEvent(
        { orderId: row.id, actorId: null, fromStatus: 'submitted', toStatus: 'under_review', note: 'assigned automatically' },
        tx,
      );
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

  /** After a conditional update matched nothing: say why, in the documented order of checks. */
  async function explainMiss(user: UserRow, id: string, requested: OrderStatus | string, tx: Executor = db): Promise<never> {
    const row = await visibleOrder(user, id, tx);
    throw invalidTransition(row.status, requested);
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
      feedback: o.feedback,
      revision_count: o.revisionCount,
      carrier: o.carrier,
      tracking_number: o.trackingNumber,
      original_order_id: o.originalOrderId,
      source_design_id: o.sourceDesignId,
      status_changed_at: o.statusChangedAt.toISOString(),
      created_at: o.createdAt.toISOString(),
      updated_at: o.updatedAt.toISOString(),
    };
  }

  async function detail(id: string) {
    const item = await repo.findDetail(id);
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

  /** The conditional update and its event, both or neither; false when the order was not as `expected`. */
  async function advance(
    user: UserRow,
    id: string,
    to: OrderStatus,
    expected: Expected,
    set: Partial<typeof orders.$inferInsert>,
    event: { from: OrderStatus; note?: string | null },
  ): Promise<boolean> {
    return repo.advance(id, expected, { ...set, status: to, statusChangedAt: new Date() }, {
      actorId: user.id,
      fromStatus: event.from,
      toStatus: to,
      note: event.note ?? null,
    });
  }

  async function transition(...args: Parameters<typeof advance>) {
    const [user, id, to] = args;
    if (!(await advance(...args))) await explainMiss(user, id, to);
    return detail(id);
  }

  /** PUT /status's rules, in the order their errors are documented; throws the first that fails. */
  function checkStatusChange(user: UserRow, current: OrderRow, body: StatusChange): void {
    if (user.role === 'customer' && body.status !== 'delivered') {
      throw fail('FORBIDDEN', 'Customers can only confirm delivery of a shipped order (status "delivered").');
    }
    if (user.role === 'nail_technician' && current.technicianId !== user.id) throw notYours();
    const from = FORWARD[body.status];
    if (!from || current.status !== from) throw invalidTransition(current.status, body.status);
    if ((body.carrier || body.tracking_number) && body.status !== 'shipped') {
      throw validationError('Carrier and tracking number go with status "shipped".', { tracking_number: 'is only accepted when shipping' });
    }
    if (body.status === 'in_production' && current.paymentStatus !== 'paid') {
      throw fail('PAYMENT_REQUIRED', 'Production cannot start before the order is paid. Record the payment first.', {
        current_status: current.status,
        payment_status: current.paymentStatus,
      });
    }
  }

  return {
    detail,

    async submit(user: UserRow, input: SubmitInput, idem: IdempotencyInput) {
      const source = input.sourceDesignId ? await findReusableDesign(db, input.sourceDesignId) : undefined;
      if (input.sourceDesignId && !source) throw designNotReusable();
      const description = (input.description ?? source?.description)?.trim();
      if (!description) throw validationError('Describe the design.', { description: 'is required' });
      if (!input.file && !source) throw validationError('Attach the design as a PNG in the "image" field.', { image: 'is required' });

      const result = await runIdempotent(db, { userId: user.id, key: idem.key, scope: 'POST /orders', requestHash: idem.requestHash }, async () => {
        const orderId = randomUUID();
        const keys = input.file
          ? await storeImage(orderId, await deps.processImage(input.file))
          : await copyImage(orderId, source!);
        return withCompensation(keys, () =>
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
            );
            if (source && source.ownerId !== user.id && !(await repo.recordUsage({ designId: source.id, orderId: row.id, userId: user.id }, tx))) {
              throw designNotReusable();
            }
            return row;
          }),
        );
      });
      return { status: result.status, replayed: result.replayed, order: await detail(result.resourceId) };
    },

    async list(user: UserRow, filter: Omit<OrderListFilter, 'customerId' | 'technicianId'>) {
      const scoped: OrderListFilter =
        user.role === 'customer' ? { ...filter, customerId: user.id } : { ...filter, technicianId: user.id };
      const { rows, total } = await repo.list(scoped);
      return { items: await Promise.all(rows.map(render)), total };
    },

    async get(user: UserRow, id: string) {
      await visibleOrder(user, id);
      return detail(id);
    },

    async assign(user: UserRow, id: string) {
      await db.transaction(async (tx) => {
        const row = await repo.updateWhere(
          id,
          and(eq(orders.status, 'submitted'), isNull(orders.technicianId)),
          { technicianId: user.id, status: 'under_review', statusChangedAt: new Date() },
          tx,
        );
        if (!row) {
          const current = await repo.findById(id, tx);
          if (!current) throw orderNotFound();
          throw fail('ORDER_ALREADY_ASSIGNED', 'This order already has a technician.', {
            current_status: current.status,
          });
        }
        await repo.touchAssigned(user.id, tx);
        await repo.addEvent({ orderId: id, actorId: user.id, fromStatus: 'submitted', toStatus: 'under_review', note: 'taken by technician' }, tx);
      });
      return detail(id);
    },

    async review(user: UserRow, id: string, body: { action: 'accept' | 'reject'; complexity_multiplier?: number; feedback?: string }) {
      const mine: Expected = { status: 'under_review', technicianId: user.id };
      if (body.action === 'accept') {
        const m = body.complexity_multiplier;
        if (m === undefined) throw validationError('Accepting needs a complexity_multiplier.', { complexity_multiplier: 'is required to accept' });
        if (body.feedback !== undefined) throw validationError('Feedback goes with a rejection.', { feedback: 'is only accepted with action reject' });
        const hundredths = Math.round(m * 100);
        if (Math.abs(m * 100 - hundredths) > 1e-6) {
          throw validationError('The multiplier has at most two decimals.', { complexity_multiplier: 'must have at most two decimals' });
        }
        const current = await visibleOrder(user, id);
        // Integer arithmetic on hundredths: money never goes through a float.
        const unit = Math.round((deps.pricing.basePriceCents * hundredths) / 100);
        return transition(
          user,
          id,
          'accepted',
          mine,
          { complexityMultiplier: hundredths / 100, unitPriceCents: unit, totalPriceCents: unit * current.quantity, feedback: null },
          { from: 'under_review', note: `accepted at ×${(hundredths / 100).toFixed(2)}` },
        );
      }
      const feedback = body.feedback?.trim();
      if (!feedback) throw validationError('Rejecting needs feedback that tells the customer what to change.', { feedback: 'is required to reject' });
      if (body.complexity_multiplier !== undefined) {
        throw validationError('A multiplier goes with an acceptance.', { complexity_multiplier: 'is only accepted with action accept' });
      }
      await visibleOrder(user, id);
      return transition(user, id, 'rejected', mine, { feedback }, { from: 'under_review', note: feedback });
    },

    async revise(user: UserRow, id: string, input: { description?: string; file?: SpooledFile }) {
      const description = input.description?.trim();
      if (!input.file && !description) {
        throw validationError('Send a new image, a new description, or both.', { image: 'or description is required' });
      }
      const current = await visibleOrder(user, id);
      if (current.status !== 'rejected') throw invalidTransition(current.status, 'under_review');
      const keys = input.file ? await storeImage(id, await deps.processImage(input.file)) : undefined;
      const run = async () => {
        await db.transaction(async (tx) => {
          const row = await repo.updateWhere(
            id,
            and(eq(orders.status, 'rejected'), eq(orders.customerId, user.id), eq(orders.revisionCount, current.revisionCount)),
            {
              status: 'under_review',
              statusChangedAt: new Date(),
              revisionCount: current.revisionCount + 1,
              feedback: null,
              ...(description ? { description } : {}),
              ...(keys ? { imageKey: keys.imageKey, thumbnailKey: keys.thumbnailKey } : {}),
            },
            tx,
          );
          if (!row) await explainMiss(user, id, 'under_review', tx);
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
          if (description) await repo.updateDesignDescription(id, description, tx);
          await repo.addEvent(
            { orderId: id, actorId: user.id, fromStatus: 'rejected', toStatus: 'under_review', note: `revision ${current.revisionCount + 1}` },
            tx,
          );
        });
      };
      if (keys) await withCompensation(keys, run);
      else await run();
      return detail(id);
    },

    async setPayment(user: UserRow, id: string, paymentStatus: 'paid' | 'unpaid') {
      await db.transaction(async (tx) => {
        const row = await repo.updateWhere(
          id,
          and(eq(orders.status, 'accepted'), eq(orders.technicianId, user.id)),
          { paymentStatus },
          tx,
        );
        if (!row) {
          const current = await visibleOrder(user, id, tx);
          throw fail('INVALID_STATE', `Payment can only be recorded on an accepted order; this one is ${current.status}.`, {
            current_status: current.status,
          });
        }
        await repo.addEvent({ orderId: id, actorId: user.id, fromStatus: 'accepted', toStatus: 'accepted', note: `payment ${paymentStatus}` }, tx);
      });
      return detail(id);
    },

    async setStatus(user: UserRow, id: string, body: StatusChange) {
      // The update's guard holds exactly what checkStatusChange allows, so the usual request is one
      // transaction and no read before it; only when the guard matches nothing is the order read, and
      // the rules, run against it in their documented order, say why.
      const from = FORWARD[body.status];
      const possible =
        from && (user.role !== 'customer' || body.status === 'delivered') && (body.status === 'shipped' || !(body.carrier || body.tracking_number));
      if (possible) {
        const owner: Expected = user.role === 'customer' ? { customerId: user.id } : { technicianId: user.id };
        const paid: Expected = body.status === 'in_production' ? { paymentStatus: 'paid' } : {};
        const shipping = body.status === 'shipped' ? { carrier: body.carrier ?? null, trackingNumber: body.tracking_number ?? null } : {};
        const tracking = body.status === 'shipped' && body.tracking_number ? `tracking ${body.carrier ?? ''} ${body.tracking_number}`.replace(/\s+/g, ' ') : null;
        if (await advance(user, id, body.status, { status: from, ...owner, ...paid }, shipping, { from, note: body.note ?? tracking })) {
          return detail(id);
        }
      }
      const current = await visibleOrder(user, id);
      checkStatusChange(user, current, body);
      // Every rule holds now: the order changed between the update and this read.
      throw invalidTransition(current.status, body.status);
    },

    async reorder(user: UserRow, id: string, input: { quantity?: number }, idem: IdempotencyInput) {
      const original = await visibleOrder(user, id);
      const result = await runIdempotent(db, { userId: user.id, key: idem.key, scope: `POST /orders/${id}/reorder`, requestHash: idem.requestHash }, async () => {
        const orderId = randomUUID();
        const keys = await copyImage(orderId, original);
        return withCompensation(keys, () =>
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
      return { status: result.status, replayed: result.replayed, order: await detail(result.resourceId) };
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

import { type AnyPgColumn, boolean, check, customType, date, index, integer, jsonb, numeric, pgTable, primaryKey, sql, text, timestamp, uniqueIndex, uuid } from './orm.js';
import { DESIGN_TAGS_MAX } from '../modules/designs/designs.domain.js';
import { MODERATION_ACTIONS, REPORT_REASONS, REPORT_STATUSES, REPORT_TEXT_MAX_LENGTH } from '../modules/moderation/moderation.domain.js';
import { RATING_COMMENT_MAX_LENGTH, RATING_STARS } from '../modules/ratings/ratings.domain.js';
import { INVITATION_STATUSES } from '../modules/invitations/invitations.domain.js';
import { COMMENT_MAX_LENGTH } from '../modules/comments/comments.domain.js';
import { MESSAGE_MAX_LENGTH } from '../modules/messages/messages.domain.js';
import { CHECKOUT_STATUSES, LENGTHS, OPEN_STATUSES, ORDER_STATUSES, PAYMENT_METHODS, PAYMENT_STATUSES, SHAPES } from '../modules/orders/orders.domain.js';
import { ROLES, type ShippingAddress } from '../modules/users/users.domain.js';
import { DELIVERY_STATUSES, DISABLED_REASONS } from '../modules/webhooks/webhooks.domain.js';
import { CATEGORIES, EVENT_TYPES } from '../modules/notifications/events.js';

const inList = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(', '));

const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });

const timestamps = {
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' })
    .notNull()
    .defaultNow()
    .$onUpdate(() => new Date()),
};

export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    auth0Id: text('auth0_id').notNull(),
    /** Null until the identity provider has verified the address (email_verified): an unverified one is never stored. */
    email: text('email'),
    name: text('name').notNull(),
    role: text('role', { enum: ROLES }).notNull(),
    phone: text('phone'),
    shippingAddress: jsonb('shipping_address').$type<ShippingAddress>(),
    nailSizes: integer('nail_sizes').array(),
    preferredShape: text('preferred_shape', { enum: SHAPES }),
    preferredLength: text('preferred_length', { enum: LENGTHS }),
    lastLoginAt: timestamp('last_login_at', { withTimezone: true, mode: 'date' }),
    /** When this technician last had an order assigned; breaks ties in auto-assignment. */
    lastAssignedAt: timestamp('last_assigned_at', { withTimezone: true, mode: 'date' }),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('users_auth0_id_key').on(t.auth0Id),
    uniqueIndex('users_email_key').on(t.email),
    index('users_role_idx').on(t.role),
    check('users_role_check', sql`${t.role} in (${inList(ROLES)})`),
    check('users_email_lower_check', sql`${t.email} = lower(${t.email})`),
    check(
      'users_nail_sizes_check',
      sql`${t.nailSizes} is null or (cardinality(${t.nailSizes}) = 10 and 0 <= all(${t.nailSizes}) and 11 >= all(${t.nailSizes}))`,
    ),
    check('users_preferred_shape_check', sql`${t.preferredShape} is null or ${t.preferredShape} in (${inList(SHAPES)})`),
    check(
      'users_preferred_length_check',
      sql`${t.preferredLength} is null or ${t.preferredLength} in (${inList(LENGTHS)})`,
    ),
  ],
);

export const invitations = pgTable(
  'invitations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    email: text('email').notNull(),
    name: text('name').notNull(),
    status: text('status', { enum: INVITATION_STATUSES }).notNull().default('pending'),
    auth0UserId: text('auth0_user_id'),
    ticketUrl: text('ticket_url').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    invitedById: uuid('invited_by_id').references(() => users.id),
    acceptedAt: timestamp('accepted_at', { withTimezone: true, mode: 'date' }),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('invitations_pending_email_key').on(t.email).where(sql`${t.status} = 'pending'`),
    index('invitations_email_idx').on(t.email),
    index('invitations_invited_by_id_idx').on(t.invitedById),
    check('invitations_status_check', sql`${t.status} in (${inList(INVITATION_STATUSES)})`),
  ],
);

export const orders = pgTable(
  'orders',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    customerId: uuid('customer_id')
      .notNull()
      .references(() => users.id),
    technicianId: uuid('technician_id').references(() => users.id),
    description: text('description').notNull(),
    quantity: integer('quantity').notNull(),
    shape: text('shape', { enum: SHAPES }),
    length: text('length', { enum: LENGTHS }),
    nailSizes: integer('nail_sizes').array(),
    status: text('status', { enum: ORDER_STATUSES }).notNull(),
    imageKey: text('image_key').notNull(),
    thumbnailKey: text('thumbnail_key').notNull(),
    complexityMultiplier: numeric('complexity_multiplier', { precision: 3, scale: 2, mode: 'number' }),
    unitPriceCents: integer('unit_price_cents'),
    totalPriceCents: integer('total_price_cents'),
    currency: text('currency').notNull(),
    paymentStatus: text('payment_status', { enum: PAYMENT_STATUSES }).notNull().default('unpaid'),
    /** How it was paid (null while unpaid): Stripe Checkout or recorded by hand. */
    paymentMethod: text('payment_method', { enum: PAYMENT_METHODS }),
    /** Stripe's PaymentIntent id (or the Checkout Session's when there is none); null for manual payments. */
    paymentReference: text('payment_reference'),
    paidAt: timestamp('paid_at', { withTimezone: true, mode: 'date' }),
    feedback: text('feedback'),
    revisionCount: integer('revision_count').notNull().default(0),
    carrier: text('carrier'),
    trackingNumber: text('tracking_number'),
    originalOrderId: uuid('original_order_id').references((): AnyPgColumn => orders.id),
    sourceDesignId: uuid('source_design_id').references((): AnyPgColumn => designs.id),
    /** Promised at acceptance: acceptance date + TURNAROUND_BUSINESS_DAYS business days (workflow.ts, accept). */
    shipBy: date('ship_by', { mode: 'string' }),
    statusChangedAt: timestamp('status_changed_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    ...timestamps,
  },
  (t) => [
    // List indexes end in exactly the lists' ORDER BY (newest first, id breaking ties; read backwards for
    // oldest first). DESC must be NULLS FIRST, as in a plain `order by … desc`: an index in another null
    // order cannot serve the ORDER BY, and the list falls back to sorting every matching row.
    index('orders_customer_id_created_at_idx').on(t.customerId, t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst()),
    index('orders_technician_id_created_at_idx').on(t.technicianId, t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst()),
    index('orders_unassigned_created_at_idx')
      .on(t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst())
      .where(sql`${t.technicianId} is null`),
    index('orders_status_idx').on(t.status),
    // Sorting by ship_by, and the overdue filter (a ship_by range), within each list's scope.
    index('orders_technician_id_ship_by_idx').on(t.technicianId, t.shipBy, t.id),
    index('orders_customer_id_ship_by_idx').on(t.customerId, t.shipBy, t.id),
    // Auto-assignment counts each technician's open orders under a global lock on every submission.
    index('orders_open_technician_id_idx')
      .on(t.technicianId)
      .where(sql`${t.status} in (${inList(OPEN_STATUSES)})`),
    index('orders_original_order_id_idx').on(t.originalOrderId),
    index('orders_source_design_id_idx').on(t.sourceDesignId),
    check('orders_quantity_check', sql`${t.quantity} > 0 and ${t.quantity} <= 100`),
    check('orders_status_check', sql`${t.status} in (${inList(ORDER_STATUSES)})`),
    check('orders_payment_status_check', sql`${t.paymentStatus} in (${inList(PAYMENT_STATUSES)})`),
    check('orders_payment_method_check', sql`${t.paymentMethod} is null or ${t.paymentMethod} in (${inList(PAYMENT_METHODS)})`),
    check(
      'orders_multiplier_check',
      sql`${t.complexityMultiplier} is null or (${t.complexityMultiplier} >= 1.00 and ${t.complexityMultiplier} <= 5.00)`,
    ),
    check('orders_prices_check', sql`coalesce(${t.unitPriceCents}, 0) >= 0 and coalesce(${t.totalPriceCents}, 0) >= 0`),
    check('orders_revision_count_check', sql`${t.revisionCount} >= 0`),
    check('orders_shape_check', sql`${t.shape} is null or ${t.shape} in (${inList(SHAPES)})`),
    check('orders_length_check', sql`${t.length} is null or ${t.length} in (${inList(LENGTHS)})`),
    check(
      'orders_nail_sizes_check',
      sql`${t.nailSizes} is null or (cardinality(${t.nailSizes}) = 10 and 0 <= all(${t.nailSizes}) and 11 >= all(${t.nailSizes}))`,
    ),
    check(
      'orders_unassigned_only_when_submitted_check',
      sql`(${t.status} = 'submitted') = (${t.technicianId} is null)`,
    ),
  ],
);

/** Earlier versions of a design that a technician rejected; images are never deleted. */
export const orderRevisions = pgTable(
  'order_revisions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    orderId: uuid('order_id')
      .notNull()
      .references(() => orders.id),
    revision: integer('revision').notNull(),
    description: text('description').notNull(),
    imageKey: text('image_key').notNull(),
    thumbnailKey: text('thumbnail_key').notNull(),
    feedback: text('feedback'),
    ...timestamps,
  },
  (t) => [uniqueIndex('order_revisions_order_id_revision_key').on(t.orderId, t.revision)],
);

export const orderEvents = pgTable(
  'order_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    orderId: uuid('order_id')
      .notNull()
      .references(() => orders.id),
    actorId: uuid('actor_id').references(() => users.id),
    fromStatus: text('from_status', { enum: ORDER_STATUSES }),
    toStatus: text('to_status', { enum: ORDER_STATUSES }).notNull(),
    note: text('note'),
    /** The workflow move that wrote it (workflow.ts); null on events recorded before moves were named. */
    kind: text('kind'),
    /** What the move changed (price, feedback, tracking…), as its typed domain event carries it. */
    changes: jsonb('changes').$type<Record<string, unknown>>(),
    ...timestamps,
  },
  (t) => [
    // actor_id last: an order's unread count (threads.repository.ts) is an index-only range scan of it.
    index('order_events_order_id_created_at_actor_id_idx').on(t.orderId, t.createdAt, t.actorId),
    index('order_events_actor_id_idx').on(t.actorId),
    check('order_events_to_status_check', sql`${t.toStatus} in (${inList(ORDER_STATUSES)})`),
  ],
);

export const messages = pgTable(
  'messages',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    orderId: uuid('order_id')
      .notNull()
      .references(() => orders.id),
    senderId: uuid('sender_id')
      .notNull()
      .references(() => users.id),
    text: text('text').notNull(),
    ...timestamps,
  },
  (t) => [
    // sender_id last: an order's unread count (threads.repository.ts) is an index-only range scan of it.
    index('messages_order_id_created_at_sender_id_idx').on(t.orderId, t.createdAt, t.senderId),
    index('messages_sender_id_idx').on(t.senderId),
    check('messages_text_check', sql`char_length(${t.text}) between 1 and ${sql.raw(String(MESSAGE_MAX_LENGTH))}`),
  ],
);

/**
 * A design in the gallery: public, not removed, not hidden by moderation. Every partial gallery index, the
 * repository's `inGallery` and the trigger that keeps `design_tags` (migration 0016) match exactly this predicate.
 */
export const galleryRow = (t: { isPublic: AnyPgColumn; removedAt: AnyPgColumn; hiddenAt: AnyPgColumn }) =>
  sql`${t.isPublic} and ${t.removedAt} is null and ${t.hiddenAt} is null`;

export const designs = pgTable(
  'designs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    orderId: uuid('order_id')
      .notNull()
      .references((): AnyPgColumn => orders.id),
    ownerId: uuid('owner_id')
      .notNull()
      .references(() => users.id),
    description: text('description').notNull(),
    isPublic: boolean('is_public').notNull().default(false),
    publishedAt: timestamp('published_at', { withTimezone: true, mode: 'date' }),
    removedAt: timestamp('removed_at', { withTimezone: true, mode: 'date' }),
    /** Hidden by moderation (a technician, or three open reports): out of the gallery as if removed, until restored. */
    hiddenAt: timestamp('hidden_at', { withTimezone: true, mode: 'date' }),
    reuseCount: integer('reuse_count').notNull().default(0),
    commentCount: integer('comment_count').notNull().default(0),
    favouriteCount: integer('favourite_count').notNull().default(0),
    /**
     * Its lineage: the gallery designs it was made from, the original first and the design its order
     * reused last (empty for an original). Copied from the reused design at reuse time, never changed.
     */
    ancestorIds: uuid('ancestor_ids').array().notNull().default(sql`'{}'::uuid[]`),
    /** Paid orders made from it or from any design derived from it (lineage.ts keeps it). */
    orderedCount: integer('ordered_count').notNull().default(0),
    /** Its own order is paid and counted in its ancestors' ordered_count: the counter moves once per order. */
    countedAsOrdered: boolean('counted_as_ordered').notNull().default(false),
    /** The order's shape and length, copied when the design is made (orders never change them). */
    shape: text('shape', { enum: SHAPES }),
    length: text('length', { enum: LENGTHS }),
    /** Up to DESIGN_TAGS_MAX free tags from the owner (designs.domain.ts). */
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    searchVector: tsvector('search_vector').generatedAlwaysAs(
      (): ReturnType<typeof sql> => sql`to_tsvector('english', description)`,
    ),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('designs_order_id_key').on(t.orderId),
    index('designs_owner_id_idx').on(t.ownerId),
    // The gallery's orders, for gallery rows only (see the orders indexes on DESC NULLS FIRST).
    index('designs_gallery_published_idx')
      .on(t.publishedAt.desc().nullsFirst(), t.id.desc().nullsFirst())
      .where(galleryRow(t)),
    index('designs_gallery_reuse_idx')
      .on(t.reuseCount.desc().nullsFirst(), t.publishedAt.desc().nullsFirst(), t.id.desc().nullsFirst())
      .where(galleryRow(t)),
    index('designs_gallery_comment_idx')
      .on(t.commentCount.desc().nullsFirst(), t.publishedAt.desc().nullsFirst(), t.id.desc().nullsFirst())
      .where(galleryRow(t)),
    index('designs_gallery_favourite_idx')
      .on(t.favouriteCount.desc().nullsFirst(), t.publishedAt.desc().nullsFirst(), t.id.desc().nullsFirst())
      .where(galleryRow(t)),
    index('designs_gallery_ordered_idx')
      .on(t.orderedCount.desc().nullsFirst(), t.publishedAt.desc().nullsFirst(), t.id.desc().nullsFirst())
      .where(galleryRow(t)),
    // A design's descendants (ratings over its whole lineage).
    index('designs_ancestor_ids_idx').using('gin', t.ancestorIds),
    // Filters on shape or length in newest-first order; other sorts filter the rows their own index yields.
    index('designs_gallery_shape_idx')
      .on(t.shape, t.publishedAt.desc().nullsFirst(), t.id.desc().nullsFirst())
      .where(galleryRow(t)),
    index('designs_gallery_length_idx')
      .on(t.length, t.publishedAt.desc().nullsFirst(), t.id.desc().nullsFirst())
      .where(galleryRow(t)),
    index('designs_tags_idx')
      .using('gin', t.tags)
      .where(galleryRow(t)),
    // Only the gallery searches descriptions, so only gallery rows are indexed.
    index('designs_search_vector_idx')
      .using('gin', t.searchVector)
      .where(galleryRow(t)),
    check('designs_counts_check', sql`${t.reuseCount} >= 0 and ${t.commentCount} >= 0`),
    check('designs_favourite_count_check', sql`${t.favouriteCount} >= 0`),
    check('designs_ordered_count_check', sql`${t.orderedCount} >= 0`),
    check('designs_shape_check', sql`${t.shape} is null or ${t.shape} in (${inList(SHAPES)})`),
    check('designs_length_check', sql`${t.length} is null or ${t.length} in (${inList(LENGTHS)})`),
    check('designs_tags_check', sql`cardinality(${t.tags}) <= ${sql.raw(String(DESIGN_TAGS_MAX))}`),
  ],
);

/**
 * One row per tag of each gallery design, kept by a trigger on `designs` (migration 0016) and written by
 * nothing else: a tag's capped count is an index-only scan of at most a page's cap of entries, where the
 * GIN index on `designs.tags` has to build a bitmap of every match first (21 ms for a tag on a tenth of
 * 200 000 public designs, bench figure 5b).
 */
export const designTags = pgTable(
  'design_tags',
  {
    tag: text('tag').notNull(),
    designId: uuid('design_id')
      .notNull()
      .references(() => designs.id, { onDelete: 'cascade' }),
  },
  (t) => [primaryKey({ columns: [t.tag, t.designId] }), index('design_tags_design_id_idx').on(t.designId)],
);

export const designUsages = pgTable(
  'design_usages',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    designId: uuid('design_id')
      .notNull()
      .references(() => designs.id),
    orderId: uuid('order_id')
      .notNull()
      .references(() => orders.id),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id),
    ...timestamps,
  },
  (t) => [
    index('design_usages_design_id_created_at_idx').on(t.designId, t.createdAt.desc().nullsFirst(), t.id),
    uniqueIndex('design_usages_order_id_key').on(t.orderId),
    index('design_usages_user_id_idx').on(t.userId),
  ],
);

/** One customer's favourite of one design: at most one per pair; the design's favourite_count counts them. */
export const designFavourites = pgTable(
  'design_favourites',
  {
    designId: uuid('design_id')
      .notNull()
      .references(() => designs.id),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: 'design_favourites_pkey', columns: [t.designId, t.userId] }),
    // "My favourites", newest first.
    index('design_favourites_user_id_created_at_idx').on(t.userId, t.createdAt.desc().nullsFirst(), t.designId.desc().nullsFirst()),
  ],
);

export const comments = pgTable(
  'comments',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    designId: uuid('design_id')
      .notNull()
      .references(() => designs.id),
    authorId: uuid('author_id')
      .notNull()
      .references(() => users.id),
    text: text('text').notNull(),
    /** Deleted by its author: gone for good (the row stays, for reports and moderation). */
    deletedAt: timestamp('deleted_at', { withTimezone: true, mode: 'date' }),
    /** Hidden by moderation, until restored. */
    hiddenAt: timestamp('hidden_at', { withTimezone: true, mode: 'date' }),
    ...timestamps,
  },
  (t) => [
    index('comments_design_id_created_at_idx').on(t.designId, t.createdAt),
    index('comments_author_id_idx').on(t.authorId),
    check('comments_text_check', sql`char_length(${t.text}) between 1 and ${sql.raw(String(COMMENT_MAX_LENGTH))}`),
  ],
);

/**
 * A signed-in user's report of a public design or of a comment: once per user and item (the partial
 * unique indexes), open until a technician decides on the item.
 */
export const reports = pgTable(
  'reports',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    reporterId: uuid('reporter_id')
      .notNull()
      .references(() => users.id),
    designId: uuid('design_id')
      .notNull()
      .references(() => designs.id),
    /** Set when the report is about a comment on the design. */
    commentId: uuid('comment_id').references(() => comments.id),
    reason: text('reason', { enum: REPORT_REASONS }).notNull(),
    text: text('text'),
    status: text('status', { enum: REPORT_STATUSES }).notNull().default('open'),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('reports_design_reporter_key').on(t.designId, t.reporterId).where(sql`${t.commentId} is null`),
    uniqueIndex('reports_comment_reporter_key').on(t.commentId, t.reporterId).where(sql`${t.commentId} is not null`),
    // The moderation queue: open reports, oldest first.
    index('reports_open_created_at_idx').on(t.createdAt, t.id).where(sql`${t.status} = 'open'`),
    index('reports_reporter_id_idx').on(t.reporterId),
    check('reports_reason_check', sql`${t.reason} in (${inList(REPORT_REASONS)})`),
    check('reports_status_check', sql`${t.status} in (${inList(REPORT_STATUSES)})`),
    check('reports_text_check', sql`${t.text} is null or char_length(${t.text}) between 1 and ${sql.raw(String(REPORT_TEXT_MAX_LENGTH))}`),
  ],
);

/** Every moderation decision on a design or comment (hide or restore), by whom, with its note: the audit trail. */
export const moderationActions = pgTable(
  'moderation_actions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** Null when the service hid the item itself (three open reports). */
    moderatorId: uuid('moderator_id').references(() => users.id),
    designId: uuid('design_id')
      .notNull()
      .references(() => designs.id),
    commentId: uuid('comment_id').references(() => comments.id),
    action: text('action', { enum: MODERATION_ACTIONS }).notNull(),
    note: text('note').notNull(),
    ...timestamps,
  },
  (t) => [
    index('moderation_actions_design_id_created_at_idx').on(t.designId, t.createdAt),
    index('moderation_actions_comment_id_idx').on(t.commentId),
    index('moderation_actions_moderator_id_idx').on(t.moderatorId),
    check('moderation_actions_action_check', sql`${t.action} in (${inList(MODERATION_ACTIONS)})`),
  ],
);

/** A delivered order's rating by its customer: one per order (the key), editable for RATING_EDITABLE_DAYS. */
export const orderRatings = pgTable(
  'order_ratings',
  {
    orderId: uuid('order_id')
      .primaryKey()
      .references(() => orders.id),
    customerId: uuid('customer_id')
      .notNull()
      .references(() => users.id),
    technicianId: uuid('technician_id')
      .notNull()
      .references(() => users.id),
    stars: integer('stars').notNull(),
    comment: text('comment'),
    ...timestamps,
  },
  (t) => [
    // A technician's average and count.
    index('order_ratings_technician_id_idx').on(t.technicianId, t.stars),
    index('order_ratings_customer_id_idx').on(t.customerId),
    check('order_ratings_stars_check', sql`${t.stars} between ${sql.raw(String(RATING_STARS.min))} and ${sql.raw(String(RATING_STARS.max))}`),
    check(
      'order_ratings_comment_check',
      sql`${t.comment} is null or char_length(${t.comment}) between 1 and ${sql.raw(String(RATING_COMMENT_MAX_LENGTH))}`,
    ),
  ],
);

/** Replays of creating POSTs, shared by every dyno (SPEC §6). */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id),
    key: text('key').notNull(),
    scope: text('scope').notNull(),
    requestHash: text('request_hash').notNull(),
    state: text('state', { enum: ['in_progress', 'completed'] }).notNull().default('in_progress'),
    responseStatus: integer('response_status'),
    responseBody: jsonb('response_body'),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('idempotency_keys_user_id_key_key').on(t.userId, t.key),
    index('idempotency_keys_created_at_idx').on(t.createdAt),
  ],
);

/**
 * Objects that an order which was never created left in the store (its upload failed half-way, or the
 * database failed after it). Written before the removal is tried, so a removal that fails, or a process
 * that dies meanwhile, leaves a row the sweeper retries until the object is gone (SPEC §5).
 */
export const storageCleanup = pgTable(
  'storage_cleanup',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    key: text('key').notNull(),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    ...timestamps,
  },
  (t) => [uniqueIndex('storage_cleanup_key_key').on(t.key), index('storage_cleanup_created_at_idx').on(t.createdAt)],
);

/**
 * Stripe Checkout Sessions created for orders. At most one is open per order (the unique index), and it
 * is reused until it expires; the webhook finds its order through it.
 */
export const checkoutSessions = pgTable(
  'checkout_sessions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    orderId: uuid('order_id')
      .notNull()
      .references(() => orders.id),
    /** Stripe's id, cs_… */
    sessionId: text('session_id').notNull(),
    url: text('url').notNull(),
    amountCents: integer('amount_cents').notNull(),
    currency: text('currency').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    status: text('status', { enum: CHECKOUT_STATUSES }).notNull().default('open'),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('checkout_sessions_session_id_key').on(t.sessionId),
    uniqueIndex('checkout_sessions_open_order_id_key').on(t.orderId).where(sql`${t.status} = 'open'`),
    index('checkout_sessions_order_id_idx').on(t.orderId),
    check('checkout_sessions_status_check', sql`${t.status} in (${inList(CHECKOUT_STATUSES)})`),
    check('checkout_sessions_amount_check', sql`${t.amountCents} > 0`),
  ],
);

/** Stripe events already processed: a replayed or re-delivered event id is acknowledged and ignored. */
export const stripeEvents = pgTable('stripe_events', {
  eventId: text('event_id').primaryKey(),
  type: text('type').notNull(),
  receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});

/**
 * How far each participant has read an order's thread (its messages and status events): items after
 * read_at by someone else are unread. One row per order and reader; markers only move forward.
 */
export const threadReads = pgTable(
  'thread_reads',
  {
    orderId: uuid('order_id')
      .notNull()
      .references(() => orders.id),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id),
    readAt: timestamp('read_at', { withTimezone: true, mode: 'date' }).notNull(),
    ...timestamps,
  },
  (t) => [
    // The unread count looks a marker up by (order, reader): the key is that lookup.
    primaryKey({ name: 'thread_reads_pkey', columns: [t.orderId, t.userId] }),
    index('thread_reads_user_id_idx').on(t.userId),
  ],
);

/**
 * Single-use tickets for GET /api/v1/stream: browsers' EventSource cannot send an Authorization header, so a
 * signed-in client trades its token for a ticket that lives seconds and goes in the URL. Only the SHA-256 of the
 * ticket is kept (a leaked row cannot be redeemed); any web process can redeem it, once.
 */
export const streamTickets = pgTable(
  'stream_tickets',
  {
    tokenHash: text('token_hash').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('stream_tickets_expires_at_idx').on(t.expiresAt), index('stream_tickets_user_id_idx').on(t.userId)],
);

/**
 * Outgoing webhook subscriptions of technicians (issue 16). The signing secret is stored encrypted
 * (webhooks/secrets.ts), because the API must sign with it; during a rotation's grace period the previous one
 * signs too.
 */
export const webhookSubscriptions = pgTable(
  'webhook_subscriptions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    ownerId: uuid('owner_id')
      .notNull()
      .references(() => users.id),
    url: text('url').notNull(),
    description: text('description'),
    eventTypes: text('event_types').array().notNull(),
    enabled: boolean('enabled').notNull().default(true),
    disabledReason: text('disabled_reason', { enum: DISABLED_REASONS }),
    disabledAt: timestamp('disabled_at', { withTimezone: true, mode: 'date' }),
    secret: text('secret').notNull(),
    previousSecret: text('previous_secret'),
    previousSecretExpiresAt: timestamp('previous_secret_expires_at', { withTimezone: true, mode: 'date' }),
    /** The first failed attempt since the last success; a whole retry window of failure disables the subscription. */
    failingSince: timestamp('failing_since', { withTimezone: true, mode: 'date' }),
    ...timestamps,
  },
  (t) => [
    index('webhook_subscriptions_owner_id_idx').on(t.ownerId, t.createdAt),
    check('webhook_subscriptions_disabled_reason_check', sql`${t.disabledReason} is null or ${t.disabledReason} in (${inList(DISABLED_REASONS)})`),
  ],
);

/** One event for one subscription: sent until the receiver answers 2xx or the retry window closes. */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    subscriptionId: uuid('subscription_id')
      .notNull()
      .references(() => webhookSubscriptions.id, { onDelete: 'cascade' }),
    /** The outbox event's id, sent as webhook-id: the receiver's key for de-duplication. */
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    /** The exact JSON body signed and sent ({ type, timestamp, data }). */
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    status: text('status', { enum: DELIVERY_STATUSES }).notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    /** When a worker may next try it; while one holds it, the end of its lease. Null once delivered or failed. */
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true, mode: 'date' }),
    /** The end of the retry window (creation or re-send + 24 h). */
    retryUntil: timestamp('retry_until', { withTimezone: true, mode: 'date' }).notNull(),
    deliveredAt: timestamp('delivered_at', { withTimezone: true, mode: 'date' }),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('webhook_deliveries_subscription_id_event_id_key').on(t.subscriptionId, t.eventId),
    index('webhook_deliveries_due_idx').on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
    index('webhook_deliveries_subscription_id_created_at_idx').on(t.subscriptionId, t.createdAt),
    check('webhook_deliveries_status_check', sql`${t.status} in (${inList(DELIVERY_STATUSES)})`),
  ],
);

/** Every HTTP attempt of a delivery, as its owner sees it in the delivery log. */
export const webhookAttempts = pgTable(
  'webhook_attempts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    deliveryId: uuid('delivery_id')
      .notNull()
      .references(() => webhookDeliveries.id, { onDelete: 'cascade' }),
    attemptedAt: timestamp('attempted_at', { withTimezone: true, mode: 'date' }).notNull(),
    /** Null when no answer came (refused address, connection error, timeout). */
    statusCode: integer('status_code'),
    durationMs: integer('duration_ms').notNull(),
    error: text('error'),
  },
  (t) => [index('webhook_attempts_delivery_id_idx').on(t.deliveryId, t.attemptedAt)],
);

/**
 * The notifications outbox (issue 16): one row per thing worth telling, written in the transaction of the change
 * itself; the worker's fan-out job for it is enqueued in the same transaction (modules/notifications/outbox.ts).
 * References are plain values, not foreign keys: an event is a record of what happened, and the insert on the
 * request path stays one index write.
 */
export const outboxEvents = pgTable(
  'outbox_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    type: text('type', { enum: EVENT_TYPES }).notNull(),
    occurredAt: timestamp('occurred_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    actorId: uuid('actor_id'),
    orderId: uuid('order_id'),
    designId: uuid('design_id'),
    data: jsonb('data').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    /** When the worker's relay queued the event's fan-out job; null until then (the request path writes only the row). */
    relayedAt: timestamp('relayed_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    check('outbox_events_type_check', sql`${t.type} in (${inList(EVENT_TYPES)})`),
    index('outbox_events_unrelayed_idx').on(t.occurredAt).where(sql`${t.relayedAt} is null`),
  ],
);

/** What one person was told about one event (in-app); one per (event, recipient), so a re-delivered event adds nothing. */
export const notifications = pgTable(
  'notifications',
  {
    id: uuid('id').primaryKey(),
    eventId: uuid('event_id')
      .notNull()
      .references(() => outboxEvents.id),
    recipientId: uuid('recipient_id')
      .notNull()
      .references(() => users.id),
    type: text('type', { enum: EVENT_TYPES }).notNull(),
    title: text('title').notNull(),
    body: text('body').notNull(),
    link: text('link').notNull(),
    /** The order's facts as they were told (Notice.order), or null. */
    orderFacts: jsonb('order_facts').$type<Record<string, unknown>>(),
    readAt: timestamp('read_at', { withTimezone: true, mode: 'date' }),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('notifications_event_id_recipient_id_key').on(t.eventId, t.recipientId),
    // The list (unread first, then newest) and the unread count, per recipient.
    index('notifications_recipient_id_created_at_idx').on(t.recipientId, t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst()),
    index('notifications_unread_recipient_id_created_at_idx')
      .on(t.recipientId, t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst())
      .where(sql`${t.readAt} is null`),
    check('notifications_type_check', sql`${t.type} in (${inList(EVENT_TYPES)})`),
  ],
);

/** Email switched off for one category (CATEGORIES); no row means on. In-app is always on. */
export const notificationPreferences = pgTable(
  'notification_preferences',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id),
    category: text('category', { enum: CATEGORIES }).notNull(),
    email: boolean('email').notNull(),
    ...timestamps,
  },
  (t) => [
    primaryKey({ name: 'notification_preferences_pkey', columns: [t.userId, t.category] }),
    check('notification_preferences_category_check', sql`${t.category} in (${inList(CATEGORIES)})`),
  ],
);

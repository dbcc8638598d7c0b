import { alias, and, asc, desc, eq, ilike, inArray, isNull, ne, or, type Placeholder, type SQL, sql, unionAll } from '../../db/orm.js';
import type { Executor } from '../../db/client.js';
import { boundedCount, countCap, estimateQuery, totalFrom } from '../../db/pagination.js';
import { byShape, prepared, preparedSql } from '../../db/prepared.js';
import { designs, orderEvents, orderRevisions, orders, users } from '../../db/schema.js';
import type { Told } from '../notifications/events.js';
import { eventInsertFrom } from '../notifications/notifications.repository.js';
import { unreadCount } from '../threads/threads.repository.js';
import { OPEN_STATUSES, type OrderStatus, UNSHIPPED_STATUSES } from './orders.domain.js';

export type OrderRow = typeof orders.$inferSelect;
export type NewOrder = typeof orders.$inferInsert;
export type OrderEventRow = typeof orderEvents.$inferSelect;

/** Serialises auto-assignment across processes so workload counts are never read stale. */
const ASSIGNMENT_LOCK_KEY = 727_001_2025;

export interface OrderListFilter {
  /** Who asks: each order's unread_count is theirs. */
  viewerId: string;
  customerId?: string;
  /** Technician view: orders assigned to this technician plus unassigned ones. */
  technicianId?: string;
  statuses?: OrderStatus[];
  search?: string;
  fromDate?: Date;
  toDate?: Date;
  /** Past ship_by (before `today`, a UTC date) and not shipped yet, or (false) the others. */
  overdue?: { is: boolean; today: string };
  sort: { field: 'created_at' | 'updated_at' | 'status' | 'ship_by'; descending: boolean };
  limit: number;
  offset: number;
}

const customer = alias(users, 'customer');
const technician = alias(users, 'technician');

const listColumns = {
  order: orders,
  customerName: customer.name,
  technicianName: technician.name,
  designId: designs.id,
  // The viewer's unread thread items, in the same statement (threads.repository.ts: an indexed subquery per row).
  unreadCount: unreadCount(sql.placeholder('viewer')).as('unread_count'),
};

export type OrderWithNames = { order: OrderRow; customerName: string; technicianName: string | null; designId: string | null; unreadCount: number };
/** As JSON from PostgreSQL: dates are ISO text. */
export type TimelineEvent = {
  fromStatus: OrderStatus | null;
  toStatus: OrderStatus;
  actorId: string | null;
  actorName: string | null;
  note: string | null;
  createdAt: string;
};
export type EarlierVersion = { revision: number; description: string; imageKey: string; thumbnailKey: string; feedback: string | null; createdAt: string };
export type OrderDetailRow = OrderWithNames & { events: TimelineEvent[]; revisions: EarlierVersion[] };

/**
 * One requirement of a transition on the order's row (workflow.ts derives them from its table): the
 * conditional UPDATE's WHERE is all of them.
 */
export type Condition =
  | { column: 'status' | 'customerId' | 'technicianId' | 'paymentStatus' | 'revisionCount'; op: 'eq'; value: string | number }
  | { column: 'customerId'; op: 'ne'; value: string }
  | { column: 'technicianId'; op: 'null' };
export type TransitionEvent = {
  kind: string;
  actorId: string | null;
  fromStatus: OrderStatus | null;
  toStatus: OrderStatus;
  note: string | null;
  changes: Record<string, unknown>;
  /** What the move tells people (an outbox event of the notifications module), written by the same statement. */
  told?: Told | null;
};
/** The event row a transition wrote. */
export type RecordedEvent = { id: string; orderId: string; actorId: string | null; note: string | null; at: Date };

const prefixed = (prefix: string, values: object) => Object.fromEntries(Object.entries(values).map(([k, v]) => [`${prefix}${k}`, v]));

/** How listParts puts a value into the SQL: as itself, or as a placeholder of that name (for a prepared statement). */
type Bind = <T>(name: string, value: T) => T | Placeholder<string>;
const bindValue: Bind = (_name, value) => value;
const bindPlaceholder: Bind = (name) => sql.placeholder(name);

/** The conditions of an order list, and the values its placeholders take. */
function listParts(filter: OrderListFilter, bind: Bind) {
  const values: Record<string, unknown> = {};
  const v = <T>(name: string, value: T) => {
    values[name] = value;
    return bind(name, value);
  };
  const conditions: SQL[] = [];
  if (filter.statuses?.length) conditions.push(inArray(orders.status, filter.statuses.map((s, i) => v(`status${i}`, s))));
  if (filter.search) conditions.push(ilike(orders.description, v('search', `%${escapeLike(filter.search)}%`)));
  // As ISO text: a placeholder reaches the driver without drizzle's own Date encoding.
  if (filter.fromDate) conditions.push(sql`${orders.createdAt} >= ${v('fromDate', filter.fromDate.toISOString())}`);
  if (filter.toDate) conditions.push(sql`${orders.createdAt} < ${v('toDate', filter.toDate.toISOString())}`);
  if (filter.overdue) {
    const overdue = sql`(${orders.shipBy} < ${v('today', filter.overdue.today)}::date and ${orders.status} in (${sql.raw(UNSHIPPED_STATUSES.map((s) => `'${s}'`).join(', '))}))`;
    conditions.push(filter.overdue.is ? overdue : sql`not coalesce(${overdue}, false)`);
  }
  // Each way an order belongs in the list is its own index range: a customer's orders; for a
  // technician, those assigned to them and the unassigned ones. Each range is paged on its own
  // index and the two merged, where `a OR b` could only be answered by collecting and sorting
  // every matching row (a million orders make that a six-figure sort).
  const scopes: Array<SQL | undefined> = filter.customerId
    ? [eq(orders.customerId, v('scope', filter.customerId))]
    : filter.technicianId
      ? [eq(orders.technicianId, v('scope', filter.technicianId)), isNull(orders.technicianId)]
      : [undefined];
  const column = { created_at: orders.createdAt, updated_at: orders.updatedAt, status: orders.status, ship_by: orders.shipBy }[filter.sort.field];
  const direction = filter.sort.descending ? desc : asc;
  return { values, conditions, scopes, branches: scopes.map((scope) => and(scope, ...conditions)), column, direction };
}

const isTimestamp = (column: keyof NewOrder) => orders[column].columnType === 'PgTimestamp';

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export function createOrdersRepository(db: Executor) {
  const withNames = (tx: Executor) =>
    tx
      .select(listColumns)
      .from(orders)
      .innerJoin(customer, eq(customer.id, orders.customerId))
      .leftJoin(technician, eq(technician.id, orders.technicianId))
      .leftJoin(designs, eq(designs.orderId, orders.id));

  // An order's detail (every answer about one order) in one round trip: the order with its names, and its
  // timeline and earlier versions aggregated as JSON by PostgreSQL, where three statements took three.
  // Built and prepared once.
  const timeline = sql<TimelineEvent[]>`(select coalesce(json_agg(json_build_object(
      'fromStatus', e.from_status, 'toStatus', e.to_status, 'actorId', e.actor_id, 'actorName', u.name, 'note', e.note, 'createdAt', e.created_at
    ) order by e.created_at, e.id), '[]'::json)
    from ${orderEvents} e left join ${users} u on u.id = e.actor_id where e.order_id = ${orders.id})`;
  const versions = sql<EarlierVersion[]>`(select coalesce(json_agg(json_build_object(
      'revision', r.revision, 'description', r.description, 'imageKey', r.image_key, 'thumbnailKey', r.thumbnail_key,
      'feedback', r.feedback, 'createdAt', r.created_at
    ) order by r.revision), '[]'::json)
    from ${orderRevisions} r where r.order_id = ${orders.id})`;
  const hot = {
    detail: prepared(
      db
        .select({ ...listColumns, events: timeline.as('events'), revisions: versions.as('revisions') })
        .from(orders)
        .innerJoin(customer, eq(customer.id, orders.customerId))
        .leftJoin(technician, eq(technician.id, orders.technicianId))
        .leftJoin(designs, eq(designs.orderId, orders.id))
        .where(eq(orders.id, sql.placeholder('id')))
        .limit(1),
    ),
  };

  // A transition's statement, prepared once per shape (which conditions it checks, which columns it sets)
  // rather than per request. Inside a caller's transaction it is built on that transaction instead.
  const conditionKey = (c: Condition) => `${c.column}_${c.op}`;
  const buildTransition = (exec: Executor, where: Condition[], set: Array<keyof NewOrder>, tells: boolean) => {
    const p = sql.placeholder;
    const test = (c: Condition) =>
      c.op === 'null' ? isNull(orders[c.column]) : (c.op === 'eq' ? eq : ne)(orders[c.column], p(`w_${conditionKey(c)}`));
    const moved = exec.$with('moved').as(
      exec
        .update(orders)
        // Every value is a placeholder (bound per execution), updated_at's too: its $onUpdate default would be built in once.
        // Timestamps go as ISO text with a cast: drizzle's own Date encoding of a placeholder fails on null (paid_at cleared).
        .set(Object.fromEntries([...set, 'updatedAt'].map((k) => [k, isTimestamp(k as keyof NewOrder) ? sql`${p(`s_${k}`)}::timestamptz` : p(`s_${k}`)])))
        .where(and(eq(orders.id, p('id')), ...where.map(test)))
        .returning({ id: orders.id }),
    );
    // The move's outbox event, through the notifications module's insert: a data-modifying CTE runs whether or not
    // the statement reads it, and only for the row `moved` returned.
    const told = exec.$with('told', { id: sql<string>`id` }).as(
      sql`${eventInsertFrom(sql`moved`, {
        type: sql`${p('toldType')}::text`,
        actorId: sql`${p('actorId')}::uuid`,
        orderId: sql`moved.id`,
        data: sql`${p('toldData')}::jsonb`,
      })} returning id`,
    );
    return exec
      .with(...(tells ? [moved, told] : [moved]))
      .insert(orderEvents)
      .select(
        // insert … select takes every column of the table, in its order.
        exec
          .select({
            id: sql`gen_random_uuid()`.as('id'),
            orderId: moved.id,
            actorId: sql`${p('actorId')}::uuid`.as('actor_id'),
            fromStatus: sql`${p('fromStatus')}::text`.as('from_status'),
            toStatus: sql`${p('toStatus')}::text`.as('to_status'),
            note: sql`${p('note')}::text`.as('note'),
            kind: sql`${p('kind')}::text`.as('kind'),
            changes: sql`${p('changes')}::jsonb`.as('changes'),
            // Events of one transaction share now(); the wall clock keeps the timeline in the order they happened.
            createdAt: sql`clock_timestamp()`.as('created_at'),
            updatedAt: sql`now()`.as('updated_at'),
          })
          .from(moved),
      )
      .returning({ id: orderEvents.id, orderId: orderEvents.orderId, actorId: orderEvents.actorId, note: orderEvents.note, at: orderEvents.createdAt })
      .prepare('');
  };
  const transitionStatement = byShape(
    (where: Condition[], set: Array<keyof NewOrder>, tells: boolean) => `${where.map(conditionKey).join()}|${set.join()}|${tells}`,
    (where: Condition[], set: Array<keyof NewOrder>, tells: boolean) => buildTransition(db, where, set, tells),
  );

  // A list's statements depend only on its shape (scope, sort, which filters are set): each shape is built
  // and prepared once, its values bound per request. Building them per request cost ~0.7 ms a page.
  const buildList = (filter: OrderListFilter) => {
    const { branches, scopes, conditions, column, direction } = listParts(filter, bindPlaceholder);
    const p = sql.placeholder;
    const range = (scope: SQL | undefined, limit: Placeholder<string>) =>
      db
        .select({ id: orders.id, sortKey: sql`${column}`.as('sort_key') })
        .from(orders)
        .where(and(scope, ...conditions))
        .orderBy(direction(column), direction(orders.id))
        .limit(limit);
    const [first, second] = scopes;
    const page = (
      scopes.length === 2
        ? unionAll(range(first, p('rangeLimit')), range(second, p('rangeLimit')))
            .orderBy(direction(sql.identifier('sort_key')), direction(sql.identifier('id')))
            .limit(p('limit'))
            .offset(p('offset'))
        : range(first, p('limit')).offset(p('offset'))
    ).as('page');
    const order = [direction(column), direction(orders.id)];
    return {
      // Only the page's ids come from the ranges; names and designs are joined for those rows alone.
      rows: prepared(withNames(db).innerJoin(page, eq(page.id, orders.id)).orderBy(...order)),
      count: prepared(boundedCount(db, orders, branches, p('cap'), order)),
      estimate: preparedSql(db, estimateQuery(db, orders, branches)),
    };
  };
  const listStatements = byShape(
    (filter: OrderListFilter) =>
      JSON.stringify([
        filter.customerId ? 'customer' : filter.technicianId ? 'technician' : 'all',
        filter.statuses?.length ?? 0,
        Boolean(filter.search),
        Boolean(filter.fromDate),
        Boolean(filter.toDate),
        filter.overdue?.is ?? null,
        filter.sort,
      ]),
    buildList,
  );

  return {
    /** Accepted, not yet shipped orders of these technicians promised to ship on `day` (their (technician, ship_by) index). */
    async dueToShipOn(day: string, technicianIds: string[], tx: Executor = db) {
      if (technicianIds.length === 0) return [];
      return tx
        .select({ id: orders.id, technicianId: orders.technicianId, shipBy: orders.shipBy, status: orders.status })
        .from(orders)
        .where(and(inArray(orders.technicianId, technicianIds), eq(orders.shipBy, day), inArray(orders.status, [...UNSHIPPED_STATUSES])));
    },

    async findById(id: string, tx: Executor = db): Promise<OrderRow | undefined> {
      const [row] = await tx.select().from(orders).where(eq(orders.id, id)).limit(1);
      return row;
    },

    async findByIds(ids: string[], tx: Executor = db): Promise<OrderRow[]> {
      if (ids.length === 0) return [];
      return tx.select().from(orders).where(inArray(orders.id, ids));
    },

    /** An order with its names, `viewerId`'s unread count, timeline (oldest first) and earlier versions (by revision); dates as ISO text. */
    async findDetail(id: string, viewerId: string): Promise<OrderDetailRow | undefined> {
      const [row] = await hot.detail.execute({ id, viewer: viewerId });
      return row;
    },

    async list(filter: OrderListFilter): Promise<{ rows: OrderWithNames[]; total: number }> {
      const statements = listStatements(filter);
      const cap = countCap(filter.offset, filter.limit);
      const values = {
        ...listParts(filter, bindValue).values,
        viewer: filter.viewerId,
        rangeLimit: filter.offset + filter.limit,
        limit: filter.limit,
        offset: filter.offset,
        cap,
      };
      const [rows, [counted]] = await Promise.all([statements.rows.execute(values), statements.count.execute(values)]);
      const total = await totalFrom(counted?.n ?? 0, cap, () => statements.estimate.execute(values));
      return { rows, total };
    },

    async lockAssignment(tx: Executor): Promise<void> {
      await tx.execute(sql`select pg_advisory_xact_lock(${ASSIGNMENT_LOCK_KEY})`);
    },

    /**
     * Fewest open orders first; ties go to whoever was assigned least recently (never first). Never the
     * order's own customer (a person may hold both roles over time).
     */
    async pickTechnician(customerId: string, tx: Executor): Promise<string | undefined> {
      // The statuses are written into the SQL (constants, not input) so the planner can match the partial
      // index orders_open_technician_id_idx, which holds exactly these rows: counting stays index-only.
      const statuses = sql.raw(OPEN_STATUSES.map((s) => `'${s}'`).join(', '));
      const open = sql`(select count(*) from ${orders} o where o.technician_id = ${users.id} and o.status in (${statuses}))`;
      const [row] = await tx
        .select({ id: users.id })
        .from(users)
        .where(and(eq(users.role, 'nail_technician'), ne(users.id, customerId)))
        .orderBy(open, sql`${users.lastAssignedAt} asc nulls first`, asc(users.createdAt))
        .limit(1);
      return row?.id;
    },

    /** A new order and its creation event, in the caller's transaction. */
    async insert(values: NewOrder, event: TransitionEvent, tx: Executor): Promise<{ order: OrderRow; event: RecordedEvent }> {
      const [order] = await tx.insert(orders).values(values).returning();
      const [recorded] = await tx
        .insert(orderEvents)
        .values({ ...event, orderId: order!.id, createdAt: sql`clock_timestamp()` })
        .returning({ id: orderEvents.id, orderId: orderEvents.orderId, actorId: orderEvents.actorId, note: orderEvents.note, at: orderEvents.createdAt });
      return { order: order!, event: recorded! };
    },

    /**
     * The one way an existing order changes: a conditional update that matches only while every
     * condition holds (so of two concurrent requests one wins), feeding its event's insert through a
     * CTE. One round trip and atomic without a transaction; inside `tx` when the caller changes more.
     * Undefined when the order did not meet the conditions (nothing is written then).
     */
    async transition(id: string, where: Condition[], set: Partial<NewOrder>, event: TransitionEvent, tx?: Executor): Promise<RecordedEvent | undefined> {
      const columns = Object.keys(set) as Array<keyof NewOrder>;
      const told = event.told ?? null;
      const statement = tx ? buildTransition(tx, where, columns, told !== null) : transitionStatement(where, columns, told !== null);
      const [row] = await statement.execute({
        ...Object.fromEntries(where.filter((c) => c.op !== 'null').map((c) => [`w_${conditionKey(c)}`, (c as { value: unknown }).value])),
        ...prefixed('s_', Object.fromEntries(Object.entries(set).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v]))),
        s_updatedAt: new Date().toISOString(),
        id,
        actorId: event.actorId,
        fromStatus: event.fromStatus,
        toStatus: event.toStatus,
        note: event.note,
        kind: event.kind,
        changes: JSON.stringify(event.changes),
        ...(told ? { toldType: told.type, toldData: JSON.stringify(told.data) } : {}),
      });
      return row ? { ...row, at: new Date(row.at) } : undefined;
    },

    async addRevision(values: typeof orderRevisions.$inferInsert, tx: Executor): Promise<void> {
      await tx.insert(orderRevisions).values(values);
    },

    /** Whether order `id` or one of its earlier versions points at any of `keys` (by primary key and order id). */
    async referencesImages(id: string, keys: string[]): Promise<boolean> {
      const current = await db
        .select({ id: orders.id })
        .from(orders)
        .where(and(eq(orders.id, id), or(inArray(orders.imageKey, keys), inArray(orders.thumbnailKey, keys))))
        .limit(1);
      if (current.length) return true;
      const earlier = await db
        .select({ id: orderRevisions.id })
        .from(orderRevisions)
        .where(and(eq(orderRevisions.orderId, id), or(inArray(orderRevisions.imageKey, keys), inArray(orderRevisions.thumbnailKey, keys))))
        .limit(1);
      return earlier.length > 0;
    },
  };
}

export type OrdersRepository = ReturnType<typeof createOrdersRepository>;

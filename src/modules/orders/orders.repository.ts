import { alias, and, asc, desc, eq, ilike, inArray, isNull, type Placeholder, type SQL, sql, unionAll } from '../../db/orm.js';
import type { Executor } from '../../db/client.js';
import { boundedCount, countCap, estimateQuery, totalFrom } from '../../db/pagination.js';
import { byShape, prepared, preparedSql } from '../../db/prepared.js';
import {
  OPEN_STATUSES,
  type OrderStatus,
  designUsages,
  designs,
  orderEvents,
  orderRevisions,
  orders,
  users,
} from '../../db/schema.js';

export type OrderRow = typeof orders.$inferSelect;
export type NewOrder = typeof orders.$inferInsert;
export type OrderEventRow = typeof orderEvents.$inferSelect;

/** Serialises auto-assignment across processes so workload counts are never read stale. */
const ASSIGNMENT_LOCK_KEY = 727_001_2025;

export interface OrderListFilter {
  customerId?: string;
  /** Technician view: orders assigned to this technician plus unassigned ones. */
  technicianId?: string;
  statuses?: OrderStatus[];
  search?: string;
  fromDate?: Date;
  toDate?: Date;
  sort: { field: 'created_at' | 'updated_at' | 'status'; descending: boolean };
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
};

export type OrderWithNames = { order: OrderRow; customerName: string; technicianName: string | null; designId: string | null };
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

/** What advance() requires of the order: each column equal to its value. */
export type Expected = Partial<Pick<OrderRow, 'status' | 'customerId' | 'technicianId' | 'paymentStatus' | 'revisionCount'>>;
export type AdvanceEvent = { actorId: string | null; fromStatus: OrderStatus | null; toStatus: OrderStatus; note?: string | null };

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
  // Each way an order belongs in the list is its own index range: a customer's orders; for a
  // technician, those assigned to them and the unassigned ones. Each range is paged on its own
  // index and the two merged, where `a OR b` could only be answered by collecting and sorting
  // every matching row (a million orders make that a six-figure sort).
  const scopes: Array<SQL | undefined> = filter.customerId
    ? [eq(orders.customerId, v('scope', filter.customerId))]
    : filter.technicianId
      ? [eq(orders.technicianId, v('scope', filter.technicianId)), isNull(orders.technicianId)]
      : [undefined];
  const column = { created_at: orders.createdAt, updated_at: orders.updatedAt, status: orders.status }[filter.sort.field];
  const direction = filter.sort.descending ? desc : asc;
  return { values, conditions, scopes, branches: scopes.map((scope) => and(scope, ...conditions)), column, direction };
}

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

  // advance()'s statement, prepared once per shape (which columns it checks and sets) rather than per request.
  const buildAdvance = (where: Array<keyof Expected>, set: Array<keyof NewOrder>) => {
    const p = sql.placeholder;
    const moved = db.$with('moved').as(
      db
        .update(orders)
        // Every value is a placeholder (bound per execution), updated_at's too: its $onUpdate default would be built in once.
        .set(Object.fromEntries([...set, 'updatedAt'].map((k) => [k, p(`s_${k}`)])))
        .where(and(eq(orders.id, p('id')), ...where.map((k) => eq(orders[k], p(`w_${k}`)))))
        .returning({ id: orders.id }),
    );
    return prepared(
      db
        .with(moved)
        .insert(orderEvents)
        .select(
          // insert … select takes every column of the table, in its order.
          db
            .select({
              id: sql`gen_random_uuid()`.as('id'),
              orderId: moved.id,
              actorId: sql`${p('actorId')}::uuid`.as('actor_id'),
              fromStatus: sql`${p('fromStatus')}::text`.as('from_status'),
              toStatus: sql`${p('toStatus')}::text`.as('to_status'),
              note: sql`${p('note')}::text`.as('note'),
              // Events of one transaction share now(); the wall clock keeps the timeline in the order they happened.
              createdAt: sql`clock_timestamp()`.as('created_at'),
              updatedAt: sql`now()`.as('updated_at'),
            })
            .from(moved),
        )
        .returning({ id: orderEvents.id }),
    );
  };
  const advanceStatement = byShape((where: Array<keyof Expected>, set: Array<keyof NewOrder>) => `${where.join()}|${set.join()}`, buildAdvance);

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
        filter.sort,
      ]),
    buildList,
  );

  return {
    async findById(id: string, tx: Executor = db): Promise<OrderRow | undefined> {
      const [row] = await tx.select().from(orders).where(eq(orders.id, id)).limit(1);
      return row;
    },

    /** An order with its names, timeline (oldest first) and earlier versions (by revision); dates as ISO text. */
    async findDetail(id: string): Promise<OrderDetailRow | undefined> {
      const [row] = await hot.detail.execute({ id });
      return row;
    },

    async list(filter: OrderListFilter): Promise<{ rows: OrderWithNames[]; total: number }> {
      const statements = listStatements(filter);
      const cap = countCap(filter.offset, filter.limit);
      const values = {
        ...listParts(filter, bindValue).values,
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

    /** Fewest open orders first; ties go to whoever was assigned least recently (never first). */
    async pickTechnician(tx: Executor): Promise<string | undefined> {
      // The statuses are written into the SQL (constants, not input) so the planner can match the partial
      // index orders_open_technician_id_idx, which holds exactly these rows: counting stays index-only.
      const statuses = sql.raw(OPEN_STATUSES.map((s) => `'${s}'`).join(', '));
      const open = sql`(select count(*) from ${orders} o where o.technician_id = ${users.id} and o.status in (${statuses}))`;
      const [row] = await tx
        .select({ id: users.id })
        .from(users)
        .where(eq(users.role, 'nail_technician'))
        .orderBy(open, sql`${users.lastAssignedAt} asc nulls first`, asc(users.createdAt))
        .limit(1);
      return row?.id;
    },

    async touchAssigned(technicianId: string, tx: Executor): Promise<void> {
      await tx.update(users).set({ lastAssignedAt: sql`clock_timestamp()` }).where(eq(users.id, technicianId));
    },

    async insert(values: NewOrder, tx: Executor): Promise<OrderRow> {
      const [row] = await tx.insert(orders).values(values).returning();
      return row!;
    },

    /**
     * The one way an order changes state: a conditional update that only matches when the order is
     * still what the caller saw, so concurrent requests cannot both win.
     */
    async updateWhere(id: string, expected: SQL | undefined, set: Partial<NewOrder>, tx: Executor): Promise<OrderRow | undefined> {
      const [row] = await tx
        .update(orders)
        .set(set)
        .where(expected ? and(eq(orders.id, id), expected) : eq(orders.id, id))
        .returning();
      return row;
    },

    /**
     * A state change and its timeline event as one statement: the conditional update (it matches only
     * while the order is as `expected`, so of two concurrent requests one wins) feeds the event insert
     * through a CTE. One round trip where BEGIN, UPDATE, INSERT, COMMIT took four, and atomic without a
     * transaction. False when the order was not as expected (nothing is written then).
     */
    async advance(id: string, expected: Expected, set: Partial<NewOrder>, event: AdvanceEvent): Promise<boolean> {
      const rows = await advanceStatement(Object.keys(expected) as Array<keyof Expected>, Object.keys(set) as Array<keyof NewOrder>).execute({
        ...prefixed('w_', expected),
        ...prefixed('s_', set),
        s_updatedAt: new Date(),
        id,
        actorId: event.actorId,
        fromStatus: event.fromStatus,
        toStatus: event.toStatus,
        note: event.note ?? null,
      });
      return rows.length > 0;
    },

    async addEvent(
      event: { orderId: string; actorId: string | null; fromStatus: OrderStatus | null; toStatus: OrderStatus; note?: string | null },
      tx: Executor,
    ): Promise<void> {
      // Events of one transaction share now(); the wall clock keeps the timeline in the order they happened.
      await tx.insert(orderEvents).values({ ...event, createdAt: sql`clock_timestamp()` });
    },

    async addRevision(values: typeof orderRevisions.$inferInsert, tx: Executor): Promise<void> {
      await tx.insert(orderRevisions).values(values);
    },

    async insertDesign(values: typeof designs.$inferInsert, tx: Executor): Promise<string> {
      const [row] = await tx.insert(designs).values(values).returning({ id: designs.id });
      return row!.id;
    },

    async updateDesignDescription(orderId: string, description: string, tx: Executor): Promise<void> {
      await tx.update(designs).set({ description }).where(eq(designs.orderId, orderId));
    },

    /**
     * Records a reuse and bumps the design's counter, only while the design is still in the gallery
     * (the conditional update locks its row): false when its owner hid or removed it meanwhile.
     */
    async recordUsage(values: { designId: string; orderId: string; userId: string }, tx: Executor): Promise<boolean> {
      const bumped = await tx
        .update(designs)
        .set({ reuseCount: sql`${designs.reuseCount} + 1` })
        .where(and(eq(designs.id, values.designId), eq(designs.isPublic, true), isNull(designs.removedAt)))
        .returning({ id: designs.id });
      if (bumped.length === 0) return false;
      await tx.insert(designUsages).values(values);
      return true;
    },
  };
}

export type OrdersRepository = ReturnType<typeof createOrdersRepository>;

/** A gallery design that may be reused: public and not removed, with the image of its order. */
export async function findReusableDesign(db: Executor, id: string) {
  const [row] = await db
    .select({
      id: designs.id,
      ownerId: designs.ownerId,
      description: designs.description,
      imageKey: orders.imageKey,
      thumbnailKey: orders.thumbnailKey,
      shape: orders.shape,
      length: orders.length,
    })
    .from(designs)
    .innerJoin(orders, eq(orders.id, designs.orderId))
    .where(and(eq(designs.id, id), eq(designs.isPublic, true), isNull(designs.removedAt)))
    .limit(1);
  return row;
}

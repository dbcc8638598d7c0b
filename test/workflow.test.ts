import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { eq, sql } from '../src/db/orm.js';
import { orderEvents, orders } from '../src/db/schema.js';
import { AppError } from '../src/errors.js';
import { ORDER_STATUSES, type OrderStatus, type PaymentStatus } from '../src/modules/orders/orders.domain.js';
import { type OrderRow, createOrdersRepository } from '../src/modules/orders/orders.repository.js';
import { MOVES, MOVE_LIST, type MoveInput, type MoveName, type OrderEvent, createWorkflow } from '../src/modules/orders/workflow.js';
import { createUsersRepository } from '../src/modules/users/users.repository.js';
import { type TestDatabase, createTestDatabase } from './support/database.js';

/**
 * The workflow table without HTTP: every (actor, order state, move) against a real database, through
 * the one repository call every move makes. The expectations are SPEC §3 written out independently of
 * workflow.ts, so a row of the table that drifts from the SPEC fails here.
 */

type Outcome = 'ok' | 'ORDER_NOT_FOUND' | 'NOT_ASSIGNED' | 'OWN_ORDER' | 'ORDER_ALREADY_ASSIGNED' | 'INVALID_STATE' | 'PAYMENT_REQUIRED' | 'ALREADY_PAID';

/** Who the caller is, relative to the order: its customer, another customer, its technician, another, or its customer holding a technician token. */
type ActorKind = 'owner' | 'other_customer' | 'assigned_tech' | 'other_tech' | 'customer_as_tech' | 'gateway';

interface State {
  status: OrderStatus;
  /** Who the order is assigned to: the technician, its own customer (data from before defect 3 was fixed), or nobody. */
  technician: 'tech' | 'customer' | null;
  payment: PaymentStatus;
}

// SPEC §3, as a reader states it: the move, its actor's role, and the status it starts from.
const SPEC: Record<Exclude<MoveName, 'submit'>, { by: 'customer' | 'technician' | 'system' | 'gateway'; from: OrderStatus; to: OrderStatus }> = {
  auto_assign: { by: 'system', from: 'submitted', to: 'under_review' },
  take: { by: 'technician', from: 'submitted', to: 'under_review' },
  accept: { by: 'technician', from: 'under_review', to: 'accepted' },
  reject: { by: 'technician', from: 'under_review', to: 'rejected' },
  revise: { by: 'customer', from: 'rejected', to: 'under_review' },
  record_payment: { by: 'technician', from: 'accepted', to: 'accepted' },
  // Issue 17: Stripe marks an accepted, unpaid order paid, or records a failed or expired checkout on it.
  pay_online: { by: 'gateway', from: 'accepted', to: 'accepted' },
  online_payment_failed: { by: 'gateway', from: 'accepted', to: 'accepted' },
  start_production: { by: 'technician', from: 'accepted', to: 'in_production' },
  ship: { by: 'technician', from: 'in_production', to: 'shipped' },
  deliver: { by: 'technician', from: 'shipped', to: 'delivered' },
  confirm_delivery: { by: 'customer', from: 'shipped', to: 'delivered' },
};

function expected(move: Exclude<MoveName, 'submit'>, actor: ActorKind, state: State): Outcome {
  const spec = SPEC[move];
  const actingId = actor === 'assigned_tech' ? 'tech' : actor === 'customer_as_tech' || actor === 'owner' ? 'customer' : 'someone else';
  if (spec.by === 'gateway') {
    // Whoever the order belongs to: the verified event speaks for Stripe. Never a second payment.
    if (state.status !== spec.from) return 'INVALID_STATE';
    return state.payment === 'unpaid' ? 'ok' : 'ALREADY_PAID';
  }
  if (spec.by === 'customer') {
    if (actor !== 'owner') return 'ORDER_NOT_FOUND';
    return state.status === spec.from ? 'ok' : 'INVALID_STATE';
  }
  if (move === 'take' || move === 'auto_assign') {
    // No one is ever assigned their own customer order; exactly one technician wins an unassigned one.
    if (actingId === 'customer') return 'OWN_ORDER';
    return state.technician === null ? 'ok' : 'ORDER_ALREADY_ASSIGNED';
  }
  // Only the assigned technician moves an order forward, never on their own order, one step at a time.
  if (state.technician === null) return 'INVALID_STATE';
  if (state.technician !== actingId) return 'NOT_ASSIGNED';
  if (actingId === 'customer') return 'OWN_ORDER';
  if (state.status !== spec.from) return 'INVALID_STATE';
  if (move === 'start_production' && state.payment !== 'paid') return 'PAYMENT_REQUIRED';
  return 'ok';
}

const ACTORS: Record<'customer' | 'technician' | 'system' | 'gateway', ActorKind[]> = {
  gateway: ['gateway'],
  customer: ['owner', 'other_customer'],
  technician: ['assigned_tech', 'other_tech', 'customer_as_tech'],
  // The system assigns to a technician it picked: here the technician, or (what pickTechnician now never does) the customer.
  system: ['assigned_tech', 'customer_as_tech'],
};

const STATES: State[] = ORDER_STATUSES.flatMap((status): State[] =>
  status === 'submitted'
    ? [{ status, technician: null, payment: 'unpaid' as const }]
    : (['tech', 'customer'] as const).flatMap((technician) =>
        (['unpaid', 'paid'] as const).map((payment) => ({ status, technician, payment })),
      ),
);

const INPUT: { [K in Exclude<MoveName, 'submit'>]: (ids: Ids) => MoveInput[K] } = {
  auto_assign: () => ({ technicianId: '' }),
  take: () => ({}),
  accept: () => ({ complexityMultiplier: 1.5, basePriceCents: 2500, quantity: 2, turnaroundBusinessDays: 10 }),
  reject: () => ({ feedback: 'More contrast' }),
  revise: () => ({ seenRevision: 0, description: 'Revised' }),
  record_payment: () => ({ paymentStatus: 'paid' }),
  pay_online: () => ({ reference: 'pi_123', amountCents: 6250, currency: 'USD' }),
  online_payment_failed: () => ({ sessionId: 'cs_test_1', outcome: 'expired' }),
  start_production: () => ({}),
  ship: () => ({ carrier: 'USPS', tracking_number: '9400 1' }),
  deliver: () => ({}),
  confirm_delivery: () => ({}),
};

interface Ids {
  customer: string;
  otherCustomer: string;
  tech: string;
  otherTech: string;
}

describe('workflow table', () => {
  let database: TestDatabase;
  let ids: Ids;
  let repo: ReturnType<typeof createOrdersRepository>;

  before(async () => {
    database = await createTestDatabase();
    const db = database.handle.db;
    const users = createUsersRepository(db);
    const make = async (role: 'customer' | 'nail_technician') => {
      const slug = randomUUID();
      return (await users.insert({ auth0Id: `auth0|${slug}`, email: `${slug}@example.com`, name: slug.slice(0, 8), role }))!.id;
    };
    ids = { customer: await make('customer'), otherCustomer: await make('customer'), tech: await make('nail_technician'), otherTech: await make('nail_technician') };
    repo = createOrdersRepository(db);
  });
  after(() => database.drop());

  async function orderIn(state: State): Promise<OrderRow> {
    const technicianId = state.technician === 'tech' ? ids.tech : state.technician === 'customer' ? ids.customer : null;
    const { order } = await repo.insert(
      {
        id: randomUUID(),
        customerId: ids.customer,
        technicianId,
        status: state.status,
        paymentStatus: state.payment,
        description: 'A design',
        quantity: 2,
        imageKey: 'k.png',
        thumbnailKey: 'k.webp',
        currency: 'USD',
      },
      { kind: 'submit', actorId: ids.customer, fromStatus: null, toStatus: 'submitted', note: null, changes: {} },
      database.handle.db,
    );
    return order;
  }

  const actorId = (actor: ActorKind) =>
    ({ owner: ids.customer, other_customer: ids.otherCustomer, assigned_tech: ids.tech, other_tech: ids.otherTech, customer_as_tech: ids.customer, gateway: null })[actor];

  const events = async (orderId: string) =>
    database.handle.db.select().from(orderEvents).where(eq(orderEvents.orderId, orderId)).orderBy(sql`${orderEvents.createdAt}`);

  it('covers every move of the table, and the table every move of the SPEC', () => {
    assert.deepEqual(MOVE_LIST.map((m) => m.name).filter((m) => m !== 'submit').sort(), Object.keys(SPEC).sort());
    for (const [name, spec] of Object.entries(SPEC)) {
      const move = MOVES[name as MoveName];
      assert.equal(move.from, spec.from, name);
      assert.equal(move.to, spec.to, name);
    }
  });

  it('answers every (actor, state, move) as the SPEC says, changing the order and writing its event only when allowed', async () => {
    const workflow = createWorkflow({ db: database.handle.db, orders: repo });
    const mismatches: string[] = [];
    let cases = 0;
    for (const [name, spec] of Object.entries(SPEC) as Array<[Exclude<MoveName, 'submit'>, (typeof SPEC)[keyof typeof SPEC]]>) {
      for (const actor of ACTORS[spec.by]) {
        for (const state of STATES) {
          cases++;
          const want = expected(name, actor, state);
          const order = await orderIn(state);
          const input = name === 'auto_assign' ? { technicianId: actorId(actor) } : INPUT[name](ids);
          const by = name === 'auto_assign' ? null : actorId(actor);
          let got: Outcome;
          try {
            const event = await workflow.perform(name, by, order.id, input as never);
            got = 'ok';
            assert.equal(event.kind, name);
            assert.equal(event.to, spec.to);
          } catch (err) {
            if (!(err instanceof AppError)) throw err;
            got = err.code as Outcome;
            if (err.code === 'INVALID_STATE') assert.equal(err.details?.current_status, state.status);
          }
          const label = `${name} by ${actor} on ${state.status}/${state.technician ?? 'unassigned'}/${state.payment}`;
          if (got !== want) mismatches.push(`${label}: expected ${want}, got ${got}`);
          const [row] = await database.handle.db.select().from(orders).where(eq(orders.id, order.id));
          const written = await events(order.id);
          if (want === 'ok') {
            assert.equal(row!.status, spec.to, label);
            assert.equal(written.length, 2, `${label}: one event for the move`);
            assert.equal(written[1]!.kind, name, label);
            assert.equal(written[1]!.fromStatus, spec.from, label);
          } else {
            assert.deepEqual({ ...row, updatedAt: null }, { ...order, updatedAt: null }, `${label}: nothing changed`);
            assert.equal(written.length, 1, `${label}: no event`);
          }
        }
      }
    }
    assert.deepEqual(mismatches, []);
    assert.ok(cases > 300, `${cases} cases`);
  });

  it('hands each event to a subscriber inside the move, with its typed payload', async () => {
    const workflow = createWorkflow({ db: database.handle.db, orders: repo });
    const seen: Array<{ event: OrderEvent; inTransaction: boolean }> = [];
    workflow.subscribe(async (event, tx) => {
      // The handler's transaction sees the move's own write.
      const [row] = await tx.select({ status: orders.status }).from(orders).where(eq(orders.id, event.orderId));
      seen.push({ event, inTransaction: row!.status === event.to });
    });
    const order = await orderIn({ status: 'under_review', technician: 'tech', payment: 'unpaid' });
    // Accepted late on Friday 4 December 2026 (UTC): ten business days later is Friday the 18th.
    const at = new Date('2026-12-04T23:30:00Z');
    const accepted = await workflow.perform('accept', ids.tech, order.id, { complexityMultiplier: 1.25, basePriceCents: 2500, quantity: 2, turnaroundBusinessDays: 10, at });
    await workflow.perform('record_payment', ids.tech, order.id, { paymentStatus: 'paid' });
    await workflow.perform('start_production', ids.tech, order.id, {});
    await workflow.perform('ship', ids.tech, order.id, { carrier: 'UPS', tracking_number: '1Z 999' });

    assert.deepEqual(
      seen.map((s) => [s.event.kind, s.event.from, s.event.to, s.event.actorId, s.event.orderId, s.inTransaction]),
      [
        ['accept', 'under_review', 'accepted', ids.tech, order.id, true],
        ['record_payment', 'accepted', 'accepted', ids.tech, order.id, true],
        ['start_production', 'accepted', 'in_production', ids.tech, order.id, true],
        ['ship', 'in_production', 'shipped', ids.tech, order.id, true],
      ],
    );
    assert.deepEqual(seen[0]!.event.changes, { complexity_multiplier: 1.25, unit_price_cents: 3125, total_price_cents: 6250, ship_by: '2026-12-18' });
    assert.deepEqual(seen[1]!.event.changes, { payment_status: 'paid', payment_method: 'manual' });
    assert.deepEqual(seen[3]!.event.changes, { carrier: 'UPS', tracking_number: '1Z 999' });
    assert.equal(seen[0]!.event.id, accepted.id);
    assert.ok(seen.every((s) => s.event.at instanceof Date && !Number.isNaN(s.event.at.getTime())));
    const stored = await events(order.id);
    assert.deepEqual(stored.map((e) => e.id).slice(1), seen.map((s) => s.event.id), 'the events handed out are the timeline rows');
    assert.deepEqual(stored[1]!.changes, seen[0]!.event.changes, 'stored with what changed');
  });

  it('undoes the move when a subscriber throws', async () => {
    const workflow = createWorkflow({ db: database.handle.db, orders: repo });
    workflow.subscribe(() => {
      throw new Error('the outbox is full');
    });
    const order = await orderIn({ status: 'under_review', technician: 'tech', payment: 'unpaid' });
    await assert.rejects(workflow.perform('reject', ids.tech, order.id, { feedback: 'Too busy' }), /the outbox is full/);
    const [row] = await database.handle.db.select().from(orders).where(eq(orders.id, order.id));
    assert.equal(row!.status, 'under_review');
    assert.equal(row!.feedback, null);
    assert.equal((await events(order.id)).length, 1, 'no event for the undone move');
  });
});

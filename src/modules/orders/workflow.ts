import type { Database, Executor } from '../../db/client.js';
import { type AppError, type ErrorCode, fail, validationError } from '../../errors.js';
import type { Role } from '../users/users.domain.js';
import { MULTIPLIER, type OrderStatus, type PaymentMethod, type PaymentStatus, addBusinessDays } from './orders.domain.js';
import type { Told } from '../notifications/events.js';
import type { Notify } from '../notifications/outbox.js';
import type { Condition, NewOrder, OrderRow, OrdersRepository } from './orders.repository.js';

/**
 * The order workflow (SPEC §3), in one table: every move an order can make, who may make it, from which
 * status to which, its guards, what it changes and the event it records. Everything else is derived
 * from it: the conditional UPDATE's WHERE (one statement per move, see OrdersRepository.transition),
 * the 403/422 answer when that guard matches nothing, the routes' OpenAPI descriptions and
 * test/workflow.test.ts's expectations.
 */

/** Who may make a move. Nobody ever acts as technician on an order whose customer they are. */
export type Actor =
  /** the service itself (auto-assignment at submission) */
  | 'system'
  /** the order's customer */
  | 'owner'
  /** any technician, while the order has none */
  | 'any_technician'
  /** the technician the order is assigned to */
  | 'assigned_technician'
  /** Stripe, through a webhook whose signature verified (payments.service.ts); acts without a user */
  | 'payment_gateway';

/** What each move changes, as its domain event carries it (JSON field names, as clients see them). */
export interface MoveChanges {
  submit: { quantity: number };
  auto_assign: { technician_id: string };
  take: { technician_id: string };
  accept: { complexity_multiplier: number; unit_price_cents: number; total_price_cents: number; ship_by: string };
  reject: { feedback: string };
  revise: { revision: number; description_changed: boolean; image_changed: boolean };
  record_payment: { payment_status: PaymentStatus; payment_method: PaymentMethod | null };
  pay_online: { payment_status: 'paid'; payment_method: 'stripe'; payment_reference: string; amount_cents: number; currency: string };
  online_payment_failed: { checkout_session_id: string; outcome: 'failed' | 'expired' };
  start_production: Record<string, never>;
  ship: { carrier: string | null; tracking_number: string | null };
  deliver: Record<string, never>;
  confirm_delivery: Record<string, never>;
}
export type MoveName = keyof MoveChanges;

/** What the caller supplies for each move (already validated by the route's schema). */
export interface MoveInput {
  submit: { quantity: number };
  auto_assign: { technicianId: string };
  take: Record<string, never>;
  accept: {
    complexityMultiplier: number;
    basePriceCents: number;
    quantity: number;
    /** TURNAROUND_BUSINESS_DAYS: ship_by is this many business days after acceptance. */
    turnaroundBusinessDays: number;
    /** The acceptance moment (now unless a test fixes it). */
    at?: Date;
  };
  reject: { feedback: string };
  revise: { seenRevision: number; description?: string; image?: { imageKey: string; thumbnailKey: string } };
  record_payment: { paymentStatus: PaymentStatus };
  pay_online: { reference: string; amountCents: number; currency: string };
  online_payment_failed: { sessionId: string; outcome: 'failed' | 'expired' };
  start_production: { note?: string };
  ship: { carrier?: string; tracking_number?: string; note?: string };
  deliver: { note?: string };
  confirm_delivery: { note?: string };
}

/** A typed domain event: what one move did to one order, recorded in the same statement or transaction. */
export interface OrderEvent<K extends MoveName = MoveName> {
  id: string;
  orderId: string;
  kind: K;
  actorId: string | null;
  from: OrderStatus | null;
  to: OrderStatus;
  at: Date;
  note: string | null;
  changes: MoveChanges[K];
}

export type Endpoint = 'submit' | 'assign' | 'review' | 'design' | 'payment' | 'status';

interface Effect<K extends MoveName> {
  set: Partial<NewOrder>;
  changes: MoveChanges[K];
  note: string | null;
}

export interface Move<K extends MoveName = MoveName> {
  name: K;
  /** The route that makes it (`status` is PUT /orders/:id/status); null when the service makes it. */
  endpoint: Endpoint | null;
  actor: Actor;
  from: OrderStatus | null;
  to: OrderStatus;
  /** Guards beyond who and from where, as the docs state them. */
  guards: string[];
  /** Production waits for payment (SPEC §3 pricing). */
  requiresPaid?: boolean;
  /** Only an unpaid order: an order paid one way is never paid a second time. */
  requiresUnpaid?: boolean;
  /** Optional body fields only this move accepts, and how the refusal names the move. */
  exclusiveFields?: { fields: readonly string[]; when: string };
  // Methods, not function properties: a Move<'ship'> is then also a Move of any name.
  /** A check of the input the route's schema cannot express; throws a 400. */
  checkInput?(input: MoveInput[K]): void;
  effect(input: MoveInput[K], actorId: string | null): Effect<K>;
}

const hundredths = (m: number) => Math.round(m * 100);

const noChange = (input: { note?: string }) => ({ set: {}, changes: {} as Record<string, never>, note: input.note ?? null });

/** The table. Read it top to bottom as SPEC §3's diagram. */
export const MOVES: { [K in MoveName]: Move<K> } = {
  submit: {
    name: 'submit',
    endpoint: 'submit',
    actor: 'owner',
    from: null,
    to: 'submitted',
    guards: ['an image and a description'],
    effect: (input) => ({ set: {}, changes: { quantity: input.quantity }, note: null }),
  },
  auto_assign: {
    name: 'auto_assign',
    endpoint: null,
    actor: 'system',
    from: 'submitted',
    to: 'under_review',
    guards: ['at submission, to the technician with the fewest open orders (ties: least recently assigned)'],
    effect: (input) => ({
      set: { technicianId: input.technicianId },
      changes: { technician_id: input.technicianId },
      note: 'assigned automatically',
    }),
  },
  take: {
    name: 'take',
    endpoint: 'assign',
    actor: 'any_technician',
    from: 'submitted',
    to: 'under_review',
    guards: ['no technician yet (exactly one wins)'],
    effect: (_input, actorId) => ({ set: { technicianId: actorId }, changes: { technician_id: actorId! }, note: 'taken by technician' }),
  },
  accept: {
    name: 'accept',
    endpoint: 'review',
    actor: 'assigned_technician',
    from: 'under_review',
    to: 'accepted',
    guards: [
      `complexity_multiplier ${MULTIPLIER.min.toFixed(2)}–${MULTIPLIER.max.toFixed(2)}, at most ${MULTIPLIER.decimals} decimals`,
      'sets ship_by: TURNAROUND_BUSINESS_DAYS business days after acceptance (weekends skipped)',
    ],
    checkInput: (input) => {
      if (Math.abs(input.complexityMultiplier * 100 - hundredths(input.complexityMultiplier)) > 1e-6) {
        throw validationError('The multiplier has at most two decimals.', { complexity_multiplier: 'must have at most two decimals' });
      }
    },
    effect: (input) => {
      // Integer arithmetic on hundredths: money never goes through a float.
      const h = hundredths(input.complexityMultiplier);
      const unit = Math.round((input.basePriceCents * h) / 100);
      const total = unit * input.quantity;
      const shipBy = addBusinessDays(input.at ?? new Date(), input.turnaroundBusinessDays);
      return {
        set: { complexityMultiplier: h / 100, unitPriceCents: unit, totalPriceCents: total, feedback: null, shipBy },
        changes: { complexity_multiplier: h / 100, unit_price_cents: unit, total_price_cents: total, ship_by: shipBy },
        note: `accepted at ×${(h / 100).toFixed(2)}`,
      };
    },
  },
  reject: {
    name: 'reject',
    endpoint: 'review',
    actor: 'assigned_technician',
    from: 'under_review',
    to: 'rejected',
    guards: ['feedback is required'],
    effect: (input) => ({ set: { feedback: input.feedback }, changes: { feedback: input.feedback }, note: input.feedback }),
  },
  revise: {
    name: 'revise',
    endpoint: 'design',
    actor: 'owner',
    from: 'rejected',
    to: 'under_review',
    guards: ['a new image and/or description; the rejected version is kept with its feedback'],
    effect: (input) => ({
      set: {
        revisionCount: input.seenRevision + 1,
        feedback: null,
        ...(input.description ? { description: input.description } : {}),
        ...(input.image ? { imageKey: input.image.imageKey, thumbnailKey: input.image.thumbnailKey } : {}),
      },
      changes: { revision: input.seenRevision + 1, description_changed: Boolean(input.description), image_changed: Boolean(input.image) },
      note: `revision ${input.seenRevision + 1}`,
    }),
  },
  record_payment: {
    name: 'record_payment',
    endpoint: 'payment',
    actor: 'assigned_technician',
    from: 'accepted',
    to: 'accepted',
    guards: ['payments made another way than Stripe Checkout (cash, transfer); the event names the technician'],
    effect: (input) => {
      const paid = input.paymentStatus === 'paid';
      return {
        set: { paymentStatus: input.paymentStatus, paymentMethod: paid ? 'manual' : null, paymentReference: null, paidAt: paid ? new Date() : null },
        changes: { payment_status: input.paymentStatus, payment_method: paid ? 'manual' : null },
        note: paid ? 'payment paid (recorded by hand)' : `payment ${input.paymentStatus}`,
      };
    },
  },
  pay_online: {
    name: 'pay_online',
    endpoint: null,
    actor: 'payment_gateway',
    from: 'accepted',
    to: 'accepted',
    guards: ['a verified Stripe event whose amount and currency match the order’s total', 'payment_status is unpaid'],
    requiresUnpaid: true,
    effect: (input) => ({
      set: { paymentStatus: 'paid', paymentMethod: 'stripe', paymentReference: input.reference, paidAt: new Date() },
      changes: {
        payment_status: 'paid',
        payment_method: 'stripe',
        payment_reference: input.reference,
        amount_cents: input.amountCents,
        currency: input.currency,
      },
      note: 'payment paid (Stripe Checkout)',
    }),
  },
  online_payment_failed: {
    name: 'online_payment_failed',
    endpoint: null,
    actor: 'payment_gateway',
    from: 'accepted',
    to: 'accepted',
    guards: ['a verified Stripe event: the delayed payment failed, or the Checkout Session expired unpaid', 'payment_status is unpaid'],
    requiresUnpaid: true,
    effect: (input) => ({
      set: {},
      changes: { checkout_session_id: input.sessionId, outcome: input.outcome },
      note: input.outcome === 'failed' ? 'online payment failed (Stripe)' : 'checkout expired unpaid (Stripe)',
    }),
  },
  start_production: {
    name: 'start_production',
    endpoint: 'status',
    actor: 'assigned_technician',
    from: 'accepted',
    to: 'in_production',
    guards: ['payment_status is paid'],
    requiresPaid: true,
    effect: noChange,
  },
  ship: {
    name: 'ship',
    endpoint: 'status',
    actor: 'assigned_technician',
    from: 'in_production',
    to: 'shipped',
    guards: ['optional carrier and tracking_number (only here)'],
    exclusiveFields: { fields: ['carrier', 'tracking_number'], when: 'shipping' },
    effect: (input) => ({
      set: { carrier: input.carrier ?? null, trackingNumber: input.tracking_number ?? null },
      changes: { carrier: input.carrier ?? null, tracking_number: input.tracking_number ?? null },
      note: input.note ?? (input.tracking_number ? `tracking ${input.carrier ?? ''} ${input.tracking_number}`.replace(/\s+/g, ' ') : null),
    }),
  },
  deliver: {
    name: 'deliver',
    endpoint: 'status',
    actor: 'assigned_technician',
    from: 'shipped',
    to: 'delivered',
    guards: [],
    effect: noChange,
  },
  confirm_delivery: {
    name: 'confirm_delivery',
    endpoint: 'status',
    actor: 'owner',
    from: 'shipped',
    to: 'delivered',
    guards: ['the customer confirms receipt'],
    effect: noChange,
  },
};

export const MOVE_LIST: Move[] = Object.values(MOVES);

/** The moves that record a payment, whichever way it was made (what a payment notification listens for). */
export const PAYMENT_MOVES = ['record_payment', 'pay_online'] as const satisfies readonly MoveName[];

/** The role an actor kind acts in; the system and the payment gateway act in none. */
export const roleOf = (actor: Actor): Role | null =>
  actor === 'owner' ? 'customer' : actor === 'system' || actor === 'payment_gateway' ? null : 'nail_technician';

/** One requirement a move puts on the order's row: the SQL guard's condition and the answer when it does not hold. */
export interface Requirement {
  condition: Condition;
  refusal: (row: OrderRow) => AppError;
}

const wrongStatus = (move: Move) => (row: OrderRow) =>
  fail('INVALID_STATE', `An order that is ${row.status} cannot ${describe(move)}; that needs status ${move.from}.`, {
    current_status: row.status,
    requested_status: move.to,
  });

const describe = (move: Move) => (move.from === move.to ? `have its ${move.name.replace(/_/g, ' ')}` : `move to ${move.to}`);

const notFound = () => fail('ORDER_NOT_FOUND', 'No such order among the orders you can see.');
const ownOrder = () =>
  fail('OWN_ORDER', 'This is your own order as a customer: another technician has to take, review and produce it.');

/**
 * What `move` by `actorId` requires of the order's row, in the order the refusals are documented
 * (who first, then from where, then the guards). The repository's WHERE is these conditions; when it
 * matches nothing, the first one the current row fails says why.
 */
export function requirements(move: Move, actorId: string | null, input?: unknown): Requirement[] {
  const who: Requirement[] = [];
  switch (move.actor) {
    case 'owner':
      who.push({ condition: { column: 'customerId', op: 'eq', value: actorId! }, refusal: notFound });
      break;
    case 'assigned_technician':
      who.push(
        {
          condition: { column: 'technicianId', op: 'eq', value: actorId! },
          // An unassigned order is one every technician may see: it is simply not at this move's status.
          refusal: (row) =>
            row.technicianId === null
              ? wrongStatus(move)(row)
              : fail('NOT_ASSIGNED', 'This order is assigned to another technician; only they can see or change it.'),
        },
        { condition: { column: 'customerId', op: 'ne', value: actorId! }, refusal: ownOrder },
      );
      break;
    case 'any_technician':
    case 'system': {
      const technicianId = move.actor === 'system' ? (input as MoveInput['auto_assign']).technicianId : actorId!;
      who.push(
        { condition: { column: 'customerId', op: 'ne', value: technicianId }, refusal: ownOrder },
        {
          condition: { column: 'technicianId', op: 'null' },
          refusal: (row) => fail('ORDER_ALREADY_ASSIGNED', 'This order already has a technician.', { current_status: row.status }),
        },
      );
      break;
    }
    case 'payment_gateway':
      // Trusted by the webhook's signature, and the order found through the session this service created.
      break;
  }
  const where: Requirement[] = move.from ? [{ condition: { column: 'status', op: 'eq', value: move.from }, refusal: wrongStatus(move) }] : [];
  if (move.name === 'revise') {
    // Two revisions of the same rejection: only the first wins.
    const seen = (input as MoveInput['revise']).seenRevision;
    where.push({ condition: { column: 'revisionCount', op: 'eq', value: seen }, refusal: wrongStatus(move) });
  }
  if (move.requiresPaid) {
    where.push({
      condition: { column: 'paymentStatus', op: 'eq', value: 'paid' },
      refusal: (row) =>
        fail('PAYMENT_REQUIRED', 'Production cannot start before the order is paid. Record the payment first.', {
          current_status: row.status,
          payment_status: row.paymentStatus,
        }),
    });
  }
  if (move.requiresUnpaid) {
    where.push({
      condition: { column: 'paymentStatus', op: 'eq', value: 'unpaid' },
      refusal: (row) =>
        fail('ALREADY_PAID', `The order is already paid${row.paymentMethod ? ` (${row.paymentMethod})` : ''}.`, {
          current_status: row.status,
          payment_status: row.paymentStatus,
        }),
    });
  }
  return [...who, ...where];
}

export function holds(condition: Condition, row: OrderRow): boolean {
  const value = row[condition.column];
  switch (condition.op) {
    case 'eq':
      return value === condition.value;
    case 'ne':
      return value !== condition.value;
    case 'null':
      return value === null;
  }
}

/** Why `row` refuses the move: the first requirement it fails (undefined when it meets them all). */
export function refusalFor(requirements: Requirement[], row: OrderRow): AppError | undefined {
  return requirements.find((r) => !holds(r.condition, row))?.refusal(row);
}

/** The moves a route makes, for a caller in `role`. */
export const movesOf = (endpoint: Endpoint, role?: Role) =>
  MOVE_LIST.filter((m) => m.endpoint === endpoint && (role === undefined || roleOf(m.actor) === role));

/**
 * The body field checks the table states (exclusive fields, input the schema cannot express), before
 * anything is read or written.
 */
function checkInput<K extends MoveName>(move: Move<K>, input: MoveInput[K]): void {
  for (const other of MOVE_LIST) {
    if (other === (move as Move) || other.endpoint !== move.endpoint || !other.exclusiveFields) continue;
    const details = Object.fromEntries(
      other.exclusiveFields.fields
        .filter((f) => (input as Record<string, unknown>)[f] !== undefined)
        .map((f) => [f, `is only accepted when ${other.exclusiveFields!.when}`]),
    );
    if (Object.keys(details).length) {
      throw validationError(`${Object.keys(details).join(' and ')} go with ${other.exclusiveFields.when} (status "${other.to}").`, details);
    }
  }
  move.checkInput?.(input);
}

export type EventHandler = (event: OrderEvent, tx: Executor) => Promise<void> | void;
/** What a move tells people, decided before it runs (null: nothing); the move's own statement writes it. */
export type Teller = (event: Omit<OrderEvent, 'id' | 'at' | 'note'>) => Told | null;

export interface WorkflowDeps {
  db: Database;
  orders: OrdersRepository;
}

/**
 * Runs moves of the table against the database. Each move is one conditional statement that changes
 * the order and inserts its event, and what the move tells people (the teller's outbox event, `tellWith`);
 * handlers registered with `subscribe` (the gallery's lineage counts on payment) run inside the same
 * transaction with the typed event, and a handler that throws undoes the move.
 */
export function createWorkflow({ db, orders }: WorkflowDeps) {
  const handlers: { handler: EventHandler; kinds?: readonly MoveName[] }[] = [];
  let teller: Teller = () => null;
  let record: Notify | undefined;
  const listens = (kind: MoveName) => handlers.some((h) => !h.kinds || h.kinds.includes(kind));

  async function publish(event: OrderEvent, tx: Executor) {
    for (const { handler, kinds } of handlers) if (!kinds || kinds.includes(event.kind)) await handler(event, tx);
  }

  /** The move, its event and the handlers, all in `tx`; throws the refusal the row explains when it does not apply. */
  async function run<K extends MoveName>(tx: Executor | undefined, move: Move<K>, actorId: string | null, orderId: string, input: MoveInput[K]) {
    const required = requirements(move, actorId, input);
    const { set, changes, note } = move.effect(input, actorId);
    const told = teller({ orderId, kind: move.name, actorId, from: move.from, to: move.to, changes });
    const event = await orders.transition(
      orderId,
      required.map((r) => r.condition),
      move.from === move.to ? set : { ...set, status: move.to, statusChangedAt: new Date() },
      { kind: move.name, actorId, fromStatus: move.from, toStatus: move.to, note, changes, told },
      tx,
    );
    if (!event) {
      const row = await orders.findById(orderId, tx);
      if (!row) throw notFound();
      // Every requirement holds now: the order changed between the update and this read.
      throw refusalFor(required, row) ?? wrongStatus(move)(row);
    }
    const typed: OrderEvent<K> = { ...event, kind: move.name, changes, from: move.from, to: move.to };
    if (tx) await publish(typed, tx);
    return typed;
  }

  return {
    /**
     * Registers a handler for every event from now on (or only those of `kinds`); it runs inside the
     * transaction of the move. A move no handler listens to stays a single statement.
     */
    subscribe(handler: EventHandler, kinds?: readonly MoveName[]): void {
      handlers.push({ handler, kinds });
    },

    /**
     * Sets what each move tells people (the notifications module's outbox event). Unlike a handler it needs no
     * transaction: the move's one statement writes the event with the change. An order's creation, made by the
     * caller's own insert, records its event through the outbox (`notify`) in the caller's transaction.
     */
    tellWith(decide: Teller, notify: Notify): void {
      teller = decide;
      record = notify;
    },

    /**
     * Makes `name` on order `orderId` as `actorId` (null: the system). Pass `tx` when the caller's
     * transaction changes more than the order; without one, and without handlers, it is one statement.
     */
    async perform<K extends MoveName>(name: K, actorId: string | null, orderId: string, input: MoveInput[K], tx?: Executor): Promise<OrderEvent<K>> {
      const move: Move<K> = MOVES[name];
      checkInput(move, input);
      if (tx || !listens(name)) return run(tx, move, actorId, orderId, input);
      return db.transaction((t) => run(t, move, actorId, orderId, input));
    },

    /** The refusal `move` would meet on `row` as it was read (to refuse before an upload, say), else nothing. */
    precheck<K extends MoveName>(name: K, actorId: string | null, row: OrderRow, input: MoveInput[K]): void {
      const refusal = refusalFor(requirements(MOVES[name], actorId, input), row);
      if (refusal) throw refusal;
    },

    /** The creation event of a new order, written by the caller with the order, published in its transaction. */
    async created(event: OrderEvent<'submit'>, tx: Executor): Promise<void> {
      const told = teller(event);
      if (told) await record?.({ ...told, actorId: event.actorId, orderId: event.orderId }, tx);
      await publish(event, tx);
    },
  };
}

export type Workflow = ReturnType<typeof createWorkflow>;

// The refusals a move's requirements can give, in the order requirements() checks them.
const REFUSALS: Array<[code: ErrorCode, text: string, applies: (m: Move) => boolean]> = [
  ['ORDER_NOT_FOUND', '404 ORDER_NOT_FOUND (another customer’s order)', (m) => m.actor === 'owner' && m.from !== null],
  ['NOT_ASSIGNED', '403 NOT_ASSIGNED (another technician’s order)', (m) => m.actor === 'assigned_technician'],
  ['OWN_ORDER', '422 OWN_ORDER (acting as technician on your own customer order)', (m) => m.actor !== 'owner' && m.actor !== 'payment_gateway'],
  ['ORDER_ALREADY_ASSIGNED', '422 ORDER_ALREADY_ASSIGNED', (m) => m.actor === 'any_technician' || m.actor === 'system'],
  ['INVALID_STATE', '422 INVALID_STATE (`details.current_status`)', (m) => m.from !== null],
  ['PAYMENT_REQUIRED', '422 PAYMENT_REQUIRED', (m) => Boolean(m.requiresPaid)],
  ['ALREADY_PAID', '422 ALREADY_PAID', (m) => Boolean(m.requiresUnpaid)],
];

/**
 * The codes a caller of `endpoint` can be refused with by the table (the route's OpenAPI error enums). The
 * service's own moves only: a refused automatic assignment leaves the order submitted, it is not an answer.
 */
export const refusalCodes = (endpoint: Endpoint): ErrorCode[] => {
  const moves = movesOf(endpoint).filter((m) => m.actor !== 'system');
  return REFUSALS.filter(([, , applies]) => moves.some(applies)).map(([code]) => code);
};

/** A markdown table of a route's moves and their refusals, for its OpenAPI description: generated, so it cannot drift. */
export function describeMoves(endpoint: Endpoint): string {
  const who: Record<Actor, string> = {
    system: 'the service',
    owner: 'the order’s customer',
    any_technician: 'any technician (not on their own order)',
    assigned_technician: 'the assigned technician (not on their own order)',
    payment_gateway: 'Stripe (verified webhook)',
  };
  const moves = movesOf(endpoint);
  const rows = moves.map((m) => `| ${m.name} | ${m.from ?? '—'} → ${m.to} | ${who[m.actor]} | ${m.guards.join('; ') || '—'} |`);
  const refusals = REFUSALS.filter(([, , applies]) => moves.some(applies)).map(([, text]) => text);
  return [
    '',
    '',
    '| move | from → to | who | guards |',
    '|---|---|---|---|',
    ...rows,
    '',
    ...(refusals.length ? [`Refusals, in this order: ${refusals.join(', ')}.`] : []),
  ].join('\n');
}

import { createHash, randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../../config.js';
import { fail, serviceUnavailable } from '../../errors.js';
import type { UserRow, UsersRepository } from '../users/users.repository.js';
import type { LiveBus } from './bus.js';
import { type Backlog, type LiveItem, RESUME_MAX_ITEMS, RESUME_PAGE, sseEvent } from './live.domain.js';
import type { LiveRepository } from './live.repository.js';

const hash = (ticket: string) => createHash('sha256').update(ticket).digest('base64url');
/** 32 random bytes, base64url: what POST /stream/tickets hands out. */
export const TICKET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** Stream tickets: a bearer token traded for a short-lived, single-use string a browser can put in a URL. */
export function createTickets(deps: { live: LiveRepository; users: Pick<UsersRepository, 'findById'>; ttlS: number }) {
  return {
    async issue(user: UserRow): Promise<{ ticket: string; expires_at: string }> {
      const ticket = randomBytes(32).toString('base64url');
      const expiresAt = await deps.live.createTicket(hash(ticket), user.id, deps.ttlS);
      return { ticket, expires_at: expiresAt.toISOString() };
    },
    /** The ticket's user, once; undefined when it is malformed, unknown, expired or already used. */
    async redeem(ticket: string): Promise<UserRow | undefined> {
      if (!TICKET_PATTERN.test(ticket)) return undefined;
      const userId = await deps.live.redeemTicket(hash(ticket));
      return userId ? deps.users.findById(userId) : undefined;
    },
  };
}

export type Tickets = ReturnType<typeof createTickets>;

/** Where one stream writes; the route gives it the HTTP response. */
export interface StreamSink {
  write(chunk: string): void;
  /** Bytes written but not yet taken by the client. */
  readonly buffered: number;
  end(): void;
}

/** A client that falls this far behind is cut off; it reconnects and resumes from the store. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
/** Ids recently sent on one stream: an item published twice (at-least-once delivery) is sent once. */
const REMEMBERED_IDS = 512;

/**
 * One open stream: resumes from the backlog first while holding back live items that arrive meanwhile, then
 * sends both, each id at most once.
 */
export class StreamSession {
  lastId: string | null = null;
  closed = false;
  private readonly sent = new Set<string>();
  /** Live items held back while a resume is reading the backlog; null while none is. */
  private held: LiveItem[] | null = null;
  private resuming: Promise<void> | null = null;

  constructor(
    readonly userId: string,
    private readonly sink: StreamSink,
    private readonly backlog: Backlog,
    private readonly log: FastifyBaseLogger,
    private readonly onEnd: (session: StreamSession) => void,
  ) {}

  deliver(item: LiveItem): void {
    if (this.closed) return;
    if (this.held) this.held.push(item);
    else this.send(item);
  }

  private send(item: LiveItem): void {
    if (this.closed || this.sent.has(item.id)) return;
    this.sent.add(item.id);
    if (this.sent.size > REMEMBERED_IDS) this.sent.delete(this.sent.values().next().value!);
    this.lastId = item.id;
    this.sink.write(sseEvent(item));
    if (this.sink.buffered > MAX_BUFFERED_BYTES) {
      this.log.warn({ userId: this.userId }, 'live stream: client too slow; closing it so that it resumes');
      this.end();
    }
  }

  /** Sends what came after `afterId` (the client's Last-Event-ID, or the last id sent here after a bus outage). */
  resume(afterId: string): Promise<void> {
    if (this.resuming) return this.resuming;
    this.held ??= [];
    this.resuming = (async () => {
      try {
        let after = afterId;
        for (let total = 0; total < RESUME_MAX_ITEMS && !this.closed; ) {
          const page = await this.backlog(this.userId, after, RESUME_PAGE);
          for (const item of page) this.send(item);
          total += page.length;
          if (page.length < RESUME_PAGE) break;
          after = page[page.length - 1]!.id;
        }
      } catch (err) {
        this.log.error({ err, userId: this.userId }, 'live stream: could not read the backlog; closing the stream so that it retries');
        this.end();
      } finally {
        const held = this.held ?? [];
        this.held = null;
        this.resuming = null;
        for (const item of held) this.send(item);
      }
    })();
    return this.resuming;
  }

  heartbeat(): void {
    if (!this.closed) this.sink.write(': heartbeat\n\n');
  }

  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.onEnd(this);
    this.sink.end();
  }
}

/**
 * The open streams of this process, by person: receives every item from the bus and hands it to that person's
 * streams; limits how many are open; ends them all when the server closes.
 */
export function createLiveHub(deps: { bus: LiveBus; backlog: Backlog; limits: Pick<Config['stream'], 'maxPerUser' | 'maxPerProcess'>; log: FastifyBaseLogger }) {
  const { bus, limits, log } = deps;
  const byUser = new Map<string, Set<StreamSession>>();
  let open = 0;

  bus.onMessage((userId, item) => {
    const sessions = byUser.get(userId);
    if (sessions) for (const s of sessions) s.deliver(item);
  });
  // Whatever was published while the bus was away is in the store: each stream that has sent something looks
  // after its last id (one that has sent nothing yet has no position to resume from).
  bus.onReconnect(() => {
    for (const sessions of byUser.values()) for (const s of sessions) if (s.lastId) void s.resume(s.lastId);
  });

  const remove = (session: StreamSession) => {
    const sessions = byUser.get(session.userId);
    if (!sessions?.delete(session)) return;
    open -= 1;
    if (sessions.size === 0) byUser.delete(session.userId);
  };

  return {
    /** Receiving from the bus, from the first stream on (LiveBus.start). */
    start: () => bus.start(),
    /** Streams open on this process. */
    get size() {
      return open;
    },
    /** Registers a stream, or refuses with 429 / 503 before anything is written. */
    open(userId: string, sink: StreamSink): StreamSession {
      const sessions = byUser.get(userId);
      if ((sessions?.size ?? 0) >= limits.maxPerUser) {
        throw fail('TOO_MANY_STREAMS', `At most ${limits.maxPerUser} live streams can be open per person; close one (another tab or device) first.`);
      }
      if (open >= limits.maxPerProcess) {
        throw serviceUnavailable('STREAM_CAPACITY_REACHED', 'This server holds as many live streams as it can. Try again in a few seconds.', 5);
      }
      const session = new StreamSession(userId, sink, deps.backlog, log, remove);
      if (sessions) sessions.add(session);
      else byUser.set(userId, new Set([session]));
      open += 1;
      return session;
    },
    /** Ends every stream (server closing): clients reconnect, to another dyno, and resume. */
    endAll(): void {
      for (const sessions of [...byUser.values()]) for (const s of [...sessions]) s.end();
    },
  };
}

export type LiveHub = ReturnType<typeof createLiveHub>;

import { randomUUID } from 'node:crypto';
import type { PGlite } from '@electric-sql/pglite';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis, RedisOptions } from 'ioredis';
import pg from 'pg';
import type { Config } from '../../config.js';
import { type Database, type DatabaseHandle, sslModeFor } from '../../db/client.js';
import { sql } from '../../db/orm.js';
import type { LiveItem } from './live.domain.js';

/**
 * Carries live items to every web process, whichever one (or the worker) published them: Redis pub/sub when
 * REDIS_URL is set, PostgreSQL LISTEN/NOTIFY otherwise. One channel for everyone, each process keeping what its
 * own streams want: at this business's volume a few messages a second reach every dyno, and there is no per-user
 * subscription to lose on a reconnect.
 *
 * Delivery is best effort on purpose. What a person is told is stored (the notifications table) before it is
 * published, and a stream that missed something resumes from that store: by Last-Event-ID when the browser
 * reconnects, and by itself when this bus reconnects after the broker came back (onReconnect).
 */
export interface LiveBus {
  readonly kind: 'redis' | 'postgres' | 'pglite' | 'local';
  /** Sends `item` to `userId`'s streams on every process. Never rejects: a failure is logged (see above). */
  publish(userId: string, item: LiveItem): Promise<void>;
  /**
   * Starts receiving (once; later calls return the same promise). The web process calls it when its first stream
   * opens, so a process without streams holds no broker connection, and one that only publishes (the worker)
   * never calls it. Resolves after the first attempt: while the broker is away it keeps trying in the background.
   */
  start(): Promise<void>;
  onMessage(handler: (userId: string, item: LiveItem) => void): void;
  /** Called after the connection to the broker was lost and is back: items published meanwhile were not received. */
  onReconnect(handler: () => void): void;
  close(): Promise<void>;
}

interface Envelope {
  u: string;
  i: LiveItem;
}

export interface LiveBusOptions {
  config: Pick<Config, 'environment' | 'database' | 'stream'>;
  database: DatabaseHandle;
  log: FastifyBaseLogger;
}

/** Picks the bus for this configuration (see LiveBus). */
export async function createLiveBus(opts: LiveBusOptions): Promise<LiveBus> {
  const { config, database, log } = opts;
  if (config.stream.redisUrl) return redisBus(config.stream.redisUrl, config.stream.channel, log);
  // LISTEN holds a session: never through PgBouncer in transaction mode (DATABASE_CONNECTION_POOL_URL), always on the
  // direct DATABASE_URL. NOTIFY is an ordinary statement inside a transaction, so publishing may use the pooler.
  if (config.database.url && database.kind === 'postgres') return postgresBus(config, database.db, log);
  if (database.pglite) return pgliteBus(database.pglite, database.db, config.stream.channel, log);
  log.info('live bus: in this process only (no REDIS_URL and no direct DATABASE_URL)');
  return localBus();
}

const BACKOFF_MAX_MS = 5000;
const backoff = (attempt: number) => Math.min(200 * 2 ** Math.min(attempt, 5), BACKOFF_MAX_MS);

/** Handlers registered once, called for every message. */
function listeners() {
  const messages: Array<(userId: string, item: LiveItem) => void> = [];
  const reconnects: Array<() => void> = [];
  return {
    onMessage: (h: (userId: string, item: LiveItem) => void) => void messages.push(h),
    onReconnect: (h: () => void) => void reconnects.push(h),
    deliver(raw: string, log: FastifyBaseLogger) {
      let envelope: Envelope;
      try {
        envelope = JSON.parse(raw) as Envelope;
      } catch {
        log.warn('live bus: a message that is not JSON was dropped');
        return;
      }
      if (typeof envelope?.u !== 'string' || typeof envelope.i?.id !== 'string') return;
      for (const h of messages) h(envelope.u, envelope.i);
    },
    reconnected() {
      for (const h of reconnects) h();
    },
  };
}

function localBus(): LiveBus {
  const l = listeners();
  const silent = { warn() {} } as unknown as FastifyBaseLogger;
  return {
    kind: 'local',
    async publish(userId, item) {
      l.deliver(JSON.stringify({ u: userId, i: item } satisfies Envelope), silent);
    },
    async start() {},
    onMessage: l.onMessage,
    onReconnect: l.onReconnect,
    async close() {},
  };
}

// ------------------------------------------------------------------------------------------------------------
// PostgreSQL (and PGlite): NOTIFY payloads are limited to 8000 bytes. A larger message goes as numbered parts in
// one transaction, which PostgreSQL delivers together and in order; the listener puts them back together.

/** Bytes of one NOTIFY payload, with room for the part header under PostgreSQL's 8000. */
const NOTIFY_MAX_BYTES = 7900;
/** Characters per part: at most 3 UTF-8 bytes each (a surrogate pair is 4 bytes for 2), so a part stays under 7900. */
const PART_CHARS = 2600;
/** Past this a message is not sent at all: the stream resumes it from the store instead. */
const MESSAGE_MAX_BYTES = 256 * 1024;

/** The payloads that carry `message`: itself, or `#<id>:<index>:<count>:<text>` parts. */
export function notifyPayloads(message: string): string[] {
  if (Buffer.byteLength(message) <= NOTIFY_MAX_BYTES) return [message];
  const parts: string[] = [];
  for (let at = 0; at < message.length; ) {
    let end = Math.min(at + PART_CHARS, message.length);
    // Never split a surrogate pair.
    const last = message.charCodeAt(end - 1);
    if (end < message.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    parts.push(message.slice(at, end));
    at = end;
  }
  const id = randomUUID();
  return parts.map((text, i) => `#${id}:${i}:${parts.length}:${text}`);
}

/** Puts parted messages back together; whole messages pass straight through. */
export function reassembler(deliver: (message: string) => void) {
  const pending = new Map<string, { parts: string[]; got: number; at: number }>();
  return (payload: string) => {
    if (!payload.startsWith('#')) return deliver(payload);
    const match = /^#([0-9a-f-]{36}):(\d+):(\d+):/.exec(payload);
    if (!match) return;
    const [head, id, index, count] = match as unknown as [string, string, string, string];
    const now = Date.now();
    // Parts of one transaction arrive together: anything left this long is from a listener that joined mid-message.
    for (const [key, entry] of pending) if (now - entry.at > 30_000) pending.delete(key);
    let entry = pending.get(id);
    if (!entry) {
      entry = { parts: new Array<string>(Number(count)), got: 0, at: now };
      pending.set(id, entry);
    }
    if (entry.parts[Number(index)] === undefined) entry.got += 1;
    entry.parts[Number(index)] = payload.slice(head.length);
    if (entry.got === entry.parts.length) {
      pending.delete(id);
      deliver(entry.parts.join(''));
    }
  };
}

async function notify(db: Database, channel: string, userId: string, item: LiveItem, log: FastifyBaseLogger) {
  const message = JSON.stringify({ u: userId, i: item } satisfies Envelope);
  if (Buffer.byteLength(message) > MESSAGE_MAX_BYTES) {
    log.warn({ itemId: item.id, bytes: Buffer.byteLength(message) }, 'live bus: item too large to publish; streams resume it from the store');
    return;
  }
  const payloads = notifyPayloads(message);
  try {
    if (payloads.length === 1) {
      await db.execute(sql`select pg_notify(${channel}, ${payloads[0]})`);
    } else {
      await db.transaction(async (tx) => {
        for (const payload of payloads) await tx.execute(sql`select pg_notify(${channel}, ${payload})`);
      });
    }
  } catch (err) {
    log.warn({ err: { message: (err as Error).message }, itemId: item.id }, 'live bus: publishing failed; streams resume the item from the store');
  }
}

function pgliteBus(pglite: PGlite, db: Database, channel: string, log: FastifyBaseLogger): LiveBus {
  const l = listeners();
  const receive = reassembler((m) => l.deliver(m, log));
  let stop: (() => Promise<void>) | undefined;
  let started: Promise<void> | undefined;
  return {
    kind: 'pglite',
    publish: (userId, item) => notify(db, channel, userId, item, log),
    start() {
      started ??= pglite.listen(channel, receive).then((unlisten) => {
        stop = unlisten;
      });
      return started;
    },
    onMessage: l.onMessage,
    onReconnect: l.onReconnect,
    async close() {
      if (stop && !pglite.closed) await stop().catch(() => undefined);
      stop = undefined;
    },
  };
}

/** How often the listening connection is asked a question, so a connection dropped without a word is noticed. */
const PROBE_MS = 30_000;

function postgresBus(config: LiveBusOptions['config'], db: Database, log: FastifyBaseLogger): LiveBus {
  const l = listeners();
  const { channel } = config.stream;
  const receive = reassembler((m) => l.deliver(m, log));
  const url = new URL(config.database.url!);
  const ssl = sslModeFor(url.toString(), config, config.database.ssl);
  url.searchParams.delete('sslmode');

  let client: pg.Client | undefined;
  let closed = false;
  let started: Promise<void> | undefined;
  let down = false;
  let attempt = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let probe: NodeJS.Timeout | undefined;

  const lost = (c: pg.Client, err?: Error) => {
    if (client !== c) return; // already replaced
    client = undefined;
    clearInterval(probe);
    c.removeAllListeners('notification');
    c.end().catch(() => undefined);
    if (closed) return;
    if (!down) log.warn({ err: err ? { message: err.message } : undefined }, 'live bus (PostgreSQL LISTEN) lost its connection; reconnecting');
    down = true;
    schedule();
  };

  const schedule = () => {
    if (closed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, backoff(attempt++));
    retryTimer.unref();
  };

  const connect = async (): Promise<void> => {
    if (closed) return;
    const c = new pg.Client({
      connectionString: url.toString(),
      ssl: ssl === 'off' ? false : { rejectUnauthorized: ssl === 'verify' },
      application_name: 'kendalls-nails-api-live',
      connectionTimeoutMillis: config.database.connectionTimeoutMs,
      keepAlive: true,
    });
    c.on('error', (err) => lost(c, err));
    c.on('end', () => lost(c));
    c.on('notification', (msg) => {
      if (msg.channel === channel && msg.payload !== undefined) receive(msg.payload);
    });
    client = c;
    try {
      await c.connect();
      // The channel is an identifier (config.ts checks LIVE_CHANNEL), so it needs no quoting.
      await c.query(`LISTEN ${channel}`);
    } catch (err) {
      if (client === c) lost(c, err as Error);
      return;
    }
    if (closed) {
      await c.end().catch(() => undefined);
      return;
    }
    attempt = 0;
    probe = setInterval(() => {
      c.query('select 1').catch((err: Error) => lost(c, err));
    }, PROBE_MS);
    probe.unref();
    if (down) {
      log.info('live bus (PostgreSQL LISTEN) reconnected');
      down = false;
      l.reconnected();
    }
  };

  return {
    kind: 'postgres',
    publish: (userId, item) => notify(db, channel, userId, item, log),
    start() {
      started ??= connect();
      return started;
    },
    onMessage: l.onMessage,
    onReconnect: l.onReconnect,
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      clearInterval(probe);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}

// ------------------------------------------------------------------------------------------------------------
// Redis: a connection in subscriber mode can do nothing else, so publishing has its own.

async function redisBus(redisUrl: string, channel: string, log: FastifyBaseLogger): Promise<LiveBus> {
  // Loaded only when a Redis URL is set (as in plugins/rate-limit.ts).
  const { Redis } = await import('ioredis');
  const l = listeners();
  const common: RedisOptions = {
    connectTimeout: 2000,
    retryStrategy: (n) => backoff(n),
    // Heroku Redis presents a self-signed certificate on rediss://.
    ...(redisUrl.startsWith('rediss://') ? { tls: { rejectUnauthorized: false } } : {}),
  };
  // Publishing fails at once while Redis is down rather than queueing behind the outage.
  const publisher = new Redis(redisUrl, { ...common, enableOfflineQueue: false, commandTimeout: 2000, maxRetriesPerRequest: 1, connectionName: `${channel}_pub` });
  // The subscription waits out an outage (no retry limit) and is renewed by ioredis after every reconnect.
  const subscriber = new Redis(redisUrl, {
    ...common,
    autoResubscribe: true,
    maxRetriesPerRequest: null,
    connectionName: `${channel}_sub`,
    // Connects on the first SUBSCRIBE: a process that only publishes never opens it.
    lazyConnect: true,
  });
  let pubDown = false;
  publisher.on('error', (err: Error) => {
    if (!pubDown) log.warn({ err: { message: err.message } }, 'live bus (Redis) publisher unreachable');
    pubDown = true;
  });
  publisher.on('ready', () => {
    if (pubDown) log.info('live bus (Redis) publisher reachable again');
    pubDown = false;
  });

  let subDown = false;
  let closing = false;
  let everReady = false;
  let started: Promise<void> | undefined;
  subscriber.on('message', (ch: string, message: string) => {
    if (ch === channel) l.deliver(message, log);
  });
  subscriber.on('error', (err: Error) => {
    if (!subDown && !closing) log.warn({ err: { message: err.message } }, 'live bus (Redis) subscriber lost its connection; reconnecting');
    subDown = true;
  });
  subscriber.on('close', () => {
    if (closing) return;
    if (everReady && !subDown) log.warn('live bus (Redis) subscriber lost its connection; reconnecting');
    if (everReady) subDown = true;
  });
  // ioredis subscribes again on its own after a reconnect; 'ready' comes once that is under way.
  subscriber.on('ready', () => {
    if (subDown) {
      log.info('live bus (Redis) subscriber reconnected');
      subDown = false;
      // Give the re-subscription its round trip before streams look for what they missed.
      setTimeout(() => l.reconnected(), 50).unref();
    }
    everReady = true;
  });

  const quit = async (client: Redis) => {
    if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
    else client.disconnect();
  };

  return {
    kind: 'redis',
    async publish(userId, item) {
      try {
        await publisher.publish(channel, JSON.stringify({ u: userId, i: item } satisfies Envelope));
      } catch (err) {
        log.warn({ err: { message: (err as Error).message }, itemId: item.id }, 'live bus: publishing failed; streams resume the item from the store');
      }
    },
    start() {
      started ??= subscribe();
      return started;
    },
    onMessage: l.onMessage,
    onReconnect: l.onReconnect,
    async close() {
      closing = true;
      await Promise.all([quit(publisher), quit(subscriber)]);
    },
  };

  async function subscribe() {
    const subscribed = subscriber.subscribe(channel);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), 2000);
    });
    // The stream opens while Redis is away; the queued SUBSCRIBE runs once it answers.
    const result = await Promise.race([subscribed.then(() => 'ok' as const, () => 'failed' as const), timeout]);
    clearTimeout(timer);
    if (result !== 'ok') {
      log.warn('live bus (Redis) unreachable; subscribing when it answers');
      subDown = true;
    }
  }
}

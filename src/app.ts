import { readFileSync } from 'node:fs';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { DestinationStream } from 'pino';
import { createDevIssuer } from './auth/dev-issuer.js';
import { devIssuerRoutes } from './auth/dev.routes.js';
import { type JwksSource, type RemoteJwksOptions, createRemoteJwks, createStaticJwks } from './auth/jwks.js';
import { createVerifier } from './auth/verifier.js';
import { type Config, issuerUrl } from './config.js';
import { type DatabaseHandle, createDatabase, createPostgres } from './db/client.js';
import { explainDatabaseError } from './db/errors.js';
import { createReader, primaryReader } from './db/reader.js';
import { runMigrationsDirect } from './db/migrate.js';
import { ErrorBody } from './lib/envelope.js';
import { buildSerializer } from './lib/serializers.js';
import { buildValidator } from './lib/validators.js';
import { commentsRoutes } from './modules/comments/comments.routes.js';
import { type LiveBus, createLiveBus } from './modules/live/bus.js';
import type { Backlog } from './modules/live/live.domain.js';
import { createLiveRepository } from './modules/live/live.repository.js';
import { liveRoutes } from './modules/live/live.routes.js';
import { createLiveHub, createTickets } from './modules/live/live.service.js';
import { designsRoutes } from './modules/designs/designs.routes.js';
import { invitationsRoutes } from './modules/invitations/invitations.routes.js';
import { moderationRoutes } from './modules/moderation/moderation.routes.js';
import { ratingsRoutes } from './modules/ratings/ratings.routes.js';
import { messagesRoutes } from './modules/messages/messages.routes.js';
import { threadsRoutes } from './modules/threads/threads.routes.js';
import { ordersRoutes } from './modules/orders/orders.routes.js';
import { paymentsRoutes } from './modules/payments/payments.routes.js';
import type { StripeEndpoint } from './modules/payments/stripe.js';
import { usersRoutes } from './modules/users/users.routes.js';
import { webhooksRoutes } from './modules/webhooks/webhooks.routes.js';
import { UserSummarySchema } from './modules/users/users.schemas.js';
import authPlugin from './plugins/auth.js';
import corsPlugin from './plugins/cors.js';
import errorsPlugin, { clientErrorHandler, frameworkErrors } from './plugins/errors.js';
import handlerTimeoutPlugin from './plugins/handler-timeout.js';
import httpsOnlyPlugin from './plugins/https-only.js';
import healthPlugin, { type DependencyCheck } from './plugins/health.js';
import inputGuards from './plugins/input-guards.js';
import loadSheddingPlugin from './plugins/load-shedding.js';
import openapiPlugin from './plugins/openapi.js';
import rateLimitPlugin from './plugins/rate-limit.js';
import requestLogPlugin, { LOG_OPTIONS, lazyChildLogger, requestIdFor } from './plugins/request-log.js';
import securityHeadersPlugin from './plugins/security-headers.js';
import { filesRoutes } from './storage/files.routes.js';
import { createStorageCleanup } from './storage/cleanup.js';
import { createStorage, isLocal, storageCheck } from './storage/index.js';
import type { Storage } from './storage/storage.js';
import { type NotificationsWiring, type WebhooksSeams, notificationBacklog, wireDelivery, wireIdentity, wireNotifications, wireOrders, wireWebhooks, wireWorker } from './wiring.js';
import type { Channels } from './modules/notifications/notifications.domain.js';
import { notificationsRoutes } from './modules/notifications/notifications.routes.js';
import type { NotificationWorker } from './modules/notifications/notifications.worker.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The queue and, when WORKER_IN_PROCESS, the notification worker running in this process (tests stop and start it). */
    notifications: { wiring: NotificationsWiring; worker: NotificationWorker | null; upkeep: ReturnType<typeof wireDelivery>['upkeep'] | null };
  }
}

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface AppOverrides {
  /** An already-open database (tests clone a migrated template); the app will not close it. */
  database?: DatabaseHandle;
  /** Where log lines go (tests capture them); defaults to stdout. */
  logStream?: DestinationStream;
  /** HTTP client for the identity provider (tests point Auth0's endpoints at a local fake). */
  fetch?: typeof globalThis.fetch;
  /** Skip applying migrations at start-up (the database is known to be migrated). */
  skipMigrations?: boolean;
  /** Image store to use instead of the configured one. */
  storage?: Storage;
  /** JWKS cache timings (tests shorten the once-a-minute refetch on an unknown key). */
  jwks?: Pick<RemoteJwksOptions, 'cooldownMs' | 'maxAgeMs' | 'timeoutMs' | 'retryAfterFailureMs'>;
  /** Where the Stripe SDK sends its calls, and its timeout (tests point it at a local fake). */
  stripe?: Partial<StripeEndpoint>;
  /** Delivery hooks of the in-process notification worker (email, live stream, webhooks); in-app only when absent. */
  channels?: Channels;
  /** The webhooks service's name resolution and clock (tests check URLs against a fake DNS). */
  webhooks?: WebhooksSeams;
  /** What a resuming live stream reads (modules/live); the person's stored notifications when absent. */
  liveBacklog?: Backlog;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The live bus: `app.live.publish(userId, item)` reaches that person's streams on every web process. */
    live: Pick<LiveBus, 'publish' | 'kind'>;
  }
}

export type App = FastifyInstance<Server, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

function prettyTransport(config: Config) {
  if (config.environment !== 'development' || !process.stdout.isTTY) return undefined;
  try {
    import.meta.resolve('pino-pretty');
    return { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } };
  } catch {
    return undefined;
  }
}

/** Fastify's trustProxy for TRUST_PROXY: `hops` as proxy-addr counts them (the socket is hop 0). */
export function trustProxyOption(trust: Config['trustProxy']): false | string[] | ((address: string, hop: number) => boolean) {
  if (typeof trust !== 'number') return trust;
  return (_address: string, hop: number) => hop < trust;
}

/** Builds a ready Fastify instance for `config`; never listens (server.ts and tests decide that). */
export async function buildApp(config: Config, overrides: AppOverrides = {}): Promise<App> {
  const transport = overrides.logStream ? undefined : prettyTransport(config);
  const app = Fastify({
    logger: {
      level: config.logLevel,
      ...LOG_OPTIONS,
      ...(overrides.logStream ? { stream: overrides.logStream } : {}),
      ...(transport ? { transport } : {}),
    },
    genReqId: requestIdFor,
    childLoggerFactory: lazyChildLogger,
    // request-log.ts writes one line per request instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // TRUST_PROXY (config.ts): X-Forwarded-For/-Proto are believed only from the configured proxies, so a client
    // cannot pick its own request.ip (rate-limit key, logs) or request.protocol (HSTS, HTTPS only). A hop count is
    // proxy-addr's meaning of one (trust that many hops from the socket inwards), given as a function: since 5.12
    // Fastify turns a bare number into "trust nothing".
    trustProxy: trustProxyOption(config.trustProxy),
    bodyLimit: 100 * 1024,
    // Under Heroku's 30 s router limit: the whole request must arrive (requestTimeout), the socket must not
    // sit silent mid-request (connectionTimeout), and the route must answer (plugins/handler-timeout.ts: 503 in
    // the envelope). Not Fastify's own handlerTimeout: the live stream must stay open past it, and Fastify takes
    // no per-route opt-out (a route's handlerTimeout must be a positive integer) (bench/README.md, "Stock pieces").
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.requestTimeoutMs,
    // Longer than the router's 90 s keep-alive idle timeout, so the router, not Node, closes idle
    // connections and never sends a request down one Node is closing (Heroku's own Node guidance: 95 s).
    keepAliveTimeout: 95_000,
    // plugins/load-shedding.ts refuses requests that arrive while closing, in the envelope.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    frameworkErrors,
    clientErrorHandler,
    // JSON bodies strict, text (query, params, headers) coerced: lib/validators.ts. Each distinct response schema built once: lib/serializers.ts.
    schemaController: { compilersFactory: { buildValidator, buildSerializer } },
    ajv: {
      // discriminator: a union body (review's accept | reject) is checked against the branch its tag names only.
      // coerceTypes applies to text (query, params, headers) only; bodies are never coerced (lib/validators.ts).
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: true, discriminator: true },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  // JSON everywhere except uploads (SPEC §6): Fastify's default text/plain parser would hand a string to
  // routes whose schemas are declared per content type (JSON or multipart), skipping their validation.
  app.removeContentTypeParser('text/plain');

  const ownsDatabase = !overrides.database;
  const database = overrides.database ?? (await createDatabase(config, app.log));
  // Stopped before the database closes, in this order: the worker, then the queue (both use the database).
  const beforeDatabaseCloses: Array<() => Promise<void>> = [];
  app.addHook('onClose', async () => {
    for (const stop of beforeDatabaseCloses) await stop().catch((err: unknown) => app.log.error({ err }, 'error while stopping the notification worker'));
    if (ownsDatabase) await database.close();
  });
  if (config.environment === 'development' && !overrides.skipMigrations) {
    // The queue's schema is the worker's: migrated here only when it runs in this process (see wireNotifications).
    await runMigrationsDirect(config, database, { queue: config.worker.inProcess });
  } else if (ownsDatabase) {
    // Deployed processes connect lazily: try once now, so a TLS mismatch (DATABASE_SSL) is in the first log lines
    // rather than in the first request's. The server starts either way; health reports the database until it answers.
    database.ping().catch((err: unknown) => {
      const hint = explainDatabaseError(err);
      app.log.error({ err: { message: err instanceof Error ? err.message : String(err) }, hint }, hint ? `database: ${hint}` : 'database did not answer at start-up');
    });
  }

  const issuer = issuerUrl(config);
  const fetchImpl = overrides.fetch ?? globalThis.fetch;
  let jwks: JwksSource;
  const devIssuer = config.devIssuer
    ? await createDevIssuer({ dataDir: config.dataDir, issuer, audience: config.auth0.audience, roleClaim: config.auth0.roleClaim })
    : undefined;
  if (devIssuer) {
    jwks = createStaticJwks(devIssuer.jwks);
  } else {
    jwks = createRemoteJwks({ url: `${issuer}.well-known/jwks.json`, fetch: fetchImpl, ...overrides.jwks });
  }
  const verifier = createVerifier({ issuer, audience: config.auth0.audience, roleClaim: config.auth0.roleClaim, jwks });

  const db = database.db;
  // Recording an event is one outbox insert; only the worker uses the job queue. When it runs in this process, the
  // queue starts before the first request (on PGlite it has one session, which a later start-up could wait for).
  const notifications = wireNotifications(config, database, { log: app.log, supervise: config.worker.inProcess });
  if (config.worker.inProcess) await notifications.ready();
  const identity = wireIdentity(config, db, { log: app.log, fetch: fetchImpl, notify: notifications.notify });

  const storage = overrides.storage ?? (await createStorage(config));
  const cleanup = createStorageCleanup({ db, storage, log: app.log, intervalMs: config.storageCleanupIntervalMs });
  cleanup.start();
  app.addHook('onClose', () => cleanup.stop());
  // A follower (DATABASE_READ_URL) for anonymous gallery and comment reads; the primary answers when it is down or behind.
  const reader = config.database.readUrl
    ? createReader(db, createPostgres(config, app.log, config.database.readUrl, { application: 'kendalls-nails-api-read' }), {
        maxLagS: config.database.readMaxLagS,
        log: app.log,
      })
    : primaryReader(db);
  app.addHook('onClose', () => reader.close());
  const services = wireOrders(config, db, {
    storage,
    cleanup,
    users: identity.usersRepository,
    reader,
    log: app.log,
    stripeEndpoint: overrides.stripe,
    notify: notifications.notify,
  });
  // The live stream (GET /api/v1/stream): tickets in the database, the bus between processes, this process's streams.
  const tickets = createTickets({ live: createLiveRepository(db), users: identity.usersRepository, ttlS: config.stream.ticketTtlS });
  const liveBus = await createLiveBus({ config, database, log: app.log });
  const liveHub = createLiveHub({ bus: liveBus, backlog: overrides.liveBacklog ?? notificationBacklog(notifications), limits: config.stream, log: app.log });
  app.addHook('onClose', () => liveBus.close());
  app.decorate('live', { kind: liveBus.kind, publish: (userId: string, item: Parameters<LiveBus['publish']>[1]) => liveBus.publish(userId, item) });
  const webhooks = wireWebhooks(config, db, { log: app.log, notify: notifications.notify, ...overrides.webhooks });

  // The notification worker, in this process in development (WORKER_IN_PROCESS); deployed, the worker dyno runs it.
  const delivery = config.worker.inProcess ? wireDelivery(config, db, { live: liveBus, webhooks, notifications, orders: services, identity, log: app.log }) : null;
  const worker = delivery
    ? wireWorker(config, db, { notifications, identity, orders: services, channels: overrides.channels ?? delivery.channels, log: app.log })
    : null;
  if (worker) await worker.start();
  delivery?.start();
  beforeDatabaseCloses.push(
    async () => worker?.stop(),
    async () => delivery?.stop(),
    () => notifications.stop(config.shutdownTimeoutMs),
  );
  app.decorate('notifications', { wiring: notifications, worker, upkeep: delivery?.upkeep ?? null });

  const checks: DependencyCheck[] = [
    { name: 'database', run: () => database.ping() },
    storageCheck(storage),
    { name: 'identity', run: (signal) => jwks.probe(signal) },
  ];

  app.addSchema(ErrorBody);
  app.addSchema(UserSummarySchema);
  await app.register(errorsPlugin);
  await app.register(handlerTimeoutPlugin, { timeoutMs: config.requestTimeoutMs });
  await app.register(inputGuards);
  await app.register(requestLogPlugin);
  // Edge protection, before the docs and the auth hook (README "Edge protection"): CORS first so that
  // every answer below, 429 and 503 included, is readable by the front end; the limiter keys on the
  // verified token itself, ahead of auth's database lookup.
  await app.register(corsPlugin, { origins: config.corsAllowedOrigins });
  await app.register(securityHeadersPlugin);
  if (config.environment !== 'development') await app.register(httpsOnlyPlugin, { publicUrl: config.publicUrl });
  await app.register(loadSheddingPlugin, { limits: config.loadShedding, pool: database.pool });
  if (config.rateLimit.enabled) await app.register(rateLimitPlugin, { settings: config.rateLimit, verifier });
  await app.register(openapiPlugin, { version: VERSION, serverUrl: config.publicUrl, deployed: config.environment !== 'development' });
  await app.register(authPlugin, { verifier, users: identity.usersRepository, tickets });
  await app.register(healthPlugin, {
    checks,
    version: VERSION,
    stripe: services.payments.configured ? 'configured' : 'not_configured',
    follower: config.database.readUrl ? () => reader.state() : undefined,
  });
  if (devIssuer) await app.register(devIssuerRoutes, { issuer: devIssuer });
  await app.register(usersRoutes, { users: identity.users, unreadNotifications: notifications.notifications.unreadCount });
  await app.register(notificationsRoutes, { notifications: notifications.notifications });
  await app.register(invitationsRoutes, { invitations: identity.invitations });
  await app.register(ordersRoutes, { orders: services.orders, maxUploadBytes: config.maxUploadSizeMb * 1024 * 1024 });
  await app.register(paymentsRoutes, { payments: services.payments });
  await app.register(messagesRoutes, { messages: services.messages });
  await app.register(threadsRoutes, { threads: services.threads });
  await app.register(designsRoutes, { designs: services.designs });
  await app.register(commentsRoutes, { comments: services.comments });
  await app.register(moderationRoutes, { moderation: services.moderation });
  await app.register(ratingsRoutes, { ratings: services.ratings });
  await app.register(liveRoutes, { hub: liveHub, tickets, settings: config.stream });
  await app.register(webhooksRoutes, { webhooks });
  if (isLocal(storage)) await app.register(filesRoutes, { storage });

  await app.ready();
  return app;
}

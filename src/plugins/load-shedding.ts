import underPressure, { TYPE_EVENT_LOOP_DELAY } from '@fastify/under-pressure';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import { serviceUnavailable } from '../errors.js';
import { documentErrors } from '../lib/envelope.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: answered even under pressure (health checks, so monitoring sees the process). */
    loadShedding?: false;
  }
}

export interface LoadSheddingOptions {
  limits: Config['loadShedding'];
  /** The PostgreSQL pool (absent on PGlite): requests queued for a connection beyond the limit mean overload. */
  pool?: { readonly waitingCount: number };
}

const RETRY_AFTER_S = 5;
const MB = 1024 * 1024;
/** At most one log line per this window while shedding, with how many requests were refused. */
const LOG_EVERY_MS = 10_000;

/**
 * @fastify/under-pressure: when the event loop lags, memory runs out or the database pool has a queue,
 * answer 503 SERVICE_UNAVAILABLE with Retry-After at once instead of letting requests queue until
 * Heroku's router gives up at 30 s (H12). Measurements are sampled every `sampleIntervalMs`; the pool
 * queue is checked on the same period.
 */
async function loadSheddingPlugin(app: FastifyInstance, opts: LoadSheddingOptions) {
  const { limits, pool } = opts;
  let shed = 0;
  let loggedAt = 0;
  // Building the app (compiling every route's schemas) blocks the loop once, and the first samples would
  // report that as load; event-loop delay counts only from two sample periods after start-up.
  let measuredFrom = Infinity;
  app.addHook('onReady', async () => {
    measuredFrom = Date.now() + 2 * limits.sampleIntervalMs;
  });

  app.addHook('onRoute', (route) => {
    if (route.config?.loadShedding !== false) documentErrors(route, 503);
  });

  // While the server closes (SIGTERM), a new request is refused at once like shed load, in the API's envelope:
  // Fastify's own return503OnClosing writes a bare JSON body outside it (app.ts turns that off). Requests already
  // in flight finish; health keeps answering for whoever is watching.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', (request, reply, done) => {
    if (!closing || request.routeOptions.config?.loadShedding === false) return done();
    reply.header('connection', 'close');
    done(serviceUnavailable('SERVICE_UNAVAILABLE', 'The server is restarting. Try again in a few seconds.', RETRY_AFTER_S));
  });

  await app.register(underPressure, {
    sampleInterval: limits.sampleIntervalMs,
    maxEventLoopDelay: limits.maxEventLoopDelayMs,
    maxHeapUsedBytes: limits.maxHeapUsedMb * MB,
    maxRssBytes: limits.maxRssMb * MB,
    ...(pool && limits.maxDbWaiting > 0
      ? { healthCheck: async () => pool.waitingCount <= limits.maxDbWaiting, healthCheckInterval: limits.sampleIntervalMs }
      : {}),
    pressureHandler: async (request: FastifyRequest, _reply, type, value) => {
      if (request.routeOptions.config.loadShedding === false) return;
      if (type === TYPE_EVENT_LOOP_DELAY && Date.now() < measuredFrom) return;
      shed += 1;
      const now = Date.now();
      if (now - loggedAt >= LOG_EVERY_MS) {
        request.log.warn({ type, value, poolWaiting: pool?.waitingCount, shed }, 'under pressure: shedding load');
        loggedAt = now;
        shed = 0;
      }
      throw serviceUnavailable('SERVICE_UNAVAILABLE', 'The service is overloaded. Try again in a few seconds.', RETRY_AFTER_S);
    },
  });
}

export default fp(loadSheddingPlugin, { name: 'load-shedding' });

import type { FastifyInstance, FastifyReply } from 'fastify';
import { errorCodes } from 'fastify';
import fp from 'fastify-plugin';

export interface HandlerTimeoutOptions {
  /** A request still unanswered this long after it arrived gets 503 (errors.ts maps FST_ERR_HANDLER_TIMEOUT). */
  timeoutMs: number;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: the route answers for as long as it needs (the live stream); nothing else may opt out. */
    handlerTimeout?: false;
  }
  interface FastifyReply {
    /** This request's place in the handler-timeout list while it is in flight. */
    inFlight: InFlight | null;
  }
}

/** A doubly linked list entry: insertion and removal without hashing the reply (a Map/Set keyed on it was measurable). */
interface InFlight {
  reply: FastifyReply;
  startedAt: number;
  prev: InFlight | null;
  next: InFlight | null;
}

/**
 * Kept beside Fastify's own `handlerTimeout` for function, not speed: swapped in, Fastify's option measured level
 * on bench figure 1 (pooled ratio ≈ 1.0, CPU within 4 %: bench/README.md "Stock pieces"), but the live stream
 * must outlive the limit and Fastify offers no per-route opt-out (`config.handlerTimeout: false` here).
 * Fastify's option makes an AbortController, a timer and a 'close' listener per request; here one interval sweeps the requests in flight instead,
 * kept in arrival order, and a request is answered at most one sweep (a twentieth of the timeout, at most
 * 500 ms) after its deadline, so even the largest REQUEST_TIMEOUT_MS (29 s) answers before Heroku's
 * router gives up at 30 s. No route reads request.signal (the one thing this does not provide).
 */
async function handlerTimeoutPlugin(app: FastifyInstance, opts: HandlerTimeoutOptions) {
  const { timeoutMs } = opts;
  // Oldest first; new requests are appended at the tail.
  let head: InFlight | null = null;
  let tail: InFlight | null = null;
  const remove = (entry: InFlight) => {
    if (entry.prev) entry.prev.next = entry.next;
    else head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else tail = entry.prev;
    entry.reply.inFlight = null;
  };

  app.decorateReply('inFlight', null);
  app.addHook('onRequest', (_request, reply, done) => {
    const entry: InFlight = { reply, startedAt: performance.now(), prev: tail, next: null };
    if (tail) tail.next = entry;
    else head = entry;
    tail = entry;
    reply.inFlight = entry;
    done();
  });
  app.addHook('onResponse', (_request, reply, done) => {
    if (reply.inFlight) remove(reply.inFlight);
    done();
  });

  const sweep = () => {
    const now = performance.now();
    for (let entry = head; entry; ) {
      const { reply, next } = entry;
      // Answered, or the client is gone (onResponse does not run for an aborted request): nothing to do. A hijacked
      // reply (the live stream) counts as answered. The route's opt-out is read here, on the rare late path only:
      // request.routeOptions builds a new object on every access.
      if (reply.sent || reply.raw.destroyed) {
        remove(entry);
      } else if (now - entry.startedAt < timeoutMs) {
        // Every later entry arrived later still.
        break;
      } else if (reply.request.routeOptions.config.handlerTimeout === false) {
        remove(entry);
      } else {
        remove(entry);
        const err = new errorCodes.FST_ERR_HANDLER_TIMEOUT(timeoutMs, reply.request.routeOptions.url);
        if (reply.raw.headersSent) {
          // A response already streaming cannot turn into a 503: cut it, as Fastify's own timeout does.
          reply.raw.destroy(err);
        } else {
          reply.send(err);
        }
      }
      entry = next;
    }
  };
  const timer = setInterval(sweep, Math.max(10, Math.min(500, Math.floor(timeoutMs / 20))));
  timer.unref();
  app.addHook('onClose', (_app, done) => {
    clearInterval(timer);
    done();
  });
}

export default fp(handlerTimeoutPlugin, { name: 'handler-timeout' });

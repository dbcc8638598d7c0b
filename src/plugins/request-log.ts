import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{8,200}$/;

/** Heroku's router sets X-Request-ID; keep it when well-formed so logs join up across the stack. */
export function requestIdFor(req: IncomingMessage): string {
  const header = req.headers['x-request-id'];
  const value = Array.isArray(header) ? header[0] : header;
  return value && VALID_REQUEST_ID.test(value) ? value : randomUUID();
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/**
 * Fastify's childLoggerFactory: request.log is made only when something is logged. pino otherwise builds
 * a child per request (bindings serialised, redaction set up) that at LOG_LEVEL=warn is never used, which
 * was about a tenth of the CPU of a request that does little else (GET /health/live).
 */
export function lazyChildLogger(logger: FastifyBaseLogger, bindings: object, options: object): FastifyBaseLogger {
  let child: FastifyBaseLogger | undefined;
  const real = () => (child ??= logger.child(bindings, options));
  const enabled = (level: string) => (logger as unknown as { isLevelEnabled(level: string): boolean }).isLevelEnabled(level);
  const lazy = {
    get level() {
      return child?.level ?? logger.level;
    },
    set level(level: string) {
      real().level = level;
    },
    silent: () => undefined,
    child: (b: object, o?: object) => real().child(b, o),
  } as unknown as Record<string, unknown>;
  for (const level of LEVELS) {
    lazy[level] = (...args: unknown[]) => {
      if (enabled(level)) (real()[level] as (...a: unknown[]) => void)(...args);
    };
  }
  return lazy as unknown as FastifyBaseLogger;
}

/** Secrets that must never reach a log line, whatever logs the request. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.client_secret',
  '*.clientSecret',
  '*.token',
  '*.access_token',
];

async function requestLogPlugin(app: FastifyInstance) {
  // Callback hooks, not async ones: they run on every request, and a promise per hook is measurable there.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  // One line per request; the query string is left out because clients sometimes put secrets there.
  // Below `info` (LOG_LEVEL=warn in production) only failures are logged, so only they build a line.
  const infoLogged = ['trace', 'debug', 'info'].includes(app.log.level);
  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    if (status >= 500 || infoLogged) {
      const line = {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        path: request.url.split('?')[0],
        status,
        duration_ms: Math.round(reply.elapsedTime * 100) / 100,
      };
      if (status >= 500) request.log.error(line, 'request failed');
      else request.log.info(line, 'request completed');
    }
    done();
  });
}

export default fp(requestLogPlugin, { name: 'request-log' });

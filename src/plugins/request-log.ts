import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type SerializedError, stdSerializers } from 'pino';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{8,200}$/;

/** Heroku's router sets X-Request-ID; keep it when well-formed so logs join up across the stack. */
export function requestIdFor(req: IncomingMessage): string {
  const header = req.headers['x-request-id'];
  const value = Array.isArray(header) ? header[0] : header;
  return value && VALID_REQUEST_ID.test(value) ? value : randomUUID();
}

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type Pino = FastifyBaseLogger & { isLevelEnabled(level: string): boolean };

/**
 * request.log, made real only when something is logged. pino otherwise builds a child per request
 * (bindings serialised, redaction set up) that at LOG_LEVEL=warn is never used, which was about a tenth
 * of the CPU of a request that does little else (GET /health/live). A class rather than an object
 * literal with a closure per level: one small allocation per request, the methods shared on the prototype.
 */
class LazyLogger {
  private real: Pino | undefined;
  constructor(
    private readonly parent: Pino,
    private readonly bindings: object,
    private readonly options: object,
  ) {}

  private made(): Pino {
    return (this.real ??= this.parent.child(this.bindings, this.options) as Pino);
  }

  private write(level: Level, args: unknown[]): void {
    if ((this.real ?? this.parent).isLevelEnabled(level)) (this.made()[level] as (...a: unknown[]) => void)(...args);
  }

  get level(): string {
    return (this.real ?? this.parent).level;
  }
  set level(level: string) {
    this.made().level = level;
  }
  child(bindings: object, options?: object): FastifyBaseLogger {
    return this.made().child(bindings, options);
  }
  silent(): void {}
  fatal(...args: unknown[]): void {
    this.write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.write('error', args);
  }
  warn(...args: unknown[]): void {
    this.write('warn', args);
  }
  info(...args: unknown[]): void {
    this.write('info', args);
  }
  debug(...args: unknown[]): void {
    this.write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.write('trace', args);
  }
}

/** Fastify's childLoggerFactory: see LazyLogger. */
export function lazyChildLogger(logger: FastifyBaseLogger, bindings: object, options: object): FastifyBaseLogger {
  return new LazyLogger(logger as Pino, bindings, options) as unknown as FastifyBaseLogger;
}

/** Secrets that must never reach a log line, whatever logs the request. */
const REDACT_PATHS = [
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

/**
 * A failed query's error (drizzle's DrizzleQueryError) carries its values: a message's text, a name, an address.
 * The log keeps the statement and how many values it had, never the values. (PostgreSQL's own message, in
 * `caused by`, may still quote a value it could not read as its type: kept, it is what explains the failure.)
 */
function withoutQueryValues(err: Error): SerializedError {
  const params = (err as { params?: unknown }).params;
  // Anything that is not an Error (a logged `{ message }`) comes back from pino's serializer as it went in.
  const out: SerializedError = { ...stdSerializers.err(err) };
  const hidden = `\nparams: [${Array.isArray(params) ? params.length : 'its'} values not logged]`;
  if (Array.isArray(params)) {
    // DrizzleQueryError's message is `Failed query: ${query}\nparams: ${params}`, and its stack repeats it.
    const shown = `\nparams: ${params.join(',')}`;
    for (const key of ['message', 'stack'] as const) if (typeof out[key] === 'string') out[key] = out[key].replaceAll(shown, hidden);
    delete out.params;
  } else if (typeof out.message === 'string' && out.message.startsWith('Failed query: ')) {
    // Call sites that log only `err.message` (the worker's retries) keep the statement.
    out.message = out.message.replace(/\nparams: [\s\S]*$/, hidden);
  }
  return out;
}

/** pino options every process's logger shares: secrets redacted, query values never written. */
export const LOG_OPTIONS = {
  redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  serializers: { err: withoutQueryValues },
};

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
        // The socket address, or what a trusted proxy (TRUST_PROXY) says the client is; never a client's own claim.
        ip: request.ip,
        duration_ms: Math.round(reply.elapsedTime * 100) / 100,
      };
      if (status >= 500) request.log.error(line, 'request failed');
      else request.log.info(line, 'request completed');
    }
    done();
  });
}

export default fp(requestLogPlugin, { name: 'request-log' });

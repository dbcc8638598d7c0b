import type {} from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { Type } from 'typebox';
import type { FollowerState } from '../db/reader.js';
import type {} from './load-shedding.js';

export type CheckName = 'database' | 'storage' | 'identity';
export interface DependencyCheck {
  name: CheckName;
  /** Resolves when the dependency answers; rejects with a short reason otherwise. */
  run(signal: AbortSignal): Promise<void>;
}

interface CheckResult {
  status: 'up' | 'down';
  latency_ms: number;
  error?: string;
}

export interface HealthOptions {
  checks: DependencyCheck[];
  version: string;
  timeoutMs?: number;
  cacheMs?: number;
  /** Whether online payment is set up; reported, not probed (Stripe is not needed by every request). */
  stripe: 'configured' | 'not_configured';
  /** The follower database's state (DATABASE_READ_URL); informational: the primary stands in for it. */
  follower?: () => Promise<FollowerState | undefined>;
}

const CheckSchema = Type.Object({
  status: Type.Union([Type.Literal('up'), Type.Literal('down')]),
  latency_ms: Type.Number(),
  error: Type.Optional(Type.String()),
});
export const HealthSchema = Type.Object(
  {
    status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
    checks: Type.Record(Type.String(), CheckSchema),
    version: Type.String(),
    uptime_s: Type.Number(),
    stripe: Type.Union([Type.Literal('configured'), Type.Literal('not_configured')], {
      description: 'Online payment (Stripe Checkout) is set up; not probed',
    }),
    follower: Type.Optional(
      Type.Object(
        {
          status: Type.Union([Type.Literal('up'), Type.Literal('lagging'), Type.Literal('down')]),
          lag_s: Type.Union([Type.Number(), Type.Null()]),
          max_lag_s: Type.Number(),
        },
        { description: 'Only with DATABASE_READ_URL. Not lagging or down: anonymous gallery reads use the primary meanwhile.' },
      ),
    ),
  },
  { $id: 'Health', title: 'Health' },
);

async function runCheck(check: DependencyCheck, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check.run(controller.signal),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          controller.abort();
          reject(new Error(`no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]);
    return { status: 'up', latency_ms: Math.round(performance.now() - started) };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    // Only the first line: driver messages can be long, and URLs in them may carry credentials.
    const error = reason.split('\n')[0]!.replace(/\/\/[^@/\s]+@/g, '//***@').slice(0, 200);
    return { status: 'down', latency_ms: Math.round(performance.now() - started), error };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Dependency probes run at most once per cache window however often the endpoint is polled, and
 * concurrent callers share one probe, so health stays cheap under a load balancer's polling.
 */
async function healthPlugin(app: FastifyInstance, opts: HealthOptions) {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const cacheMs = opts.cacheMs ?? 3000;
  const startedAt = Date.now();
  let cached: { at: number; results: Record<string, CheckResult> } | undefined;
  let inFlight: Promise<Record<string, CheckResult>> | undefined;

  const probe = async () => {
    const entries = await Promise.all(opts.checks.map(async (c) => [c.name, await runCheck(c, timeoutMs)] as const));
    return Object.fromEntries(entries);
  };
  const results = async () => {
    if (cached && Date.now() - cached.at < cacheMs) return cached.results;
    inFlight ??= probe().finally(() => (inFlight = undefined));
    const fresh = await inFlight;
    cached = { at: Date.now(), results: fresh };
    return fresh;
  };

  app.addSchema(HealthSchema);
  const schema = {
    tags: ['health'],
    operationId: 'getHealth',
    summary: 'Liveness and dependency checks',
    description:
      'Each dependency (database, storage, identity provider) is probed with a 2 s timeout; results are cached for 3 s. 200 when all are up, 503 naming the failing checks otherwise.',
    response: {
      200: Type.Object({ success: Type.Literal(true), data: Type.Ref('Health') }),
      503: Type.Object({
        success: Type.Literal(false),
        // Absent when the request itself failed (it ran past REQUEST_TIMEOUT_MS, or the process is closing).
        data: Type.Optional(Type.Ref('Health')),
        error: Type.Object({ code: Type.String(), message: Type.String() }),
      }),
    },
  };
  const handler = async (_req: unknown, reply: FastifyReply) => {
    const [checks, follower] = await Promise.all([results(), opts.follower?.()]);
    const down = Object.entries(checks).filter(([, r]) => r.status === 'down').map(([name]) => name);
    const data = {
      status: down.length ? ('degraded' as const) : ('ok' as const),
      checks,
      version: opts.version,
      stripe: opts.stripe,
      uptime_s: Math.round((Date.now() - startedAt) / 1000),
      ...(follower ? { follower } : {}),
    };
    if (down.length === 0) return reply.send({ success: true, data });
    reply.header('retry-after', '5');
    return reply.code(503).send({
      success: false,
      data,
      error: { code: 'DEPENDENCY_UNAVAILABLE', message: `Unavailable: ${down.join(', ')}` },
    });
  };
  const config = { access: 'public', rateLimit: false, loadShedding: false, errors: ['DEPENDENCY_UNAVAILABLE', 'SERVICE_UNAVAILABLE'] } as const;
  app.get('/api/v1/health', { schema, config }, handler);
  app.get('/health', { schema: { ...schema, hide: true }, config }, handler);

  // Liveness only: no dependency is touched, for the router and for measuring framework overhead.
  app.get(
    '/api/v1/health/live',
    {
      schema: {
        tags: ['health'],
        operationId: 'getLiveness',
        summary: 'Liveness only (process up)',
        description: 'Answers 200 while the process runs; touches no dependency (for the router and uptime checks).',
        response: { 200: Type.Object({ success: Type.Literal(true), data: Type.Object({ status: Type.Literal('ok') }) }) },
      },
      config: { access: 'public', rateLimit: false, loadShedding: false },
    },
    async () => ({ success: true as const, data: { status: 'ok' as const } }),
  );
}

export default fp(healthPlugin, { name: 'health' });

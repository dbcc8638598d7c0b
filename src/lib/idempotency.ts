import { createHash } from 'node:crypto';
import { and, eq, lt, sql } from '../db/orm.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Database } from '../db/client.js';
import { idempotencyKeys } from '../db/schema.js';
import { fail } from '../errors.js';
import { ok } from './envelope.js';

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
const TTL_MS = 24 * 3600 * 1000;
/** A request still "in progress" after this long died with its process; its key may be used again. */
const ABANDONED_MS = 60 * 1000;

/** What a creating request says about idempotency: its key, if any, and a digest of what it asks for. */
export interface IdempotencyInput {
  key: string | undefined;
  requestHash: string;
}

export interface IdempotentResult<T> {
  status: number;
  /** What identifies the created resource; replays render it afresh (so signed URLs are fresh too). */
  resourceId: string;
  value?: T;
  replayed: boolean;
}

/** Reads `Idempotency-Key`; absent is fine, malformed is refused. */
export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const raw = request.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (!key || !KEY_PATTERN.test(key)) {
    throw fail('INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1–255 printable ASCII characters without spaces, e.g. a UUID.');
  }
  return key;
}

/** The header as documented on every creating POST. */
export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ maxLength: 255, description: 'Retry-safe creation: the same key and body within 24 h replays the first response' }),
  ),
});

/**
 * The key and a digest of `parts` (what the request asks for) of a creating request. The digest only
 * matters with a key to keep it under, and most requests carry none: it is computed only then.
 */
export function idempotencyOf(request: FastifyRequest, ...parts: unknown[]): IdempotencyInput {
  const key = idempotencyKeyOf(request);
  return { key, requestHash: key === undefined ? '' : fingerprint(...parts) };
}

/** Answers a creating request: 201 the first time; a replay carries `Idempotent-Replayed: true`. */
export function sendCreated(reply: FastifyReply, result: { status: number; replayed: boolean }, data: unknown, message?: string) {
  if (result.replayed) reply.header('idempotent-replayed', 'true');
  return reply.code(result.status).send(ok(data, result.replayed ? undefined : message));
}

/** A stable digest of what the request asks for: same key with a different digest is a misuse. */
export function fingerprint(...parts: unknown[]): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, canonical(x)]))
        : v;
  return createHash('sha256').update(JSON.stringify(parts.map(canonical))).digest('hex');
}

/**
 * Runs `create` at most once per (user, key) within 24 h, across every process (the key lives in
 * Postgres). Failures release the key so the client can retry; only successes are remembered.
 */
export async function runIdempotent<T extends { id: string }>(
  db: Database,
  args: { userId: string; key: string | undefined; scope: string; requestHash: string },
  create: () => Promise<T>,
): Promise<IdempotentResult<T>> {
  if (!args.key) {
    const value = await create();
    return { status: 201, resourceId: value.id, value, replayed: false };
  }
  const where = and(eq(idempotencyKeys.userId, args.userId), eq(idempotencyKeys.key, args.key));
  for (let attempt = 0; attempt < 3; attempt++) {
    const [claimed] = await db
      .insert(idempotencyKeys)
      .values({ userId: args.userId, key: args.key, scope: args.scope, requestHash: args.requestHash })
      .onConflictDoNothing()
      .returning({ id: idempotencyKeys.id });
    if (claimed) {
      try {
        const value = await create();
        await db
          .update(idempotencyKeys)
          .set({ state: 'completed', responseStatus: 201, responseBody: { id: value.id } })
          .where(eq(idempotencyKeys.id, claimed.id));
        return { status: 201, resourceId: value.id, value, replayed: false };
      } catch (err) {
        await db.delete(idempotencyKeys).where(eq(idempotencyKeys.id, claimed.id)).catch(() => undefined);
        throw err;
      }
    }
    const [existing] = await db.select().from(idempotencyKeys).where(where).limit(1);
    if (!existing) continue;
    const age = Date.now() - existing.createdAt.getTime();
    const abandoned = existing.state === 'in_progress' && Date.now() - existing.updatedAt.getTime() > ABANDONED_MS;
    if (age > TTL_MS || abandoned) {
      await db.delete(idempotencyKeys).where(and(where, lt(idempotencyKeys.createdAt, sql`now()`)));
      continue;
    }
    if (existing.requestHash !== args.requestHash || existing.scope !== args.scope) {
      throw fail('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used for a different request. Use a new key for a new request.');
    }
    if (existing.state === 'in_progress') {
      throw fail('IDEMPOTENCY_REQUEST_IN_PROGRESS', 'A request with this Idempotency-Key is still being processed. Retry in a moment.');
    }
    const body = existing.responseBody as { id: string };
    return { status: existing.responseStatus ?? 201, resourceId: body.id, replayed: true };
  }
  throw fail('IDEMPOTENCY_REQUEST_IN_PROGRESS', 'A request with this Idempotency-Key is still being processed. Retry in a moment.');
}

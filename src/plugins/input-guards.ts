import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { validationError } from '../errors.js';
import { LONE_SURROGATE } from '../lib/text.js';

/** What schemas let through but the rest of the stack cannot take, by field path. */
export function inputProblems(value: unknown, path: string, problems: Record<string, string>, depth = 0): void {
  if (typeof value === 'string') {
    // PostgreSQL text cannot hold U+0000: the insert or the search would fail with a 500.
    if (value.includes('\u0000')) problems[path || 'request'] = 'must not contain NUL (\\u0000) characters';
    // JSON may escape half of a surrogate pair ("\ud800"): not Unicode, and jsonb (an event's data) refuses it.
    else if (LONE_SURROGATE.test(value)) problems[path || 'request'] = 'must be valid Unicode: it holds half of a surrogate pair (an escape such as \\ud800 without its partner)';
  } else if (typeof value === 'number') {
    // Ajv's coercion turns the query strings "Infinity" and "-Infinity" into numbers and then skips
    // minimum/maximum for non-finite values, so ?limit=-Infinity passed validation.
    if (!Number.isFinite(value)) problems[path || 'request'] = 'must be a finite number';
  } else if (value && typeof value === 'object' && depth < 20 && !Buffer.isBuffer(value)) {
    for (const key in value) {
      if (Object.hasOwn(value, key)) inputProblems((value as Record<string, unknown>)[key], path ? `${path}.${key}` : key, problems, depth + 1);
    }
  }
}

/**
 * Runs after schema validation, before every handler: refuses, with the usual 400 VALIDATION_ERROR
 * and a detail per field, input that passed its schema but that no handler should have to guard.
 */
async function inputGuards(app: FastifyInstance) {
  // A callback hook, not an async one: it runs on every request, and a promise per request is measurable
  // on one that does little else (bench figure 1).
  app.addHook('preHandler', (request, _reply, done) => {
    const problems: Record<string, string> = {};
    inputProblems(request.params, '', problems);
    inputProblems(request.query, '', problems);
    inputProblems(request.body, '', problems);
    const fields = Object.keys(problems);
    if (fields.length) done(validationError(`Some fields are invalid: ${fields.join(', ')}. See details.`, problems));
    else done();
  });
}

export default fp(inputGuards, { name: 'input-guards' });

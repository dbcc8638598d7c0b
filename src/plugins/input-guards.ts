import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { validationError } from '../errors.js';

/** What schemas let through but the rest of the stack cannot take, by field path. */
export function inputProblems(value: unknown, path: string, problems: Record<string, string>, depth = 0): void {
  if (typeof value === 'string') {
    // PostgreSQL text cannot hold U+0000: the insert or the search would fail with a 500.
    if (value.includes('\u0000')) problems[path || 'request'] = 'must not contain NUL (\\u0000) characters';
  } else if (typeof value === 'number') {
    // Ajv's coercion turns the query strings "Infinity" and "-Infinity" into numbers and then skips
    // minimum/maximum for non-finite values, so ?limit=-Infinity passed validation.
    if (!Number.isFinite(value)) problems[path || 'request'] = 'must be a finite number';
  } else if (value && typeof value === 'object' && depth < 20 && !Buffer.isBuffer(value)) {
    for (const [key, item] of Object.entries(value)) inputProblems(item, path ? `${path}.${key}` : key, problems, depth + 1);
  }
}

/**
 * Runs after schema validation, before every handler: refuses, with the usual 400 VALIDATION_ERROR
 * and a detail per field, input that passed its schema but that no handler should have to guard.
 */
async function inputGuards(app: FastifyInstance) {
  app.addHook('preHandler', async (request) => {
    const problems: Record<string, string> = {};
    inputProblems(request.params, '', problems);
    inputProblems(request.query, '', problems);
    inputProblems(request.body, '', problems);
    const fields = Object.keys(problems);
    if (fields.length) throw validationError(`Some fields are invalid: ${fields.join(', ')}. See details.`, problems);
  });
}

export default fp(inputGuards, { name: 'input-guards' });

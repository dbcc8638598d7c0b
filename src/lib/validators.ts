import { AjvCompiler, type BuildCompilerFromPool, type RouteDefinition } from '@fastify/ajv-compiler';

// Fastify's own pool of Ajv instances: one per (shared schemas, options) pair, reused across plugin scopes.
const pool = AjvCompiler();

/**
 * Fastify's schemaController validator factory with two Ajv validators (issue 14, "Strict input"):
 * - a JSON body is checked as sent, without coercion: `{"quantity":"3"}`, `{"is_public":null}` or
 *   `{"text":12345}` are 400 VALIDATION_ERROR with per-field details, never stored converted;
 * - query strings, path parameters and headers arrive as text and keep Ajv's type coercion
 *   (`?limit=20`), a lone value accepted where a list is expected.
 * Multipart text fields are text too: lib/form-fields.ts coerces them (they are not a Fastify body).
 */
export const buildValidator: BuildCompilerFromPool = (externalSchemas, options) => {
  const compiler = (coerceTypes: false | 'array') =>
    pool(externalSchemas, { plugins: options?.plugins, onCreate: options?.onCreate, customOptions: { ...options?.customOptions, coerceTypes } });
  const body = compiler(false);
  const text = compiler('array');
  // Fastify calls a compiler with the route definition ({ schema, httpPart, … }), not the bare schema its typings name.
  const pick = (route: RouteDefinition) => (route.httpPart === 'body' ? body : text)(route as never);
  return pick as unknown as ReturnType<BuildCompilerFromPool>;
};

/*
 * Fastify asks for a validator compiler per plugin context with that context's shared schemas, and the stock pool
 * (`@fastify/ajv-compiler`, kept underneath) makes one Ajv instance per distinct set: every route module adds its
 * own, so start-up built 28 instances (two modes each, below) at 10–30 ms apiece, about 350 ms of a 2.2 s start.
 * Here each mode has one instance, given each context's schemas as they come ($ids are unique across the app; a
 * context bringing an $id the instance holds with other content gets the stock pool's private instance). The one
 * leniency: a route could $ref a schema registered in a sibling context. Figure 6 (start-up), three alternating
 * `--only=6 --quick` pairs on 3 December: median start 2 430 / 1 761 / 1 880 ms stock against 1 837 / 1 553 /
 * 1 549 ms (0.76–0.88x; with form-fields.ts compiling on first use). To drop it, make `compilerFor` return
 * `pool(externalSchemas, settings)`.
 */
import { AjvCompiler, type Ajv, type BuildCompilerFromPool, type RouteDefinition } from '@fastify/ajv-compiler';

type Compile = ReturnType<BuildCompilerFromPool>;
type Externals = Parameters<BuildCompilerFromPool>[0];
type Settings = NonNullable<Parameters<BuildCompilerFromPool>[1]>;

// Fastify's own pool of Ajv instances: one per (shared schemas, options) pair.
const pool = AjvCompiler();

// One Ajv instance per set of options for every plugin context, holding every context's shared schemas.
const shared = new Map<string, { compile: Compile; ajv: Ajv; schemas: Map<string, string> }>();

function compilerFor(externalSchemas: Externals, settings: Settings): Compile {
  if (settings.plugins?.length || 'mode' in settings) return pool(externalSchemas, settings);
  const key = JSON.stringify(settings.customOptions);
  let entry = shared.get(key);
  if (!entry) {
    let created: Ajv | undefined;
    const compile = pool({}, { ...settings, onCreate: (ajv: Ajv) => { settings.onCreate?.(ajv); created = ajv; } });
    if (!created) return pool(externalSchemas, settings);
    shared.set(key, (entry = { compile, ajv: created, schemas: new Map() }));
  }
  const fresh: Array<[string, string, Externals[string]]> = [];
  for (const [name, schema] of Object.entries(externalSchemas)) {
    const id = (schema as { $id?: string }).$id ?? name;
    const text = JSON.stringify(schema);
    const held = entry.schemas.get(id);
    if (held === undefined) fresh.push([id, text, schema]);
    else if (held !== text) return pool(externalSchemas, settings);
  }
  for (const [id, text, schema] of fresh) {
    entry.ajv.addSchema(schema);
    entry.schemas.set(id, text);
  }
  return entry.compile;
}

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
    compilerFor(externalSchemas, { plugins: options?.plugins, onCreate: options?.onCreate, customOptions: { ...options?.customOptions, coerceTypes } });
  const body = compiler(false);
  const text = compiler('array');
  // Fastify calls a compiler with the route definition ({ schema, httpPart, … }), not the bare schema its typings name.
  const pick = (route: RouteDefinition) => (route.httpPart === 'body' ? body : text)(route as never);
  return pick as unknown as ReturnType<BuildCompilerFromPool>;
};

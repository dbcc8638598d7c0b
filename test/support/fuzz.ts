import fc from 'fast-check';
import type { OpenApiDocument, OpenApiSchema, Operation } from './openapi.js';

/**
 * fast-check arbitraries that turn an OpenAPI operation into request plans: valid values read from
 * its schemas, values just outside their bounds, and hostile ones. Ids are drawn from pools of real
 * resources when the request is sent (`Known`), so handlers act on orders and designs that exist.
 */

export type PoolName = 'order' | 'design' | 'file';

/** A reference to the `index`-th (modulo) resource of a pool, resolved when the request is sent. */
export class Known {
  constructor(
    readonly pool: PoolName,
    readonly index: number,
  ) {}
}

const known = (pool: PoolName) => fc.nat().map((i) => new Known(pool, i));

/** Percent-encodes the UTF-8 bytes of a value, so lone surrogates travel (as U+FFFD) instead of throwing. */
export function encode(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return [...Buffer.from(text, 'utf8')].map((b) => (/[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('');
}

// ---- hostile values ---------------------------------------------------------------------------

const FRAGMENTS = [
  "' OR '1'='1",
  "'; drop table orders; --",
  '" OR ""="',
  '1; select pg_sleep(30)--',
  "1' union select email from users--",
  '$1',
  '../../../../etc/passwd',
  '..\\..\\windows\\win.ini',
  '%2e%2e%2f%2e%2e%2f',
  '%00',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  'x\ud83dy',
  'NaN',
  'Infinity',
  '-Infinity',
  '1e999',
  '-0',
  '0x1F',
  '1_000',
  ' 1 ',
  'null',
  'undefined',
  'true',
  '[]',
  '{}',
  '__proto__',
  'constructor',
  '<script>alert(1)</script>',
  '${7*7}',
  '{{7*7}}',
  '%s%s%s%n',
  '\r\nSet-Cookie: x=1',
  '\u202egnp.exe',
  'ＡＢＣ１２３',
  '😀👩‍👩‍👧‍👦',
  ' ',
  '',
];

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...FRAGMENTS) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(5_000), 'é'.repeat(3_000), '😀'.repeat(2_000), 'a'.repeat(120_000)) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 200, maxLength: 3_000 }) },
);

const hostileNumber = fc.oneof(
  fc.constantFrom(-1, 0, -0, 0.5, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, 1e308, -1e308, 5e-324, 1.005, 0.1 + 0.2),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 2, arbitrary: hostileNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { $gt: '' }, { __proto__: { admin: true } }) },
  { weight: 1, arbitrary: fc.array(fc.oneof(hostileString, hostileNumber), { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.oneof(hostileString, fc.constantFrom('__proto__', 'constructor')), hostileString, { maxKeys: 3 }) },
);

/** Bodies that are not JSON, or are JSON a parser must be careful with. */
export const malformedJson = fc.constantFrom(
  '{',
  '{"text": ',
  '[1, 2',
  "{'text': 'single quotes'}",
  '{"text": "x"} trailing',
  'undefined',
  'NaN',
  '\u0000',
  '{"__proto__": {"admin": true}, "text": "x"}',
  '{"constructor": {"prototype": {"admin": true}}}',
  '{"text": "\\ud800"}',
  '{"a":1,"a":2}',
  `${'['.repeat(50_000)}`,
  `${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`,
);

// ---- values from schemas ----------------------------------------------------------------------

export interface SchemaContext {
  doc: OpenApiDocument;
  /** Which pool a uuid named `name` (a property or parameter) comes from. */
  poolFor(name: string): PoolName | undefined;
}

function resolve(schema: OpenApiSchema, doc: OpenApiDocument): OpenApiSchema {
  let s = schema;
  for (let i = 0; s.$ref && i < 10; i++) s = doc.components.schemas[s.$ref.replace('#/components/schemas/', '')] ?? {};
  return s;
}

function stringArb(s: OpenApiSchema, name: string, ctx: SchemaContext): fc.Arbitrary<unknown> {
  const min = s.minLength ?? 0;
  const max = Math.min(s.maxLength ?? 60, 60);
  switch (s.format) {
    case 'uuid': {
      const pool = ctx.poolFor(name);
      return pool ? fc.oneof({ weight: 5, arbitrary: known(pool) }, { weight: 1, arbitrary: fc.uuid() }) : fc.uuid();
    }
    case 'date-time':
      return fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString());
    case 'date':
      return fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10));
    case 'email':
      return fc.emailAddress();
  }
  if (s.pattern) {
    return fc.stringMatching(new RegExp(s.pattern)).filter((v) => v.length >= min && v.length <= (s.maxLength ?? Infinity));
  }
  const words = fc.constantFrom('flowers', 'chrome almond', 'glitter', 'french tips', 'coffin set', 'Same Name');
  return fc.oneof(
    { weight: 3, arbitrary: fc.string({ minLength: Math.max(min, 1), maxLength: Math.max(max, Math.max(min, 1)) }) },
    { weight: 2, arbitrary: words.filter((w) => w.length >= min && w.length <= (s.maxLength ?? Infinity)) },
    { weight: 1, arbitrary: fc.constant('x'.repeat(s.maxLength ?? Math.max(min, 1))) },
  );
}

/** Values the schema accepts (or nearly: patterns and formats are approximated). */
export function validValue(schema: OpenApiSchema, ctx: SchemaContext, name = ''): fc.Arbitrary<unknown> {
  const s = resolve(schema, ctx.doc);
  if (s.anyOf || s.oneOf) return fc.oneof(...(s.anyOf ?? s.oneOf)!.map((x) => validValue(x, ctx, name)));
  if ('const' in s) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  const types = Array.isArray(s.type) ? s.type : [s.type ?? (s.properties ? 'object' : 'string')];
  if (types.length > 1) return fc.oneof(...types.map((t) => validValue({ ...s, type: t }, ctx, name)));
  switch (types[0]) {
    case 'string':
      return stringArb(s, name, ctx);
    case 'integer': {
      const min = s.minimum ?? -1000;
      const max = s.maximum ?? 100000;
      return fc.oneof(fc.integer({ min, max }), fc.constantFrom(min, max));
    }
    case 'number': {
      const min = s.minimum ?? -1000;
      const max = s.maximum ?? 1000;
      return fc.oneof(fc.integer({ min: Math.ceil(min * 100), max: Math.floor(max * 100) }).map((n) => n / 100), fc.double({ min, max, noNaN: true }));
    }
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(validValue(s.items ?? {}, ctx, name), { minLength: s.minItems ?? 0, maxLength: Math.min(s.maxItems ?? 4, 12) });
    case 'object': {
      const props = Object.entries(s.properties ?? {}).filter(([, p]) => resolve(p, ctx.doc).format !== 'binary');
      const required = new Set(s.required ?? []);
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [key, p] of props) model[key] = validValue(p, ctx, key);
      return fc.record(model, { requiredKeys: props.map(([k]) => k).filter((k) => required.has(k)) });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** Values just outside what the schema accepts: one past each bound, the wrong type, empty. */
export function edgeValue(schema: OpenApiSchema, ctx: SchemaContext): fc.Arbitrary<unknown> {
  const s = resolve(schema, ctx.doc);
  const edges: unknown[] = [null, '', [], {}];
  if (s.minimum !== undefined) edges.push(s.minimum - 1, s.minimum - 0.001, String(s.minimum));
  if (s.maximum !== undefined) edges.push(s.maximum + 1, s.maximum + 0.001, String(s.maximum));
  if (s.maxLength !== undefined) edges.push('x'.repeat(s.maxLength + 1), `${'x'.repeat(s.maxLength - 1)}😀`);
  if (s.minLength) edges.push('x'.repeat(s.minLength - 1), ' '.repeat(s.minLength + 2));
  if (s.maxItems !== undefined) edges.push(Array.from({ length: s.maxItems + 1 }, () => 1));
  if (s.minItems) edges.push(Array.from({ length: s.minItems - 1 }, () => 1));
  if (s.enum || s.anyOf) edges.push('UNKNOWN_VALUE', 'Accept', ' accept');
  if (s.type === 'string' || (!s.type && !s.properties)) edges.push('a\u0000b', '\u0000', 'x\ud800', 'line\r\nbreak');
  if (s.format === 'uuid') edges.push('00000000-0000-0000-0000-000000000000', 'not-a-uuid', '0000000-0000-0000-0000-000000000000');
  if (s.format === 'date-time' || s.format === 'date') edges.push('2024-02-30', '2024-13-01T00:00:00Z', 'yesterday', '0000-00-00', '275760-09-13');
  return fc.constantFrom(...edges);
}

/** A valid object with one property replaced by an edge or hostile value, removed, or joined by an unknown one. */
export function mutatedObject(schema: OpenApiSchema, ctx: SchemaContext): fc.Arbitrary<unknown> {
  const s = resolve(schema, ctx.doc);
  const keys = Object.keys(s.properties ?? {});
  if (!keys.length) return hostileValue;
  return fc
    .tuple(
      validValue(s, ctx).filter((v) => typeof v === 'object' && v !== null),
      fc.constantFrom(...keys, 'unknown_field', '__proto__', 'constructor'),
      fc.oneof(hostileValue, ...keys.map((k) => edgeValue(s.properties![k]!, ctx))),
      fc.constantFrom('replace', 'replace', 'delete'),
    )
    .map(([value, key, replacement, how]) => {
      const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
      if (how === 'delete') delete copy[key];
      else Object.defineProperty(copy, key, { value: replacement, enumerable: true, writable: true, configurable: true });
      return copy;
    });
}

// ---- request plans ----------------------------------------------------------------------------

export type Caller = 'anonymous' | 'customerA' | 'customerB' | 'techA' | 'techB' | 'badToken';
const CALLERS = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Caller>('anonymous') },
  { weight: 1, arbitrary: fc.constant<Caller>('badToken') },
  { weight: 10, arbitrary: fc.constantFrom<Caller>('customerA', 'customerB', 'techA', 'techB') },
);

export type BodyPlan =
  | { kind: 'json'; value: unknown; contentType: string }
  | { kind: 'text'; text: string; contentType: string | undefined }
  | {
      kind: 'multipart';
      fields: Array<[string, unknown]>;
      file?: { field: string; filename: string; contentType: string | null; image: number };
      damage: 'none' | 'no-boundary' | 'cut';
    };

export interface Plan {
  op: Operation;
  caller: Caller;
  path: Record<string, unknown>;
  query: Array<[string, unknown]>;
  headers: Record<string, string>;
  body?: BodyPlan;
}

const HEADER_SAFE = /^[\t\x20-\x7e]*$/;
const headerValue = fc.oneof(fc.constantFrom('retry-1', 'retry-2', 'retry-3'), fc.uuid(), hostileString.filter((v) => HEADER_SAFE.test(v) && v.length < 8000));

function pathValue(name: string, path: string, valid: boolean): fc.Arbitrary<unknown> {
  if (path.startsWith('/api/v1/files/')) {
    if (valid) return known('file');
    return fc.oneof(
      { weight: 6, arbitrary: known('file') },
      { weight: 1, arbitrary: fc.constantFrom('../../../etc/passwd', '..%2f..%2f.env', 'x/../../local-storage-signing-key', '%00.png', 'a'.repeat(300)) },
      { weight: 1, arbitrary: hostileString.map(encode) },
    );
  }
  const pool: PoolName = path.startsWith('/api/v1/designs') || path.startsWith('/api/v1/moderation/designs') ? 'design' : 'order';
  if (valid) return known(pool);
  return fc.oneof(
    { weight: 10, arbitrary: known(pool) },
    { weight: 1, arbitrary: known(pool === 'order' ? 'design' : 'order') },
    { weight: 1, arbitrary: fc.uuid() },
    { weight: 2, arbitrary: hostileString.map((v) => ({ raw: encode(v) })) },
    { weight: 1, arbitrary: fc.constantFrom('..', '.', '%2e%2e', '%2F', '%ff%fe', '%ED%A0%80', '%C0%AF', 'me', '1', '-1', 'null').map((raw) => ({ raw })) },
  );
}

function queryPlan(op: Operation, ctx: SchemaContext, valid: boolean): fc.Arbitrary<Array<[string, unknown]>> {
  const params = (op.spec.parameters ?? []).filter((p) => p.in === 'query');
  const documented = params.map((p) =>
    fc.option(
      valid ? validValue(p.schema, ctx, p.name) : fc.oneof(
        { weight: 6, arbitrary: validValue(p.schema, ctx, p.name) },
        { weight: 2, arbitrary: edgeValue(p.schema, ctx) },
        { weight: 2, arbitrary: hostileString },
      ),
      { freq: 2 },
    ).map((v): Array<[string, unknown]> => (v === null ? [] : Array.isArray(v) ? v.map((x) => [p.name, x]) : [[p.name, v]])),
  );
  const extra = fc.array(
    fc.tuple(
      fc.constantFrom('unknown', '__proto__', 'constructor', 'toString', 'page', 'limit', 'sort', 'status', 'access_token', 'page[]', 'limit[gt]'),
      fc.oneof(fc.constantFrom('1', '2', '100', '-1'), hostileString),
    ),
    { maxLength: 2 },
  );
  const extras = valid ? fc.constant([]) : fc.oneof({ weight: 4, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: extra });
  return fc.tuple(fc.tuple(...documented), extras).map(([doc, more]) => [
    ...doc.flat(),
    ...more,
  ]);
}

function multipartPlan(schema: OpenApiSchema, ctx: SchemaContext, images: Images, valid: boolean): fc.Arbitrary<BodyPlan> {
  const props = Object.entries(schema.properties ?? {}).filter(([, p]) => p.format !== 'binary');
  const nailSizes = fc.array(fc.integer({ min: 0, max: 11 }), { minLength: 10, maxLength: 10 });
  const fieldArbs = props.map(([name, p]) => {
    const good = name === 'nail_sizes' ? fc.oneof(nailSizes.map((a) => JSON.stringify(a)), nailSizes.map((a) => a.join(','))) : validValue(p, ctx, name);
    // Reusing a gallery design is its own flow: valid uploads mostly leave it out.
    const freq = valid && name === 'source_design_id' ? 1 : 4;
    const value = valid ? good : fc.oneof({ weight: 6, arbitrary: good }, { weight: 1, arbitrary: edgeValue(p, ctx) }, { weight: 2, arbitrary: hostileString });
    return fc.option(value, { freq }).map((v): Array<[string, unknown]> => (v === null ? [] : [[name, v]]));
  });
  const extra = fc.oneof(
    { weight: 6, arbitrary: fc.constant<Array<[string, unknown]>>([]) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('colour', '__proto__', 'quantity', 'description'), hostileString).map((f): Array<[string, unknown]> => [f]) },
  );
  const validFile = fc.record({
    field: fc.constant('image'),
    filename: fc.constantFrom('design.png', 'My Design (final).PNG'),
    contentType: fc.constant<string | null>('image/png'),
    image: fc.nat({ max: images.valid - 1 }),
  });
  const file = fc.record({
    field: fc.constantFrom('image', 'image', 'image', 'image', 'picture'),
    filename: fc.oneof({ weight: 6, arbitrary: fc.constant('design.png') }, { weight: 1, arbitrary: fc.constantFrom('DESIGN.PNG', 'a.jpg', '../x.png', 'x.png.exe', '') }, { weight: 1, arbitrary: hostileString.filter((v) => HEADER_SAFE.test(v) && !v.includes('"')) }),
    contentType: fc.oneof({ weight: 8, arbitrary: fc.constant<string | null>('image/png') }, { weight: 1, arbitrary: fc.constantFrom<string | null>('image/jpeg', 'text/html', null) }),
    image: fc.nat({ max: images.total - 1 }),
  });
  return fc
    .record({
      fields: fc.tuple(fc.tuple(...fieldArbs), valid ? fc.constant([]) : extra).map(([f, e]) => [...f.flat(), ...e]),
      file: valid ? validFile : fc.option(file, { freq: 6 }),
      damage: valid ? fc.constant('none' as const) : fc.constantFrom<'none' | 'no-boundary' | 'cut'>('none', 'none', 'none', 'none', 'none', 'none', 'none', 'none', 'no-boundary', 'cut'),
    })
    .map((p) => ({ kind: 'multipart' as const, fields: p.fields, file: p.file ?? undefined, damage: p.damage }));
}

function bodyPlan(op: Operation, ctx: SchemaContext, images: Images, valid: boolean): fc.Arbitrary<BodyPlan | undefined> {
  const content = op.spec.requestBody?.content;
  const noBody = fc.constant(undefined);
  if (!content && valid) return noBody;
  if (!content) return fc.oneof({ weight: 9, arbitrary: noBody }, { weight: 1, arbitrary: malformedJson.map((text) => ({ kind: 'text' as const, text, contentType: 'application/json' })) });
  const options: Array<{ weight: number; arbitrary: fc.Arbitrary<BodyPlan | undefined> }> = [];
  const json = content['application/json']?.schema;
  const form = content['multipart/form-data']?.schema;
  if (valid) {
    if (form) return multipartPlan(form, ctx, images, true);
    if (json) return validValue(json, ctx).map((value) => ({ kind: 'json' as const, value, contentType: 'application/json' }));
  }
  if (json) {
    const contentType = fc.constantFrom('application/json', 'application/json', 'application/json', 'application/json; charset=utf-8', 'application/vnd.api+json');
    options.push(
      { weight: 6, arbitrary: fc.tuple(validValue(json, ctx), contentType).map(([value, ct]) => ({ kind: 'json' as const, value, contentType: ct })) },
      { weight: 4, arbitrary: fc.tuple(mutatedObject(json, ctx), contentType).map(([value, ct]) => ({ kind: 'json' as const, value, contentType: ct })) },
      { weight: 1, arbitrary: hostileValue.map((value) => ({ kind: 'json' as const, value, contentType: 'application/json' })) },
      { weight: 1, arbitrary: malformedJson.map((text) => ({ kind: 'text' as const, text, contentType: 'application/json' })) },
      {
        weight: 1,
        arbitrary: fc.tuple(validValue(json, ctx), fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', undefined, 'application/xml')).map(([value, ct]) => ({
          kind: 'text' as const,
          text: JSON.stringify(value) ?? '',
          contentType: ct,
        })),
      },
      { weight: 1, arbitrary: noBody },
    );
  }
  if (form) options.push({ weight: 8, arbitrary: multipartPlan(form, ctx, images, false) });
  return fc.oneof(...options);
}

/** How many upload bodies the test offers; the first `valid` of them are acceptable designs. */
export interface Images {
  valid: number;
  total: number;
}

/**
 * Request plans for one operation: half of them valid throughout (so handlers act and state moves),
 * half with any part at the edge of its schema or hostile.
 */
export function planFor(op: Operation, ctx: SchemaContext, images: Images): fc.Arbitrary<Plan> {
  return fc.boolean().chain((valid) => planOf(op, ctx, images, valid));
}

function planOf(op: Operation, ctx: SchemaContext, images: Images, valid: boolean): fc.Arbitrary<Plan> {
  const pathNames = [...op.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  const path = fc.record(Object.fromEntries(pathNames.map((n) => [n, pathValue(n, op.path, valid)])));
  const headerParams = (op.spec.parameters ?? []).filter((p) => p.in === 'header');
  const headers = fc
    .tuple(
      fc.tuple(...headerParams.map((p) => fc.option(headerValue, { freq: 2 }).map((v) => (v === null ? [] : [[p.name, v] as [string, string]])))),
      fc.option(fc.constantFrom<[string, string]>(['x-request-id', 'fuzz-request-0001'], ['x-request-id', '../../x'], ['accept', 'text/html'], ['accept-encoding', 'gzip'], ['x-forwarded-for', '1.2.3.4, 5.6.7.8'])),
    )
    .map(([documented, extra]) => Object.fromEntries([...documented.flat(), ...(extra ? [extra] : [])]));
  return fc.record({
    op: fc.constant(op),
    caller: CALLERS,
    path,
    query: queryPlan(op, ctx, valid),
    headers,
    body: bodyPlan(op, ctx, images, valid),
  });
}

import { STATUS_CODES } from 'node:http';
import type { RouteOptions } from 'fastify';
import { ERRORS, type ErrorCode } from '../errors.js';
import type { Access } from './auth.js';

/**
 * The OpenAPI contract, enforced at boot: every documented route has a stable operationId, the security its
 * access level means, and exactly the error statuses it can answer, each with the catalogue codes (src/errors.ts)
 * that can come back. A route states only its own codes (`config.errors`); the codes every route of its kind can
 * answer (token, validation, body parsing, idempotency, rate limit, overload) are derived here from its schema
 * and config, so the document cannot forget a status that a hook or the framework produces.
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The catalogue codes this route's handler and services can answer with, beyond the cross-cutting ones. */
    errors?: readonly ErrorCode[];
  }
}

export const BEARER_SCHEME = 'bearerAuth';
/** `?ticket=` in place of the bearer token (auth.ts, config.ticket): the live stream only. */
export const TICKET_SCHEME = 'streamTicket';
export const ERROR_SCHEMA_ID = 'ErrorResponse';

/** Codes a multipart upload can be refused with (design-upload.ts, storage/png.ts), and its storage outage. */
export const UPLOAD_ERRORS: readonly ErrorCode[] = [
  'FILE_TOO_LARGE',
  'INVALID_FILE_FORMAT',
  'INVALID_FILE_NAME',
  'INVALID_IMAGE',
  'INVALID_IMAGE_DIMENSIONS',
  'UNEXPECTED_FILE_FIELD',
  'TOO_MANY_FILES',
  'TOO_MANY_PARTS',
  'MALFORMED_MULTIPART',
  'STORAGE_UNAVAILABLE',
];

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const OPERATION_ID = /^[a-z][A-Za-z0-9]*$/;

interface RouteSchema {
  operationId?: string;
  security?: unknown[];
  hide?: boolean;
  params?: unknown;
  querystring?: unknown;
  body?: unknown;
  headers?: unknown;
  response?: Record<string, unknown>;
}

const isErrorRef = (schema: unknown) =>
  typeof schema === 'object' && schema !== null && (schema as { $ref?: string }).$ref === ERROR_SCHEMA_ID;

const hasProperty = (schema: unknown, name: string) =>
  typeof schema === 'object' && schema !== null && Object.hasOwn((schema as { properties?: object }).properties ?? {}, name);

/** Every code `route` can answer with: its own (`config.errors`) and those its kind of route can. */
export function routeErrorCodes(route: Pick<RouteOptions, 'method' | 'schema' | 'config'>): ErrorCode[] {
  const schema = (route.schema ?? {}) as RouteSchema;
  const config = (route.config ?? {}) as { access?: Access; errors?: readonly ErrorCode[]; upload?: boolean; rateLimit?: unknown; loadShedding?: unknown };
  const methods = [route.method].flat();
  const codes = new Set<ErrorCode>(config.errors ?? []);
  const add = (...more: ErrorCode[]) => more.forEach((c) => codes.add(c));

  // auth.ts: a malformed or invalid token is refused on every route, public ones included; checking one needs the issuer's keys.
  add('INVALID_TOKEN', 'IDENTITY_PROVIDER_UNAVAILABLE');
  // A bug answers in the envelope too, with the request id to quote (plugins/errors.ts).
  add('INTERNAL_ERROR');
  if (config.access !== 'public') add('UNAUTHORIZED');
  if (config.access === 'customer' || config.access === 'nail_technician') add('FORBIDDEN', 'USER_NOT_FOUND');
  // The signed-in caller's profile is read from the database; health answers its own outage in its body.
  if (config.loadShedding !== false) add('DATABASE_UNAVAILABLE', 'SERVICE_UNAVAILABLE');
  if (config.rateLimit !== false) add('RATE_LIMITED');
  // https-only.ts (staging and production): plain HTTP other than GET/HEAD is refused before anything else.
  add('HTTPS_REQUIRED');
  // input-guards.ts checks the query, path and body of every route (NUL characters, non-finite numbers), schema or not.
  add('VALIDATION_ERROR');
  if (schema.params) add('BAD_URL');
  // Fastify reads a body sent to any of these methods, whether the route wants one or not.
  if (methods.some((m) => BODY_METHODS.has(m))) add('INVALID_JSON', 'BAD_REQUEST', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE');
  if (config.upload) add(...UPLOAD_ERRORS);
  if (hasProperty(schema.headers, 'idempotency-key')) add('INVALID_IDEMPOTENCY_KEY', 'IDEMPOTENCY_REQUEST_IN_PROGRESS', 'IDEMPOTENCY_KEY_REUSED');
  return [...codes];
}

/** What the document needs to know about each operation that the route schemas alone do not say. */
export interface OperationContract {
  codes: ErrorCode[];
}

/**
 * The onRoute check and completion: fails boot on an API route without an operationId (or with a duplicate one),
 * sets `security` from `config.access`, and lists every status its codes answer with (the catalogue's error body).
 * A route declaring an error status none of its codes can produce fails boot too: the document would promise it.
 */
export function contractFor(route: RouteOptions, seen: Map<string, OperationContract>): void {
  const schema = route.schema as RouteSchema | undefined;
  // Fastify's automatic HEAD twin of a GET route shares its schema; the document leaves HEAD out.
  if (!schema || schema.hide || route.method === 'HEAD' || (!route.url.startsWith('/api/') && !route.url.startsWith('/dev/'))) return;
  const where = `${[route.method].flat().join(',')} ${route.url}`;
  const id = schema.operationId;
  if (!id || !OPERATION_ID.test(id)) throw new Error(`route ${where} needs a camelCase schema.operationId (the generated client's method name)`);
  if (seen.has(id)) throw new Error(`route ${where} reuses operationId ${id}`);
  const access = route.config?.access;
  const codes = routeErrorCodes(route);
  const statuses = new Set<number>(codes.map((c) => ERRORS[c].status));
  const response: Record<string, unknown> = { ...(schema.response ?? {}) };
  for (const [status, body] of Object.entries(response)) {
    if (Number(status) >= 400 && isErrorRef(body) && !statuses.has(Number(status))) {
      throw new Error(`route ${where} declares ${status} but none of its error codes (${codes.join(', ')}) answers ${status}: add it to config.errors or drop the status`);
    }
  }
  for (const status of statuses) response[status] ??= { $ref: ERROR_SCHEMA_ID };
  // https-only.ts (staging and production): a plain-HTTP GET is sent to the same URL over https.
  if ([route.method].flat().includes('GET')) {
    response[308] ??= { type: 'null', description: 'Plain HTTP in staging or production: the same URL over https, in `Location`' };
  }
  // Copied, never mutated: routes share schema objects (the register alias, the health pair).
  const security: Array<Record<string, string[]>> = access === 'public' ? [] : [{ [BEARER_SCHEME]: [] }];
  if (access !== 'public' && route.config?.ticket) security.push({ [TICKET_SCHEME]: [] });
  route.schema = { ...schema, response, security } as typeof route.schema;
  seen.set(id, { codes });
}

// ---------------------------------------------------------------------------------------------------------
// The served document: named components, descriptions and headers that the route schemas do not carry.

type Json = Record<string, unknown>;
interface MediaType {
  schema?: Json;
}
interface ResponseObject {
  description?: string;
  headers?: Json;
  content?: Record<string, MediaType>;
}
interface OperationObject {
  operationId?: string;
  summary?: string;
  parameters?: Array<{ in: string; name: string; description?: string; schema?: Json }>;
  requestBody?: { required?: boolean; description?: string; content: Record<string, MediaType> };
  responses: Record<string, ResponseObject>;
}
export interface Document {
  paths: Record<string, Record<string, OperationObject>>;
  components: { schemas: Record<string, Json> } & Json;
}

const RETRY_AFTER = {
  'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer', minimum: 0 } },
};

const pascal = (id: string) => id[0]!.toUpperCase() + id.slice(1);
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** Puts an inline schema under components as `name` (or reuses an equal one) and returns its reference. */
function hoist(doc: Document, name: string, schema: Json): Json {
  if (typeof schema.$ref === 'string') return schema;
  const titled = (title: string) => ({ title, ...schema });
  let unique = name;
  for (let n = 2; doc.components.schemas[unique] && JSON.stringify(doc.components.schemas[unique]) !== JSON.stringify(titled(unique)); n++) {
    unique = `${name}${n}`;
  }
  doc.components.schemas[unique] = titled(unique);
  return ref(unique);
}

/**
 * A tagged union (review's accept | reject) with its branches named `<name><Tag>`: a discriminator can only
 * select a branch by reference, so inline branches would leave code generators and linters guessing.
 */
function namedBranches(doc: Document, name: string, schema: Json): Json {
  const tag = (schema.discriminator as { propertyName?: string } | undefined)?.propertyName;
  const branches = schema.oneOf as Json[] | undefined;
  if (!tag || !branches) return schema;
  const mapping: Record<string, string> = {};
  const oneOf = branches.map((branch) => {
    const property = (branch.properties as Record<string, Json> | undefined)?.[tag];
    const value = property?.const ?? (property?.enum as unknown[] | undefined)?.[0];
    if (typeof value !== 'string') throw new Error(`${name}: a branch of the union has no constant "${tag}"`);
    const branchRef = hoist(doc, `${name}${pascal(value)}`, branch);
    mapping[value] = branchRef.$ref as string;
    return branchRef;
  });
  return { ...schema, oneOf, discriminator: { propertyName: tag, mapping } };
}

/** The error body of one operation: the catalogue's envelope with `code` narrowed to what it can answer. */
function errorSchema(base: Json, codes: ErrorCode[]): Json {
  const properties = base.properties as { error: { properties: Json } & Json } & Json;
  const error = properties.error;
  return {
    ...base,
    properties: {
      ...properties,
      error: {
        ...error,
        properties: { ...error.properties, code: { type: 'string', enum: codes, description: 'Stable UPPER_SNAKE code clients branch on' } },
      },
    },
  };
}

const describeCodes = (codes: ErrorCode[]) => codes.map((c) => `\`${c}\`: ${ERRORS[c].description}`).join(' ');

/** Rewrites the document @fastify/swagger built so that every body has a name and every response a meaning. */
export function finishDocument(doc: Document, contracts: Map<string, OperationContract>): Document {
  const base = doc.components.schemas[ERROR_SCHEMA_ID];
  if (!base) throw new Error(`the ${ERROR_SCHEMA_ID} schema is not in the document`);
  const errorRef = `#/components/schemas/${ERROR_SCHEMA_ID}`;
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const op of Object.values(item)) {
      if (!op.operationId) continue;
      const name = pascal(op.operationId);
      const codes = contracts.get(op.operationId)?.codes ?? [];
      if (codes.length) doc.components.schemas[`${name}Error`] = { ...errorSchema(base, codes), title: `${name}Error` };

      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        let schema = media.schema;
        if (!schema) continue;
        // A body that may be null is an optional body (reorder): the document says so instead of `anyOf [..., null]`.
        const branches = schema.anyOf as Json[] | undefined;
        if (branches?.some((b) => b.type === 'null')) {
          const rest = branches.filter((b) => b.type !== 'null');
          const { anyOf: _drop, ...others } = schema;
          schema = rest.length === 1 ? { ...others, ...rest[0] } : { ...others, anyOf: rest };
          op.requestBody!.required = false;
        }
        const bodyName = type === 'multipart/form-data' ? `${name}Form` : `${name}Request`;
        media.schema = hoist(doc, bodyName, namedBranches(doc, bodyName, schema));
      }

      for (const [status, response] of Object.entries(op.responses)) {
        const code = Number(status);
        if (code >= 400) {
          const here = codes.filter((c) => (ERRORS[c].status as number) === code);
          for (const media of Object.values(response.content ?? {})) {
            if (media.schema?.$ref === errorRef) media.schema = ref(`${name}Error`);
            else if (media.schema) media.schema = hoist(doc, `${name}Error${status}`, media.schema);
          }
          if (here.length) response.description = describeCodes(here);
          if (code === 429 || code === 503) response.headers = { ...RETRY_AFTER, ...response.headers };
        } else {
          for (const [type, media] of Object.entries(response.content ?? {})) {
            if (media.schema && type === 'application/json') media.schema = hoist(doc, `${name}Response`, media.schema);
          }
        }
        if (!response.description || response.description === 'Default Response') response.description = STATUS_CODES[code] ?? status;
      }
    }
    // Fastify's wildcard route (files.routes.ts) as a valid OpenAPI path: the wildcard becomes the parameter `key`.
    if (path.includes('{*}')) {
      for (const op of Object.values(item)) {
        for (const p of op.parameters ?? []) if (p.in === 'path' && p.name === '*') p.name = 'key';
      }
      doc.paths[path.replace('{*}', '{key}')] = item;
      delete doc.paths[path];
    }
  }
  // The shared error body is replaced by each operation's own; keep it only while something still refers to it.
  if (!JSON.stringify(doc.paths).includes(`"${errorRef}"`)) delete doc.components.schemas[ERROR_SCHEMA_ID];
  return doc;
}

import { type Static, type TSchema, Type } from 'typebox';

/** SPEC §6 success body. */
export function ok<T>(data: T, message?: string): { success: true; data: T; message?: string } {
  return message === undefined ? { success: true, data } : { success: true, data, message };
}

export interface PageInfo {
  page: number;
  limit: number;
  total: number;
  totalPages: number;
  hasNext: boolean;
  hasPrev: boolean;
}

export function pageInfo(page: number, limit: number, total: number): PageInfo {
  const totalPages = Math.ceil(total / limit);
  return { page, limit, total, totalPages, hasNext: page < totalPages, hasPrev: page > 1 };
}

/** Page, limit (SPEC §6 defaults) and the row offset they mean. */
export function paging(q: { page?: number; limit?: number }) {
  const page = q.page ?? 1;
  const limit = q.limit ?? 20;
  return { page, limit, offset: (page - 1) * limit };
}

export function okPage<T>(data: T[], pagination: PageInfo) {
  return { success: true as const, data, pagination };
}

export const ErrorBody = Type.Object(
  {
    success: Type.Literal(false),
    error: Type.Object({
      code: Type.String({ description: 'Stable UPPER_SNAKE code clients branch on' }),
      message: Type.String({ description: 'What went wrong and what to do about it' }),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'ErrorResponse', title: 'Error' },
);

export const Pagination = Type.Object({
  page: Type.Integer(),
  limit: Type.Integer(),
  total: Type.Integer({
    description:
      'Items in the whole list. Exact on short lists; on the order list and the gallery, exact while fewer than 1 000 items lie ' +
      "beyond this page, and beyond that PostgreSQL's estimate (never less than the items known to exist), so that a long list " +
      'is not counted row by row on every page. hasNext and the last pages are always exact.',
  }),
  totalPages: Type.Integer({ description: 'ceil(total / limit): an estimate when total is one' }),
  hasNext: Type.Boolean(),
  hasPrev: Type.Boolean(),
});

export const Envelope = <T extends TSchema>(data: T) =>
  Type.Object({ success: Type.Literal(true), data, message: Type.Optional(Type.String()) });

export const PageEnvelope = <T extends TSchema>(item: T) =>
  Type.Object({ success: Type.Literal(true), data: Type.Array(item), pagination: Pagination });

/** Shared list query: SPEC §6 pages; invalid values are refused, never clamped. */
export const PageQuery = {
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000, default: 1 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
};

export const Uuid = Type.String({ format: 'uuid' });
export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

/** Error responses every route may produce, so the OpenAPI document lists them. */
export const errorResponses = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [c, Type.Ref('ErrorResponse')]));

/**
 * Documents `codes` on a route that an app-wide hook may refuse (429, 503), keeping what the route
 * declares itself. The schema is copied, never mutated: routes share schema objects.
 */
export function documentErrors(route: { schema?: { response?: unknown; hide?: boolean } }, ...codes: number[]) {
  const response = route.schema?.response;
  if (!response || typeof response !== 'object' || route.schema?.hide) return;
  route.schema = { ...route.schema, response: { ...errorResponses(...codes), ...response } };
}

/**
 * `schema` or null. A schema with one JSON type becomes `type: [that, 'null']`, which the response
 * serialiser answers with a null check; as an anyOf it validated every value against both branches,
 * which on a page of 20 orders with 15 nullable fields each was 300 validations per response.
 */
export const Nullable = <T extends TSchema>(schema: T) => {
  const { type, enum: values } = schema as { type?: unknown; enum?: unknown[] };
  return typeof type === 'string'
    ? Type.Unsafe<Static<T> | null>({ ...schema, type: [type, 'null'], ...(values ? { enum: [...values, null] } : {}) })
    : Type.Union([schema, Type.Null()]);
};

/**
 * One of `values`, as a plain string enum rather than a union of literals: fast-json-stringify writes a union by
 * running Ajv on the value branch after branch (one validation per literal, for every value written), and an enum
 * by its type alone. Nullable keeps it an enum.
 */
export const Enum = <T extends string>(values: readonly T[], options: { description?: string; default?: T } = {}) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });

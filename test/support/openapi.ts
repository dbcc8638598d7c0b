import type { App } from '../../src/app.js';

/** The parts of an OpenAPI 3.1 document the reliability tests read. */
export interface OpenApiSchema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
  additionalProperties?: boolean | OpenApiSchema;
  items?: OpenApiSchema;
  anyOf?: OpenApiSchema[];
  oneOf?: OpenApiSchema[];
  allOf?: OpenApiSchema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  default?: unknown;
}

export interface OpenApiParameter {
  in: 'path' | 'query' | 'header';
  name: string;
  required?: boolean;
  schema: OpenApiSchema;
}

export interface OpenApiOperation {
  summary?: string;
  description?: string;
  security?: unknown[];
  parameters?: OpenApiParameter[];
  requestBody?: { content: Record<string, { schema: OpenApiSchema }> };
  responses: Record<string, unknown>;
}

export interface Operation {
  /** `METHOD /path/{param}`, as the document spells it. */
  key: string;
  method: string;
  path: string;
  spec: OpenApiOperation;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, OpenApiSchema> };
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch']);

/** Every operation the running app documents at GET /api/v1/openapi.json. */
export async function documentedOperations(app: App): Promise<{ doc: OpenApiDocument; operations: Operation[] }> {
  const res = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
  if (res.statusCode !== 200) throw new Error(`openapi.json answered ${res.statusCode}`);
  const doc = res.json() as OpenApiDocument;
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, spec] of Object.entries(item)) {
      if (!METHODS.has(method)) continue;
      operations.push({ key: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), path, spec });
    }
  }
  return { doc, operations };
}

/** Fills `{name}` placeholders of a documented path; a file `{key}` spans segments, so it goes in as it is. */
export function fillPath(path: string, params: Record<string, string>): string {
  return path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`no value for {${name}} in ${path}`);
    return path.startsWith('/api/v1/files/') ? value : encodeURIComponent(value);
  });
}

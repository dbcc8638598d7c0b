import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { ERRORS, isErrorCode } from '../../src/errors.js';

// ajv-formats is CommonJS: its default export is the function (as src/lib/form-fields.ts uses it).
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/** One response as a test saw it. */
export interface SeenResponse {
  method: string;
  url: string;
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}

interface Media {
  schema?: unknown;
}
interface Operation {
  operationId?: string;
  responses: Record<string, { content?: Record<string, Media> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
}

/**
 * Statuses the HTTP server answers on a connection before any route sees the request (plugins/errors.ts,
 * clientErrorHandler): documented once in the description, not per operation.
 */
const CONNECTION_STATUSES = new Set([408, 431]);

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/**
 * Checks every response a test gets against the OpenAPI document the app serves: the status must be listed for
 * the operation that answered, a JSON body must match that status's schema (Ajv, the document's own
 * components), and an error's code must answer with the catalogue's status. Requests to no documented
 * operation (hidden routes, unknown URLs) are not checked.
 */
export class ResponseContract {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  private readonly routes: Array<{ pattern: RegExp; path: string; methods: Record<string, Operation> }> = [];
  private readonly validators = new Map<string, ValidateFunction>();

  private constructor(readonly document: Document) {
    addFormats(this.ajv);
    this.ajv.addFormat('binary', true);
    this.ajv.addSchema(document as object, 'openapi.json');
    for (const [path, methods] of Object.entries(document.paths)) {
      const source = path
        .split(/(\{[^}]+\})/)
        .map((part) => (part === '{key}' ? '.+' : part.startsWith('{') ? '[^/]+' : part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
        .join('');
      this.routes.push({ pattern: new RegExp(`^${source}$`), path, methods });
    }
  }

  private static readonly cache = new Map<string, ResponseContract>();

  /** One compiled contract per distinct document (every test app serves the same one, give or take a route). */
  static for(documentText: string): ResponseContract {
    let contract = ResponseContract.cache.get(documentText);
    if (!contract) {
      contract = new ResponseContract(JSON.parse(documentText) as Document);
      ResponseContract.cache.set(documentText, contract);
    }
    return contract;
  }

  private operation(method: string, url: string): { path: string; method: string; op: Operation } | undefined {
    // As the router sees it: dot segments resolved (GET /api/v1/designs/.. is GET /api/v1/, no operation).
    const pathname = new URL(url.split('?')[0]!, 'http://localhost').pathname.replace(/(.)\/+$/, '$1');
    const verb = method === 'HEAD' ? 'get' : method.toLowerCase();
    for (const route of this.routes) {
      if (route.pattern.test(pathname) && route.methods[verb]) return { path: route.path, method: verb, op: route.methods[verb] };
    }
    return undefined;
  }

  private validator(path: string, method: string, status: string, type: string): ValidateFunction {
    const ref = `openapi.json#/${pointer('paths', path, method, 'responses', status, 'content', type, 'schema')}`;
    let validate = this.validators.get(ref);
    if (!validate) {
      validate = this.ajv.compile({ $ref: ref });
      this.validators.set(ref, validate);
    }
    return validate;
  }

  /** The problems with `res`, as one message (undefined when it keeps the contract). */
  problems(res: SeenResponse): string | undefined {
    const found = this.operation(res.method, res.url);
    if (!found || CONNECTION_STATUSES.has(res.statusCode)) return undefined;
    const { path, method, op } = found;
    const where = `${res.method} ${res.url} (${op.operationId ?? path}) answered ${res.statusCode}`;
    const status = String(res.statusCode);
    const response = op.responses[status];
    if (!response) return `${where}, a status the OpenAPI document does not list for it (it lists ${Object.keys(op.responses).join(', ')}). Body: ${res.body.slice(0, 300)}`;
    if (res.method === 'HEAD' || res.body === '') return undefined;
    const contentType = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
    const content = response.content ?? {};
    if (!content[contentType]) return `${where} with Content-Type ${contentType || '(none)'}, which the document does not list (${Object.keys(content).join(', ') || 'no body'})`;
    if (contentType !== 'application/json') return undefined;
    let body: unknown;
    try {
      body = JSON.parse(res.body);
    } catch {
      return `${where} with a body that is not JSON: ${res.body.slice(0, 200)}`;
    }
    const validate = this.validator(path, method, status, contentType);
    if (!validate(body)) {
      return `${where} with a body outside its documented schema: ${this.ajv.errorsText(validate.errors)}. Body: ${res.body.slice(0, 500)}`;
    }
    const code = (body as { error?: { code?: unknown } }).error?.code;
    if (res.statusCode >= 400 && typeof code === 'string' && isErrorCode(code) && ERRORS[code].status !== res.statusCode) {
      return `${where} with code ${code}, which the catalogue (src/errors.ts) answers with ${ERRORS[code].status}`;
    }
    return undefined;
  }

  /** Throws (failing the test) when `res` breaks the contract. */
  check(res: SeenResponse): void {
    const problem = this.problems(res);
    if (problem) throw new ContractViolation(problem);
  }
}

export class ContractViolation extends Error {
  override name = 'ContractViolation';
}

/** `fetch` that checks every answer against `contract` (for clients over real HTTP, e.g. the generated one). */
export function checkedFetch(contract: ResponseContract, inner: typeof globalThis.fetch = globalThis.fetch): typeof globalThis.fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    const response = await inner(request);
    const url = new URL(response.url || request.url);
    contract.check({
      method: request.method,
      url: url.pathname + url.search,
      statusCode: response.status,
      headers: Object.fromEntries(response.headers),
      body: await response.clone().text(),
    });
    return response;
  };
}

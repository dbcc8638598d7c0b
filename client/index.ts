/**
 * A typed client for the API: openapi-fetch over the types openapi-typescript generated from the served
 * OpenAPI document (./schema.d.ts). Paths, parameters, bodies and responses are checked against that
 * document at compile time, e.g.
 *
 *   const api = createApiClient('https://api.kendallsnails.com', { token: () => auth0.getAccessTokenSilently() });
 *   const { data, error } = await api.GET('/api/v1/orders/{id}', { params: { path: { id } } });
 *
 * Uploads (POST /api/v1/orders, PUT /api/v1/orders/{id}/design) are multipart: pass the fields as the body
 * with `bodySerializer: formData`, the image as a File named *.png of type image/png.
 */
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { paths } from './schema.js';

export type { components, paths } from './schema.js';

export type ApiClient = Client<paths>;

/** A bearer token, or a function returning the current one (called before every request, so it may refresh). */
export type TokenSource = string | (() => string | undefined | Promise<string | undefined>);

export interface ApiClientOptions {
  token?: TokenSource;
  fetch?: typeof globalThis.fetch;
}

/** `baseUrl` is the API's origin (PUBLIC_URL); the paths carry the /api/v1 prefix. */
export function createApiClient(baseUrl: string, options: ApiClientOptions = {}): ApiClient {
  const client = createClient<paths>({ baseUrl, ...(options.fetch ? { fetch: options.fetch } : {}) });
  if (options.token !== undefined) client.use(bearerAuth(options.token));
  return client;
}

/** Sends `Authorization: Bearer …` unless the request already carries its own Authorization header. */
export function bearerAuth(token: TokenSource): Middleware {
  return {
    async onRequest({ request }) {
      if (request.headers.has('authorization')) return undefined;
      const value = typeof token === 'function' ? await token() : token;
      if (value) request.headers.set('authorization', `Bearer ${value}`);
      return request;
    },
  };
}

/**
 * openapi-fetch `bodySerializer` for multipart/form-data operations: a Blob or File becomes a file part,
 * anything else a text field (objects and arrays as JSON), the form in which the server reads multipart
 * text fields. Undefined and null fields are left out.
 */
export function formData(body: Record<string, unknown> | null | undefined): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(body ?? {})) {
    if (value === undefined || value === null) continue;
    if (value instanceof Blob) form.append(name, value);
    else form.append(name, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  return form;
}

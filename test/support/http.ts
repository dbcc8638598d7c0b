import { ResponseContract } from './contract.js';

/**
 * The request interface the test helpers use: Fastify's app.inject satisfies it, and httpApi() gives
 * the same over real HTTP, so registerUser, createOrder and friends also drive a spawned server.
 */
export interface ApiRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  payload?: string | Buffer | object;
}

export interface ApiResponse {
  statusCode: number;
  body: string;
  headers: Record<string, unknown>;
  // Mirrors light-my-request's Response.json, which tests read field by field.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json<T = any>(): T;
}

export interface Api {
  inject(request: ApiRequest): Promise<ApiResponse>;
}

/**
 * app.inject's contract over HTTP: an object payload is sent as JSON. Network errors reject. Every answer is
 * checked against the OpenAPI document the server serves (test/support/contract.ts), read on the first request.
 */
export function httpApi(baseUrl: string, opts: { timeoutMs?: number } = {}): Api {
  let contract: Promise<ResponseContract> | undefined;
  const documented = () =>
    (contract ??= fetch(`${baseUrl}/api/v1/openapi.json`)
      .then((res) => res.text())
      .then((text) => ResponseContract.for(text))
      .catch((err: unknown) => {
        contract = undefined;
        throw err;
      }));
  return {
    async inject({ method, url, headers = {}, payload }) {
      let body: string | Buffer | undefined;
      const sent = { ...headers };
      if (Buffer.isBuffer(payload) || typeof payload === 'string') body = payload;
      else if (payload !== undefined) {
        body = JSON.stringify(payload);
        sent['content-type'] ??= 'application/json';
      }
      const res = await fetch(`${baseUrl}${url}`, { method, headers: sent, body, signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000) });
      const text = await res.text();
      const responseHeaders = Object.fromEntries(res.headers);
      (await documented()).check({ method, url, statusCode: res.status, headers: responseHeaders, body: text });
      return {
        statusCode: res.status,
        body: text,
        headers: responseHeaders,
        json: () => JSON.parse(text),
      };
    },
  };
}

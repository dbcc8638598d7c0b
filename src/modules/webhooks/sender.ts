import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';

/** What one HTTP attempt came to: the status, or why there was none. */
export interface AttemptResult {
  statusCode: number | null;
  durationMs: number;
  error: string | null;
}

export interface PostRequest {
  url: URL;
  /** The address the URL guard checked: the connection goes there and nowhere else. */
  address: string;
  family: 4 | 6;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

/**
 * A lookup that answers every name with the checked address, so the socket connects to exactly what the guard
 * let through (no second resolution for a rebinding DNS server to answer differently). TLS still verifies the
 * certificate against the URL's host name, which stays the request's host and SNI.
 */
function pinnedLookup(address: string, family: 4 | 6): LookupFunction {
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  }) as LookupFunction;
}

/**
 * POSTs one webhook. Redirects are not followed (a 3xx is a failed attempt: the receiver must be configured
 * at its final URL, and following would let a public host bounce us inside). The whole attempt, connection
 * and response headers, is bounded by `timeoutMs`; the body of the answer is not read.
 */
export function postWebhook(request: PostRequest): Promise<AttemptResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const client = request.url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (statusCode: number | null, error: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ statusCode, durationMs: elapsed(), error });
    };
    const req = client.request(request.url, {
      method: 'POST',
      headers: { ...request.headers, 'content-length': String(Buffer.byteLength(request.body)) },
      lookup: pinnedLookup(request.address, request.family),
      agent: false,
    });
    const timer = setTimeout(() => finish(null, `no answer within ${request.timeoutMs / 1000} s`), request.timeoutMs);
    req.on('response', (res) => {
      const status = res.statusCode ?? null;
      res.resume();
      finish(status, status !== null && status >= 300 && status < 400 ? `redirect to ${res.headers.location ?? '(no location)'} not followed` : null);
    });
    req.on('error', (err: NodeJS.ErrnoException) => finish(null, err.code ? `${err.code}: ${err.message}` : err.message));
    req.end(request.body);
  });
}

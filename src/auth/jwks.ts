import { type JSONWebKeySet, type JWTVerifyGetKey, createLocalJWKSet, errors } from 'jose';

export interface JwksSource {
  getKey: JWTVerifyGetKey;
  /** Fetches the key set now; used by the health check. */
  probe(signal?: AbortSignal): Promise<void>;
}

export interface RemoteJwksOptions {
  url: string;
  fetch?: typeof globalThis.fetch;
  timeoutMs?: number;
  /** An unknown `kid` triggers at most one refetch per this window (key rotation without restart). */
  cooldownMs?: number;
  /** Known keys are refreshed in the background once older than this. */
  maxAgeMs?: number;
  /** Before any key set was loaded, a failed fetch is not retried for this long (no stampede on the issuer). */
  retryAfterFailureMs?: number;
}

/** No key set could be loaded at all: the identity provider is down, not the token bad. */
export class JwksUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`the issuer's key set is unavailable: ${reason}`);
    this.name = 'JwksUnavailableError';
  }
}

function isKeySet(value: unknown): value is JSONWebKeySet {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { keys?: unknown }).keys) &&
    (value as { keys: unknown[] }).keys.every((k) => typeof k === 'object' && k !== null)
  );
}

/**
 * A JWKS cache that keeps the last good key set when the issuer is unreachable or answers garbage,
 * so tokens signed with known keys keep verifying through an identity-provider outage.
 * jose's remote set drops to an error once its cache expires, hence this wrapper around its local set.
 */
export function createRemoteJwks(opts: RemoteJwksOptions): JwksSource {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const cooldownMs = opts.cooldownMs ?? 60_000;
  const maxAgeMs = opts.maxAgeMs ?? 10 * 60_000;
  const retryAfterFailureMs = opts.retryAfterFailureMs ?? 5_000;
  let local: JWTVerifyGetKey | undefined;
  let fetchedAt = 0;
  let lastAttempt = -Infinity;
  let inFlight: Promise<void> | undefined;
  let lastFailure: { at: number; reason: string } | undefined;

  const load = async (signal?: AbortSignal) => {
    const abort = signal ?? AbortSignal.timeout(timeoutMs);
    const get = () => doFetch(opts.url, { headers: { accept: 'application/json' }, signal: abort });
    let response: Response;
    try {
      response = await get();
    } catch (err) {
      // A pooled keep-alive connection the issuer closed while it sat idle fails at once (ECONNRESET,
      // "other side closed"): one retry on a fresh connection, unless the time is already up.
      if (abort.aborted || !(err instanceof TypeError)) throw err;
      response = await get();
    }
    if (!response.ok) throw new Error(`JWKS endpoint answered ${response.status}`);
    const body: unknown = await response.json();
    if (!isKeySet(body)) throw new Error('JWKS endpoint answered something that is not a key set');
    local = createLocalJWKSet(body);
    fetchedAt = Date.now();
  };
  const refresh = () => {
    lastAttempt = Date.now();
    inFlight ??= load().finally(() => (inFlight = undefined));
    return inFlight;
  };

  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (!local) {
      if (lastFailure && Date.now() - lastFailure.at < retryAfterFailureMs) throw new JwksUnavailableError(lastFailure.reason);
      try {
        await refresh();
      } catch (err) {
        lastFailure = { at: Date.now(), reason: (err as Error).message };
        throw new JwksUnavailableError(lastFailure.reason);
      }
    } else if (Date.now() - fetchedAt > maxAgeMs && Date.now() - lastAttempt > cooldownMs) {
      refresh().catch(() => undefined);
    }
    try {
      return await local!(header, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey && Date.now() - lastAttempt > cooldownMs) {
        await refresh().catch(() => undefined);
        return local!(header, token);
      }
      throw err;
    }
  };

  return { getKey, probe: (signal) => load(signal) };
}

/** The development issuer's keys live in memory: same verification, no HTTP round trip. */
export function createStaticJwks(keys: JSONWebKeySet): JwksSource {
  const local = createLocalJWKSet(keys);
  return { getKey: local, probe: async () => undefined };
}

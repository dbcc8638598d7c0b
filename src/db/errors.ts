/**
 * Connection errors an operator meets when DATABASE_SSL does not match what the server accepts, turned into a
 * sentence that names the setting to change. Returns undefined for every other error.
 *
 * - The server refuses TLS (a local or private-network PostgreSQL without certificates): pg reports
 *   "The server does not support SSL connections".
 * - The server requires TLS and we connected without it (DATABASE_SSL=off, or sslmode=disable, against
 *   Heroku Postgres or any hosted server): PostgreSQL answers `no pg_hba.conf entry … no encryption` (28000),
 *   or a provider's own "SSL/TLS required" / "connection is insecure" wording.
 * - The server's certificate does not verify (DATABASE_SSL=verify against Heroku's self-signed chain).
 */
export function explainDatabaseError(err: unknown): string | undefined {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  if (/does not support SSL/i.test(message)) {
    return 'the database server refuses TLS: set DATABASE_SSL=off (or sslmode=disable in DATABASE_URL) for a server on a private network';
  }
  if (/no encryption|SSL off|SSL.{0,20}required|TLS.{0,20}required|requires? (an )?(SSL|TLS|encrypt)|connection is insecure/i.test(message)) {
    return 'the database server requires TLS: unset DATABASE_SSL or set it to no-verify (Heroku Postgres) or verify (a publicly trusted certificate), and drop sslmode=disable from DATABASE_URL';
  }
  if (
    typeof code === 'string' &&
    /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|ERR_TLS_CERT_ALTNAME_INVALID)$/.test(code)
  ) {
    return `the database server's certificate did not verify (${code}): set DATABASE_SSL=no-verify for Heroku Postgres, whose certificates are not signed by a public CA`;
  }
  return undefined;
}

const DATABASE_DOWN_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03', '57014', '53300']);

/** Connection loss, a statement timeout or an exhausted pool: the request may succeed on retry. */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err as { code?: string; message?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code && (DATABASE_DOWN_CODES.has(e.code) || e.code.startsWith('08'))) return true;
    if (e.message && /timeout exceeded when trying to connect|Connection terminated|connection timeout|Client has encountered a connection error|Query read timeout/i.test(e.message)) return true;
  }
  return false;
}

import { createHash } from 'node:crypto';
import { type JWTPayload, jwtVerify } from 'jose';
import type { Role } from '../modules/users/users.domain.js';
import { type JwksSource, JwksUnavailableError } from './jwks.js';

export interface Identity {
  sub: string;
  role: Role;
  permissions: string[];
  email?: string;
  name?: string;
  emailVerified?: boolean;
  /** Seconds since epoch. */
  exp: number;
}

export class TokenError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'TokenError';
  }
}

export interface VerifierOptions {
  issuer: string;
  audience: string;
  roleClaim: string;
  jwks: JwksSource;
  cacheSize?: number;
}

export const FALLBACK_ROLE_CLAIM = 'kendalls_nails_role';
/** Anything longer is not one of our access tokens; refusing early avoids parsing attacker-sized input. */
const MAX_TOKEN_LENGTH = 8192;
const CLAIM_NAMESPACE = 'https://kendallsnails.com/';

function roleFrom(payload: JWTPayload, claim: string): Role {
  const value = payload[claim] ?? payload[FALLBACK_ROLE_CLAIM];
  const values = Array.isArray(value) ? value : [value];
  return values.includes('nail_technician') ? 'nail_technician' : 'customer';
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const value = payload[name] ?? payload[`${CLAIM_NAMESPACE}${name}`];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

export interface Verifier {
  verify(token: string): Promise<Identity>;
}

/**
 * RS256 access-token verification against the issuer's JWKS. Verified tokens are cached by hash
 * (never past their expiry) so a busy client does not cost an RSA verification per request.
 */
export function createVerifier(opts: VerifierOptions): Verifier {
  const cacheSize = opts.cacheSize ?? 10_000;
  const cache = new Map<string, Identity>();

  return {
    async verify(token: string): Promise<Identity> {
      if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('token too long');
      const hash = createHash('sha256').update(token).digest('base64url');
      const hit = cache.get(hash);
      const now = Date.now() / 1000;
      if (hit) {
        if (hit.exp > now) return hit;
        cache.delete(hash);
      }
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, opts.jwks.getKey, {
          issuer: opts.issuer,
          audience: opts.audience,
          algorithms: ['RS256'],
          clockTolerance: 60,
          requiredClaims: ['sub', 'exp'],
        }));
      } catch (err) {
        if (err instanceof JwksUnavailableError) throw err;
        const code = (err as { code?: string }).code ?? 'ERR_UNKNOWN';
        throw new TokenError(`${code}: ${(err as Error).message}`);
      }
      const identity: Identity = {
        sub: payload.sub!,
        role: roleFrom(payload, opts.roleClaim),
        permissions: Array.isArray(payload.permissions) ? payload.permissions.filter((p) => typeof p === 'string') : [],
        email: stringClaim(payload, 'email')?.toLowerCase(),
        name: stringClaim(payload, 'name'),
        emailVerified: typeof payload.email_verified === 'boolean' ? payload.email_verified : undefined,
        exp: payload.exp!,
      };
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value!);
      // Not-yet-valid tokens are accepted within tolerance, so cache only those already valid.
      if (!payload.nbf || payload.nbf <= now) cache.set(hash, identity);
      return identity;
    },
  };
}

import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type JSONWebKeySet, type JWK, SignJWT, exportJWK, generateKeyPair, importJWK } from 'jose';
import type { Role } from '../modules/users/users.domain.js';

export interface DevIssuer {
  issuer: string;
  audience: string;
  jwks: JSONWebKeySet;
  sign(claims: { sub?: string; email?: string; name?: string; role: Role }): Promise<{ token: string; expiresIn: number }>;
}

const TOKEN_TTL_S = 24 * 3600;

/**
 * Development-only token issuer: an RSA key persisted under DATA_DIR so tokens survive restarts.
 * Its tokens carry the same claims Auth0's would and go through the same verifier.
 */
export async function createDevIssuer(opts: { dataDir: string; issuer: string; audience: string; roleClaim: string }): Promise<DevIssuer> {
  const file = path.join(opts.dataDir, 'dev-issuer-key.json');
  let privateJwk: JWK;
  try {
    privateJwk = JSON.parse(await readFile(file, 'utf8')) as JWK;
  } catch {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    privateJwk = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'RS256', use: 'sig' };
    await mkdir(opts.dataDir, { recursive: true });
    await writeFile(file, JSON.stringify(privateJwk), { mode: 0o600 });
  }
  const key = await importJWK(privateJwk, 'RS256');
  const { kty, n, e, kid, alg, use } = privateJwk;
  const jwks = { keys: [{ kty, n, e, kid, alg, use }] } as JSONWebKeySet;

  return {
    issuer: opts.issuer,
    audience: opts.audience,
    jwks,
    async sign(claims) {
      const sub = claims.sub ?? `dev|${claims.email ?? randomUUID()}`;
      const token = await new SignJWT({
        [opts.roleClaim]: claims.role,
        ...(claims.email ? { email: claims.email } : {}),
        ...(claims.name ? { name: claims.name } : {}),
      })
        .setProtectedHeader({ alg: 'RS256', kid: privateJwk.kid!, typ: 'JWT' })
        .setIssuer(opts.issuer)
        .setAudience(opts.audience)
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime(`${TOKEN_TTL_S}s`)
        .sign(key);
      return { token, expiresIn: TOKEN_TTL_S };
    },
  };
}

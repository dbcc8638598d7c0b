import type { Identity } from '../../auth/verifier.js';
import type { Database } from '../../db/client.js';
import { fail } from '../../errors.js';
import { shorten, wellFormed } from '../../lib/text.js';
import type { InvitationsRepository } from '../invitations/invitations.repository.js';
import type { ProfileUpdate, UserRow, UsersRepository } from './users.repository.js';

export interface UserInfo {
  email?: string;
  emailVerified?: boolean;
  name?: string;
}

export type UserInfoFetcher = (accessToken: string) => Promise<UserInfo>;

/** Auth0's /userinfo for the same token: used only at registration (Auth0 limits it to 5 calls/minute per user). */
export function createUserInfoFetcher(issuer: string, fetchImpl: typeof fetch = fetch): UserInfoFetcher {
  return async (accessToken) => {
    let response: Response;
    try {
      response = await fetchImpl(`${issuer}userinfo`, {
        headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
        signal: AbortSignal.timeout(3000),
      });
    } catch {
      throw fail('IDENTITY_PROVIDER_ERROR', 'The identity provider did not answer. Try again shortly.');
    }
    if (!response.ok) {
      throw fail('IDENTITY_PROVIDER_ERROR', `The identity provider refused to share your profile (${response.status}). Try again shortly.`);
    }
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    return {
      email: typeof body.email === 'string' ? body.email : undefined,
      emailVerified: typeof body.email_verified === 'boolean' ? body.email_verified : undefined,
      name: typeof body.name === 'string' ? body.name : typeof body.nickname === 'string' ? body.nickname : undefined,
    };
  };
}

export interface UsersServiceDeps {
  db: Database;
  users: UsersRepository;
  /** Registration accepts a technician's pending invitation. */
  invitations: Pick<InvitationsRepository, 'accept'>;
  userInfo: UserInfoFetcher;
}

// No whitespace or control characters (NUL included: PostgreSQL text cannot hold it).
// eslint-disable-next-line no-control-regex
export const EMAIL = /^[^\s@\x00-\x1f\x7f]+@[^\s@\x00-\x1f\x7f]+\.[^\s@\x00-\x1f\x7f]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/g;

export function createUsersService({ db, users, invitations, userInfo }: UsersServiceDeps) {
  return {
    async register(identity: Identity, accessToken: string): Promise<UserRow> {
      if (await users.findByAuth0Id(identity.sub)) throw userExists();
      let { email, name, emailVerified } = identity;
      if (!email) ({ email, name = name, emailVerified } = await userInfo(accessToken));
      email = email?.trim().toLowerCase();
      if (!email || !EMAIL.test(email)) {
        throw fail('EMAIL_REQUIRED', 'Your account has no email address. Add one at sign-up, then register again.');
      }
      // The name comes from the identity provider, whose users may have typed anything into it.
      const displayName = shorten(wellFormed(name?.replace(CONTROL, '') ?? '').trim() || email.split('@')[0]!, 100, '');
      // An address the provider says is unverified proves nothing: it is not the account's email (null until
      // verified, see login), so it can neither claim someone else's address nor their technician invitation.
      // A token without the claim is trusted as before (README: the Auth0 Action adds email_verified with email).
      const verifiedEmail = emailVerified === false ? null : email;
      return db.transaction(async (tx) => {
        const row = await users.insert(
          { auth0Id: identity.sub, email: verifiedEmail, name: displayName, role: identity.role, lastLoginAt: new Date() },
          tx,
        );
        if (!row) {
          if (await users.findByAuth0Id(identity.sub, tx)) throw userExists();
          throw fail('EMAIL_IN_USE', 'Another account is already registered with this email address. Sign in with that account.');
        }
        if (row.role === 'nail_technician' && verifiedEmail) await invitations.accept(verifiedEmail, tx);
        return row;
      });
    },

    /** Records the sign-in; an account without email takes up its address once the provider has verified it (if still free). */
    async login(identity: Identity, user: UserRow): Promise<UserRow> {
      const email = identity.email?.trim().toLowerCase();
      if (!user.email && email && identity.emailVerified === true && EMAIL.test(email)) {
        try {
          return await users.recordLogin(user.id, identity.role, undefined, email);
        } catch (err) {
          // Another account registered the same address verified at this very moment: it keeps it.
          if (!isUniqueViolation(err)) throw err;
        }
      }
      return users.recordLogin(user.id, identity.role);
    },

    async updateProfile(user: UserRow, update: ProfileUpdate): Promise<UserRow> {
      return users.updateProfile(user.id, update);
    },
  };
}

function isUniqueViolation(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 3; e = e.cause as typeof e, depth++) {
    if (e.code === '23505') return true;
  }
  return false;
}

const userExists = () =>
  fail('USER_EXISTS', 'A profile already exists for this account. Use POST /api/v1/auth/login to sign in.');

export type UsersService = ReturnType<typeof createUsersService>;

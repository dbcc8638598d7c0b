import type { IdentityAdmin } from '../../auth/management.js';
import type { Database } from '../../db/client.js';
import { AppError, fail, validationError } from '../../errors.js';
import { type IdempotencyInput, runIdempotent } from '../../lib/idempotency.js';
import type { Notify } from '../notifications/outbox.js';
import type { UserRow, UsersRepository } from '../users/users.repository.js';
import { EMAIL } from '../users/users.service.js';
import type { InvitationRow, InvitationsRepository } from './invitations.repository.js';
import { type Invitation, toInvitation } from './invitations.schemas.js';

export const INVITATION_TTL_S = 7 * 24 * 3600;

export interface InvitationsServiceDeps {
  db: Database;
  invitations: InvitationsRepository;
  users: UsersRepository;
  /** Absent when the Auth0 Management API is not configured. */
  identity: IdentityAdmin | undefined;
  /** Records technician.invited with the invitation (the worker emails the address; the event never carries it). */
  notify?: Notify;
}

export interface InviteInput {
  email: string;
  name: string;
}

const notConfigured = () =>
  new AppError('IDENTITY_PROVIDER_NOT_CONFIGURED',
    'Technician invitations need the Auth0 Management API: set AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET. ' +
      'With the development token issuer, get a technician token from POST /dev/token with "role": "nail_technician" instead.',
  );

function checked(input: InviteInput): InviteInput {
  const email = input.email.trim().toLowerCase();
  const name = input.name.trim();
  const details: Record<string, string> = {};
  if (!EMAIL.test(email) || email.length > 254) details.email = 'must be an email address';
  if (!name || name.length > 100) details.name = 'must be 1 to 100 characters';
  if (Object.keys(details).length > 0) throw validationError(`Some fields are invalid: ${Object.keys(details).join(', ')}. See details.`, details);
  return { email, name };
}

/**
 * Invitations are all-or-nothing across Auth0 and our database: the Auth0 user is created first (Auth0 is
 * the authority on whether the email is taken), then its password-change ticket, then the invitation row.
 * If a later step fails, the Auth0 user this call created is deleted again, so a retry starts clean instead
 * of running into "user already exists" with no invitation to show for it.
 */
export function createInvitationsService({ db, invitations, users, identity, notify }: InvitationsServiceDeps) {
  /** A ticket for the existing Auth0 user when there is one, else a new user and its ticket. */
  async function issue(admin: IdentityAdmin, input: InviteInput, existingUserId: string | null) {
    if (existingUserId) {
      const ticketUrl = await admin.passwordChangeTicket(existingUserId, INVITATION_TTL_S);
      if (ticketUrl) return { userId: existingUserId, ticketUrl, created: false };
      // Deleted in the Auth0 dashboard since the first invitation: start over with a new user.
    }
    const userId = await admin.createTechnician(input);
    try {
      const ticketUrl = await admin.passwordChangeTicket(userId, INVITATION_TTL_S);
      if (!ticketUrl) throw fail('IDENTITY_PROVIDER_ERROR', 'The identity provider lost the new account. Try again in a minute.');
      return { userId, ticketUrl, created: true };
    } catch (err) {
      await admin.deleteUser(userId);
      throw err;
    }
  }

  async function create(admin: IdentityAdmin, raw: InviteInput, inviter: UserRow | null): Promise<InvitationRow> {
    const input = checked(raw);
    if (await users.findByEmail(input.email)) {
      throw fail('USER_EXISTS', 'Someone with this email is already registered here; a registered account cannot be invited.');
    }
    const pending = await invitations.findPendingByEmail(input.email);
    if (pending && pending.expiresAt.getTime() > Date.now()) throw alreadyInvited(pending);

    // An expired, unused invitation is renewed with a fresh ticket rather than refused forever.
    const issued = await issue(admin, input, pending?.auth0UserId ?? null);
    try {
      const values = {
        name: input.name,
        auth0UserId: issued.userId,
        ticketUrl: issued.ticketUrl,
        expiresAt: new Date(Date.now() + INVITATION_TTL_S * 1000),
        invitedById: inviter?.id ?? null,
      };
      const row = await db.transaction(async (tx) => {
        const written = pending ? await invitations.renew(pending.id, values, tx) : await invitations.insert({ email: input.email, ...values }, tx);
        if (written && notify) {
          await notify({ type: 'technician.invited', actorId: inviter?.id ?? null, data: { invitation_id: written.id, invited_by_name: inviter?.name ?? null } }, tx);
        }
        return written;
      });
      if (!row) {
        throw fail('ALREADY_INVITED', 'This person was invited or registered by someone else a moment ago. Nothing more to do.');
      }
      return row;
    } catch (err) {
      if (issued.created) await admin.deleteUser(issued.userId);
      throw err;
    }
  }

  async function view(id: string): Promise<Invitation> {
    const found = await invitations.findWithInviter(id);
    if (!found) throw new Error(`invitation ${id} vanished after it was written`);
    return toInvitation(found.invitation, found.inviter);
  }

  return {
    /**
     * Invites a technician. `inviter` is null only for the command-line tool (the very first technician);
     * a technician's request may carry an Idempotency-Key, so a retried request returns the same ticket.
     */
    async invite(input: InviteInput, inviter: UserRow | null, idem: IdempotencyInput = { key: undefined, requestHash: '' }) {
      if (!identity) throw notConfigured();
      if (!inviter) return { status: 201, replayed: false, invitation: await view((await create(identity, input, null)).id) };
      const result = await runIdempotent(
        db,
        { userId: inviter.id, key: idem.key, scope: 'POST /auth/technicians/invite', requestHash: idem.requestHash },
        () => create(identity, input, inviter),
      );
      return { status: result.status, replayed: result.replayed, invitation: await view(result.resourceId) };
    },
  };
}

function alreadyInvited(pending: InvitationRow) {
  const until = pending.expiresAt.toISOString();
  return fail(
    'ALREADY_INVITED',
    `This email already has a pending invitation, valid until ${until}. Ask them to use that link; after it expires you can invite them again.`,
    { expires_at: until },
  );
}

export type InvitationsService = ReturnType<typeof createInvitationsService>;

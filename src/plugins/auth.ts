import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { JwksUnavailableError } from '../auth/jwks.js';
import type { Identity, Verifier } from '../auth/verifier.js';
import { TokenError } from '../auth/verifier.js';
import type { Role } from '../modules/users/users.domain.js';
import { AppError, fail, serviceUnavailable, unauthorized } from '../errors.js';
import type { UserRow, UsersRepository } from '../modules/users/users.repository.js';

/**
 * Who may call a route, declared once at registration:
 * - public: anyone; a token, if sent, must be valid and identifies the caller (e.g. owners of private designs)
 * - authenticated: any valid token, with or without a profile (sign-up, my profile)
 * - customer / nail_technician: that role, with a registered profile
 */
export type Access = 'public' | 'authenticated' | Role;

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
    /**
     * `true`: a single-use `?ticket=` (modules/live) stands in for the bearer token, for browsers' EventSource,
     * which cannot send headers. Only the live stream takes one.
     */
    ticket?: true;
  }
  interface FastifyRequest {
    identity: Identity | null;
    currentUser: UserRow | null;
  }
}

const ROLE_LABEL: Record<Role, string> = { customer: 'customers', nail_technician: 'nail technicians' };

/** The caller's profile; only routes whose access requires a role are guaranteed to have one. */
export function requireUser(request: FastifyRequest): UserRow {
  if (!request.currentUser) throw userNotFound();
  return request.currentUser;
}

export const userNotFound = () =>
  fail('USER_NOT_FOUND', 'No profile exists for this account yet. Register first with POST /api/v1/auth/register.');

/** `Authorization: Bearer <token>`; the token is group 1. */
export const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+)\s*$/i;

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = BEARER.exec(header);
  if (!match) throw unauthorized('INVALID_TOKEN', 'The Authorization header must be "Bearer <access token>".');
  return match[1];
}

/** Redeems a `?ticket=` for the profile it was issued to (once); undefined when it is not valid. */
export interface TicketRedeemer {
  redeem(ticket: string): Promise<UserRow | undefined>;
}

async function authPlugin(app: FastifyInstance, opts: { verifier: Verifier; users: UsersRepository; tickets?: TicketRedeemer }) {
  app.decorateRequest('identity', null);
  app.decorateRequest('currentUser', null);

  // A route under the API without a declared access level is a bug: refuse to start rather than guess.
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (!access && (route.url.startsWith('/api/') || route.url.startsWith('/dev/'))) {
      throw new Error(`route ${route.method} ${route.url} does not declare config.access`);
    }
    // A ticket stands for a profile, not a role: a role-only route taking one would skip its role check.
    if (route.config?.ticket && access !== 'authenticated') {
      throw new Error(`route ${route.method} ${route.url} takes a ticket, which only an 'authenticated' route may`);
    }
  });

  async function authenticate(request: FastifyRequest, token: string, access: Access): Promise<void> {
    let identity: Identity;
    try {
      identity = await opts.verifier.verify(token);
    } catch (err) {
      if (err instanceof JwksUnavailableError) {
        // The token may well be valid: a 401 would make clients sign their users out during an Auth0 outage.
        request.log.warn({ reason: err.reason }, 'cannot verify access tokens: the issuer key set is unavailable');
        throw serviceUnavailable('IDENTITY_PROVIDER_UNAVAILABLE', 'Sign-in cannot be checked right now because the identity provider is unreachable. Try again in a few seconds.');
      }
      if (!(err instanceof TokenError)) throw err;
      request.log.info({ reason: err.reason }, 'access token refused');
      throw new AppError('INVALID_TOKEN', 'The access token is invalid or expired. Sign in again to get a new one.');
    }
    request.identity = identity;
    if ((access === 'customer' || access === 'nail_technician') && identity.role !== access) {
      throw fail('FORBIDDEN', `Only ${ROLE_LABEL[access]} may do this.`);
    }
    const user = await opts.users.findByAuth0Id(identity.sub);
    if (!user && (access === 'customer' || access === 'nail_technician')) throw userNotFound();
    // The token's role claim is authoritative (SPEC §2); the stored role catches up at the next sign-in.
    request.currentUser = user && user.role !== identity.role ? { ...user, role: identity.role } : (user ?? null);
  }

  async function redeemTicket(request: FastifyRequest, ticket: string): Promise<void> {
    const user = await opts.tickets!.redeem(ticket);
    if (!user) {
      request.log.info('stream ticket refused');
      throw fail('INVALID_STREAM_TICKET', 'The stream ticket is unknown, expired or already used. Get a new one from POST /api/v1/stream/tickets.');
    }
    request.currentUser = user;
  }

  // A callback hook, not an async one: most requests to public routes carry no token and should not pay
  // for a promise and a microtask turn on the way through.
  app.addHook('onRequest', (request, _reply, done) => {
    const config = request.routeOptions.config;
    const access = config.access ?? 'public';
    let token: string | undefined;
    try {
      token = bearerToken(request);
    } catch (err) {
      done(err as FastifyError);
      return;
    }
    if (!token) {
      const ticket = opts.tickets && config.ticket ? (request.query as { ticket?: unknown }).ticket : undefined;
      if (typeof ticket === 'string') {
        redeemTicket(request, ticket).then(() => done(), (err: FastifyError) => done(err));
        return;
      }
      done(access === 'public' ? undefined : (unauthorized() as unknown as FastifyError));
      return;
    }
    authenticate(request, token, access).then(() => done(), (err: FastifyError) => done(err));
  });
}

export default fp(authPlugin, { name: 'auth' });

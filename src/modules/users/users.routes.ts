import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { requireUser } from '../../plugins/auth.js';
import { Envelope, errorResponses, ok } from '../../lib/envelope.js';
import { ProfileBody, UserSchema, toUser } from './users.schemas.js';
import type { UsersService } from './users.service.js';

const UserEnvelope = Envelope(Type.Ref('User'));

export const usersRoutes: FastifyPluginAsyncTypebox<{ users: UsersService; unreadNotifications?: (userId: string) => Promise<number> }> = async (
  app,
  { users, unreadNotifications },
) => {
  app.addSchema(UserSchema);

  const register = {
    schema: {
      tags: ['auth'],
      operationId: 'register',
      summary: 'Create my profile from my access token',
      description:
        'Email and name come from the token claims, or from the identity provider\'s /userinfo with the same token. ' +
        'An email the provider marks unverified (email_verified false) is not stored: `email` is null until a later sign-in ' +
        'with it verified, so an unverified sign-up never holds another person\'s address. 409 USER_EXISTS when a profile exists.',
      response: { 201: UserEnvelope, ...errorResponses(400, 401, 409, 502) },
    },
    config: { access: 'authenticated' as const, errors: ['EMAIL_REQUIRED', 'USER_EXISTS', 'EMAIL_IN_USE', 'IDENTITY_PROVIDER_ERROR'] as const },
  };
  const registerHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    const token = request.headers.authorization!.replace(/^Bearer +/i, '').trim();
    const user = await users.register(request.identity!, token);
    return reply.code(201).send(ok(toUser(user), 'Profile created.'));
  };
  app.post('/api/v1/auth/register', register, registerHandler);
  app.post('/api/v1/users', { ...register, schema: { ...register.schema, tags: ['users'], operationId: 'createUser', summary: 'Create my profile (same as POST /api/v1/auth/register)' } }, registerHandler);

  app.post(
    '/api/v1/auth/login',
    {
      schema: {
        tags: ['auth'],
        operationId: 'login',
        summary: 'My profile, with this sign-in recorded',
        description: 'Call after each sign-in: records it (last_login_at) and returns my profile. 404 USER_NOT_FOUND until I have registered.',
        response: { 200: UserEnvelope, ...errorResponses(401, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND'] },
    },
    async (request) => ok(toUser(await users.login(request.identity!, requireUser(request)))),
  );

  app.post(
    '/api/v1/auth/logout',
    {
      schema: {
        tags: ['auth'],
        operationId: 'logout',
        summary: 'Sign out',
        description: 'Access tokens are stateless and simply expire; the client discards its token. Always 204.',
        response: { 204: Type.Null(), ...errorResponses(401) },
      },
      config: { access: 'authenticated' },
    },
    async (_request, reply) => reply.code(204).send(null),
  );

  app.get(
    '/api/v1/users/me',
    {
      schema: {
        tags: ['users'],
        operationId: 'getMyProfile',
        summary: 'My profile',
        description: 'The profile of the signed-in user, with `unread_notifications`; 404 USER_NOT_FOUND until they have registered.',
        response: { 200: UserEnvelope, ...errorResponses(401, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND'] },
    },
    async (request) => {
      const user = requireUser(request);
      return ok(unreadNotifications ? { ...toUser(user), unread_notifications: await unreadNotifications(user.id) } : toUser(user));
    },
  );

  app.put(
    '/api/v1/users/me',
    {
      schema: {
        tags: ['users'],
        operationId: 'updateMyProfile',
        summary: 'Replace my profile',
        description:
          'Replaces name, phone, shipping address, nail sizes and preferred shape and length; fields left out become null. ' +
          'Read-only fields (id, email, role, timestamps) may be sent back as received and are ignored.',
        body: ProfileBody,
        response: { 200: UserEnvelope, ...errorResponses(400, 401, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND'] },
    },
    async (request) => {
      const body = request.body;
      const user = await users.updateProfile(requireUser(request), {
        name: body.name.trim(),
        phone: body.phone ?? null,
        shippingAddress: body.shipping_address ?? null,
        nailSizes: body.nail_sizes ?? null,
        preferredShape: body.preferred_shape ?? null,
        preferredLength: body.preferred_length ?? null,
      });
      return ok(toUser(user), 'Profile saved.');
    },
  );
};

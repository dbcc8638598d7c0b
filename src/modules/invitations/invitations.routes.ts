import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Envelope, errorResponses } from '../../lib/envelope.js';
import { IdempotencyHeaders, idempotencyOf, sendCreated } from '../../lib/idempotency.js';
import { requireUser } from '../../plugins/auth.js';
import { InvitationSchema, InviteBody } from './invitations.schemas.js';
import type { InvitationsService } from './invitations.service.js';

export const invitationsRoutes: FastifyPluginAsyncTypebox<{ invitations: InvitationsService }> = async (app, { invitations }) => {
  app.addSchema(InvitationSchema);

  app.post(
    '/api/v1/auth/technicians/invite',
    {
      schema: {
        tags: ['auth'],
        operationId: 'inviteTechnician',
        summary: 'Invite a nail technician',
        description:
          'Creates the person in Auth0 (database connection AUTH0_CONNECTION, role nail_technician in app_metadata, a random ' +
          'password nobody knows) and a password-change ticket valid 7 days. Auth0 does not email the ticket: pass `ticket_url` ' +
          'on to the invitee, who sets a password there, signs in and registers; the invitation then becomes `accepted`. ' +
          '409 USER_EXISTS when the email is registered here or already has an Auth0 account; 409 ALREADY_INVITED while an ' +
          'earlier invitation is pending (an expired one is renewed with a new ticket). 502 IDENTITY_PROVIDER_ERROR when ' +
          'Auth0 fails after the SDK\'s retries: nothing is kept, on either side. 503 IDENTITY_PROVIDER_NOT_CONFIGURED when ' +
          'the Management API credentials are not set (development with the local token issuer: use POST /dev/token with ' +
          'role nail_technician instead). Accepts Idempotency-Key, so a retried request returns the same ticket.',
        headers: IdempotencyHeaders,
        body: InviteBody,
        response: {
          201: Envelope(Type.Ref('Invitation')),
          ...errorResponses(400, 401, 403, 404, 409, 422, 502, 503),
        },
      },
      config: { access: 'nail_technician', errors: ['USER_EXISTS', 'ALREADY_INVITED', 'IDENTITY_PROVIDER_ERROR', 'IDENTITY_PROVIDER_NOT_CONFIGURED'] },
    },
    async (request, reply) => {
      const result = await invitations.invite(request.body, requireUser(request), idempotencyOf(request, request.body));
      return sendCreated(reply, result, result.invitation, 'Invitation created. Send the ticket URL to the new technician.');
    },
  );
};

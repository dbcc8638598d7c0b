import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ROLES } from '../modules/users/users.domain.js';
import { Envelope, errorResponses, ok } from '../lib/envelope.js';
import type { DevIssuer } from './dev-issuer.js';

/** Only registered when the development issuer is active (never in staging or production). */
export const devIssuerRoutes: FastifyPluginAsyncTypebox<{ issuer: DevIssuer }> = async (app, { issuer }) => {
  app.get('/.well-known/jwks.json', { schema: { hide: true }, config: { access: 'public' } }, async () => issuer.jwks);

  app.post(
    '/dev/token',
    {
      schema: {
        tags: ['development'],
        operationId: 'issueDevToken',
        summary: 'Issue a development access token',
        description:
          'Exists only in development without Auth0. Tokens are RS256, valid 24 h, and verified exactly like Auth0 tokens. ' +
          'The same email gives the same subject, so a token can be re-issued for the same user.',
        body: Type.Object(
          {
            role: Type.Union(ROLES.map((r) => Type.Literal(r))),
            email: Type.String({ format: 'email', maxLength: 254 }),
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            sub: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          {
            additionalProperties: false,
            // The /docs page's "Test Request" starts from this body, so one click gives a working token.
            examples: [{ role: 'customer', email: 'ana@example.com', name: 'Ana' }],
          },
        ),
        response: {
          200: Envelope(
            Type.Object({ access_token: Type.String(), token_type: Type.Literal('Bearer'), expires_in: Type.Integer() }),
          ),
          ...errorResponses(400),
        },
      },
      config: { access: 'public' },
    },
    async (request) => {
      const { role, email, name, sub } = request.body;
      const { token, expiresIn } = await issuer.sign({ role, email: email.toLowerCase(), name, sub });
      return ok({ access_token: token, token_type: 'Bearer' as const, expires_in: expiresIn });
    },
  );
};

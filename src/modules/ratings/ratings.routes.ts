import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Envelope, IdParams, Nullable, errorResponses, ok } from '../../lib/envelope.js';
import { requireUser } from '../../plugins/auth.js';
import { RATING_COMMENT_MAX_LENGTH, RATING_EDITABLE_DAYS, RATING_STARS } from './ratings.domain.js';
import type { RatingsService } from './ratings.service.js';

const RatingSchema = Type.Object(
  {
    order_id: Type.String({ format: 'uuid' }),
    stars: Type.Integer(),
    comment: Nullable(Type.String()),
    editable_until: Type.String({ format: 'date-time' }),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Rating', title: 'Rating' },
);

const RatingBody = Type.Object(
  {
    stars: Type.Integer({ minimum: RATING_STARS.min, maximum: RATING_STARS.max, description: `${RATING_STARS.min}–${RATING_STARS.max}` }),
    comment: Type.Optional(Type.String({ maxLength: RATING_COMMENT_MAX_LENGTH })),
  },
  { additionalProperties: false },
);

const RatingSummary = Type.Object({
  average: Nullable(Type.Number({ description: 'Average stars, to two decimals; null before the first rating' })),
  count: Type.Integer(),
});

export const ratingsRoutes: FastifyPluginAsyncTypebox<{ ratings: RatingsService }> = async (app, { ratings }) => {
  app.addSchema(RatingSchema);

  app.put(
    '/api/v1/orders/:id/rating',
    {
      schema: {
        tags: ['orders'],
        operationId: 'rateOrder',
        summary: 'Rate my delivered order',
        description:
          `The order's customer, once it is delivered (earlier → 422 INVALID_STATE): ${RATING_STARS.min}–${RATING_STARS.max} stars and an optional comment. ` +
          `One rating per order; calling again changes it for ${RATING_EDITABLE_DAYS} days (then 422 RATING_LOCKED). Others' orders → 404.`,
        params: IdParams,
        body: RatingBody,
        response: { 200: Envelope(Type.Ref('Rating')), ...errorResponses(400, 401, 403, 404, 422) },
      },
      config: { access: 'customer', errors: ['ORDER_NOT_FOUND', 'INVALID_STATE', 'RATING_LOCKED'] },
    },
    async (request) => ok(await ratings.rate(requireUser(request), request.params.id, request.body.stars, request.body.comment)),
  );

  app.get(
    '/api/v1/users/me/ratings',
    {
      schema: {
        tags: ['users'],
        operationId: 'getMyRatings',
        summary: 'My average rating as a technician',
        description: 'Technicians only: the average and number of ratings customers gave their delivered orders.',
        response: { 200: Envelope(RatingSummary), ...errorResponses(401, 403) },
      },
      config: { access: 'nail_technician' },
    },
    async (request) => ok(await ratings.technicianSummary(requireUser(request))),
  );
};

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Envelope, IdParams, PageEnvelope, PageQuery, errorResponses, ok, okPage, pageInfo, paging } from '../../lib/envelope.js';
import { requireUser } from '../../plugins/auth.js';
import { DesignSchema, GalleryQuery, InspirationSchema, VisibilityBody } from './designs.schemas.js';
import type { DesignsService } from './designs.service.js';

export const designsRoutes: FastifyPluginAsyncTypebox<{ designs: DesignsService }> = async (app, { designs }) => {
  app.addSchema(DesignSchema);
  app.addSchema(InspirationSchema);

  app.get(
    '/api/v1/designs',
    {
      schema: {
        tags: ['designs'],
        operationId: 'listDesigns',
        summary: 'The public gallery',
        description: 'Public designs that were not removed. Anyone may browse; owners are shown by display name only.',
        querystring: GalleryQuery,
        response: { 200: PageEnvelope(Type.Ref('Design')), ...errorResponses(400) },
      },
      config: { access: 'public' },
    },
    async (request) => {
      const { page, limit, offset } = paging(request.query);
      const sort = (request.query.sort ?? '-published_at').slice(1) as 'published_at' | 'reuse_count' | 'comment_count';
      const { items, total } = await designs.gallery({ search: request.query.search?.trim() || undefined, sort, limit, offset });
      return okPage(items, pageInfo(page, limit, total));
    },
  );

  app.get(
    '/api/v1/designs/:id',
    {
      schema: {
        tags: ['designs'],
        operationId: 'getDesign',
        summary: 'One design',
        description: 'Public designs for anyone; the owner (signed in) also sees their private ones. Removed or private designs of others → 404.',
        params: IdParams,
        response: { 200: Envelope(Type.Ref('Design')), ...errorResponses(400, 401, 404) },
      },
      config: { access: 'public', errors: ['DESIGN_NOT_FOUND'] },
    },
    async (request) => ok(await designs.get(request.params.id, request.currentUser)),
  );

  app.put(
    '/api/v1/designs/:id/visibility',
    {
      schema: {
        tags: ['designs'],
        operationId: 'setDesignVisibility',
        summary: 'Share or hide my design',
        description: '`published_at` is set the first time a design becomes public. Not the owner, or removed → 404.',
        params: IdParams,
        body: VisibilityBody,
        response: { 200: Envelope(Type.Ref('Design')), ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'customer', errors: ['DESIGN_NOT_FOUND'] },
    },
    async (request) => ok(await designs.setVisibility(requireUser(request), request.params.id, request.body.is_public)),
  );

  app.delete(
    '/api/v1/designs/:id',
    {
      schema: {
        tags: ['designs'],
        operationId: 'deleteDesign',
        summary: 'Remove my design from the gallery for good',
        description: 'A soft delete: gone from the gallery and from reuse; the order and its image stay. Not the owner, or already removed → 404.',
        params: IdParams,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'customer', errors: ['DESIGN_NOT_FOUND'] },
    },
    async (request, reply) => {
      await designs.remove(requireUser(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/v1/designs/:id/inspiration',
    {
      schema: {
        tags: ['designs'],
        operationId: 'listDesignReuses',
        summary: 'Who reused my design, newest first',
        description: 'Owner only (others → 404). Display names and dates; never emails.',
        params: IdParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: PageEnvelope(Type.Ref('InspirationEntry')), ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'customer', errors: ['DESIGN_NOT_FOUND'] },
    },
    async (request) => {
      const { page, limit, offset } = paging(request.query);
      const { items, total } = await designs.inspiration(requireUser(request), request.params.id, limit, offset);
      return okPage(items, pageInfo(page, limit, total));
    },
  );
};

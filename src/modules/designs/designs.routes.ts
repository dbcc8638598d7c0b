import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Envelope, IdParams, PageEnvelope, PageQuery, errorResponses, ok, okPage, pageInfo, paging } from '../../lib/envelope.js';
import { requireUser } from '../../plugins/auth.js';
import type { GallerySort } from './designs.repository.js';
import { DesignSchema, GalleryQuery, InspirationSchema, TagsBody, VisibilityBody } from './designs.schemas.js';
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
      const { search, shape, length, tag } = request.query;
      const sort = (request.query.sort ?? '-published_at').slice(1) as GallerySort;
      const { items, total } = await designs.gallery({ search: search?.trim() || undefined, shape, length, tag, sort, limit, offset });
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

  app.put(
    '/api/v1/designs/:id/favourite',
    {
      schema: {
        tags: ['designs'],
        operationId: 'favouriteDesign',
        summary: 'Favourite a gallery design',
        description: 'Customers only. Idempotent: favouriting it again changes nothing. Private, removed or unknown designs → 404.',
        params: IdParams,
        response: { 200: Envelope(Type.Ref('Design')), ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'customer', errors: ['DESIGN_NOT_FOUND'] },
    },
    async (request) => ok(await designs.favourite(requireUser(request), request.params.id)),
  );

  app.delete(
    '/api/v1/designs/:id/favourite',
    {
      schema: {
        tags: ['designs'],
        operationId: 'unfavouriteDesign',
        summary: 'Remove a design from my favourites',
        description: 'Idempotent: 204 whether or not it was a favourite. A favourite is removed even after the design left the gallery; otherwise private, removed or unknown designs → 404.',
        params: IdParams,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'customer', errors: ['DESIGN_NOT_FOUND'] },
    },
    async (request, reply) => {
      await designs.unfavourite(requireUser(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/v1/users/me/favourites',
    {
      schema: {
        tags: ['designs'],
        operationId: 'listMyFavourites',
        summary: 'My favourite designs, most recently favourited first',
        description: 'Customers only. Designs that have since left the gallery are not listed.',
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: PageEnvelope(Type.Ref('Design')), ...errorResponses(400, 401, 403) },
      },
      config: { access: 'customer' },
    },
    async (request) => {
      const { page, limit, offset } = paging(request.query);
      const { items, total } = await designs.favourites(requireUser(request), limit, offset);
      return okPage(items, pageInfo(page, limit, total));
    },
  );

  app.put(
    '/api/v1/designs/:id/tags',
    {
      schema: {
        tags: ['designs'],
        operationId: 'setDesignTags',
        summary: 'Tag my design',
        description: 'Replaces the design’s free tags. Not the owner, or removed → 404.',
        params: IdParams,
        body: TagsBody,
        response: { 200: Envelope(Type.Ref('Design')), ...errorResponses(400, 401, 403, 404) },
      },
      config: { access: 'customer', errors: ['DESIGN_NOT_FOUND'] },
    },
    async (request) => ok(await designs.setTags(requireUser(request), request.params.id, request.body.tags)),
  );
};

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AppError, fail } from '../errors.js';
import { errorResponses } from '../lib/envelope.js';
import type { LocalStorage } from './local.js';

/** Serves locally stored images behind signed, expiring links (the embedded stand-in for S3 presigned URLs). */
export const filesRoutes: FastifyPluginAsyncTypebox<{ storage: LocalStorage }> = async (app, { storage }) => {
  app.get(
    '/api/v1/files/*',
    {
      schema: {
        tags: ['files'],
        operationId: 'getFile',
        summary: 'A stored image, through a signed link',
        description: 'Only with the `expires` and `signature` of a link the API handed out; links last one hour.',
        querystring: Type.Object({ expires: Type.Optional(Type.String()), signature: Type.Optional(Type.String()) }, { additionalProperties: false }),
        response: {
          200: {
            description: 'The image, as stored',
            content: {
              'image/png': { schema: Type.String({ format: 'binary' }) },
              'image/webp': { schema: Type.String({ format: 'binary' }) },
            },
          },
          ...errorResponses(403, 404),
        },
      },
      config: { access: 'public', rateLimit: false, errors: ['LINK_EXPIRED', 'INVALID_SIGNATURE', 'FILE_NOT_FOUND'] },
      // The front end (another origin) shows these in <img>; helmet's default same-origin CORP would block that.
      helmet: { crossOriginResourcePolicy: { policy: 'cross-origin' } },
    },
    async (request, reply) => {
      const key = (request.params as { '*': string })['*'];
      const verdict = storage.verify(key, request.query.expires, request.query.signature);
      if (verdict === 'expired') throw new AppError('LINK_EXPIRED', 'This image link has expired. Load the order or design again for a fresh link.');
      if (verdict === 'invalid') throw new AppError('INVALID_SIGNATURE', 'This image link is not valid. Use the link exactly as the API returned it.');
      const file = storage.resolve(key)!;
      const info = await stat(file).catch(() => undefined);
      if (!info?.isFile()) throw fail('FILE_NOT_FOUND', 'The image no longer exists.');
      const remaining = Math.max(0, Number(request.query.expires) - Math.floor(Date.now() / 1000));
      return reply
        .header('content-type', key.endsWith('.webp') ? 'image/webp' : 'image/png')
        .header('content-length', info.size)
        .header('cache-control', `private, max-age=${remaining}`)
        .header('x-content-type-options', 'nosniff')
        .send(createReadStream(file) as unknown as string); // the 200's schema describes these bytes (binary)
    },
  );
};

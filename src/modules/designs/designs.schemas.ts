import { Type } from 'typebox';
import { Nullable, PageQuery } from '../../lib/envelope.js';

const DateTime = Type.String({ format: 'date-time' });

export const DesignSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    order_id: Type.String({ format: 'uuid' }),
    owner: Type.Ref('UserSummary'),
    description: Type.String(),
    is_public: Type.Boolean(),
    image_url: Type.String({ description: 'Signed link, valid for at least an hour (the same link for five minutes, so browsers can cache the image)' }),
    thumbnail_url: Type.String({ description: 'Signed link to a 320-px WebP thumbnail, valid for at least an hour' }),
    reuse_count: Type.Integer(),
    comment_count: Type.Integer(),
    published_at: Nullable(DateTime),
    created_at: DateTime,
  },
  { $id: 'Design', title: 'Design' },
);

export const InspirationSchema = Type.Object(
  {
    user: Type.Ref('UserSummary'),
    order_id: Type.String({ format: 'uuid', description: 'The order that reused the design (shown to its owner only)' }),
    created_at: DateTime,
  },
  { $id: 'InspirationEntry', title: 'InspirationEntry' },
);

export const GalleryQuery = Type.Object(
  {
    ...PageQuery,
    search: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Words in the description (full-text, English stemming)' })),
    sort: Type.Optional(
      Type.Union([Type.Literal('-published_at'), Type.Literal('-reuse_count'), Type.Literal('-comment_count')], {
        default: '-published_at',
        description: 'Newest first (default), most reused, or most commented',
      }),
    ),
  },
  { additionalProperties: false },
);

export const VisibilityBody = Type.Object({ is_public: Type.Boolean() }, { additionalProperties: false });

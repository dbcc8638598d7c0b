import { Type } from 'typebox';
import { Nullable, PageQuery } from '../../lib/envelope.js';
import { LengthSchema, ShapeSchema } from '../users/users.schemas.js';
import { DESIGN_TAGS_MAX, DESIGN_TAG_MAX_LENGTH, DESIGN_TAG_MIN_LENGTH, DESIGN_TAG_PATTERN } from './designs.domain.js';

const Tag = Type.String({
  minLength: DESIGN_TAG_MIN_LENGTH,
  maxLength: DESIGN_TAG_MAX_LENGTH,
  pattern: DESIGN_TAG_PATTERN,
  description: `Lowercase letters, digits and inner hyphens, ${DESIGN_TAG_MIN_LENGTH}–${DESIGN_TAG_MAX_LENGTH} characters`,
});

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
    favourite_count: Type.Integer({ description: 'How many customers keep it among their favourites' }),
    ordered_count: Type.Integer({ description: 'Paid orders made from it or from any design derived from it (reuses of reuses included)' }),
    root_design_id: Nullable(Type.String({ format: 'uuid', description: 'The original design its lineage goes back to (null for an original)' })),
    parent_design_id: Nullable(Type.String({ format: 'uuid', description: 'The gallery design its order reused (null for an original)' })),
    shape: Nullable(ShapeSchema),
    length: Nullable(LengthSchema),
    tags: Type.Array(Type.String(), { description: `Up to ${DESIGN_TAGS_MAX} free tags from the owner` }),
    rating_average: Nullable(Type.Number({ description: 'Average stars of the delivered orders made from it (its own, its reuses and theirs down the whole lineage), to two decimals' })),
    rating_count: Type.Integer(),
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
    paid_at: Nullable({ ...DateTime, description: 'When that order was paid: null while it is not (no price is shown)' }),
  },
  { $id: 'InspirationEntry', title: 'InspirationEntry' },
);

export const GalleryQuery = Type.Object(
  {
    ...PageQuery,
    search: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Words in the description (full-text, English stemming)' })),
    shape: Type.Optional(ShapeSchema),
    length: Type.Optional(LengthSchema),
    tag: Type.Optional({ ...Tag, description: 'Only designs carrying this tag' }),
    sort: Type.Optional(
      Type.Union([Type.Literal('-published_at'), Type.Literal('-reuse_count'), Type.Literal('-comment_count'), Type.Literal('-favourite_count'), Type.Literal('-ordered_count')], {
        default: '-published_at',
        description: 'Newest first (default), most reused, most commented, most favourited, or most ordered (paid orders down its lineage)',
      }),
    ),
  },
  { additionalProperties: false },
);

export const VisibilityBody = Type.Object({ is_public: Type.Boolean() }, { additionalProperties: false });

export const TagsBody = Type.Object(
  { tags: Type.Array(Tag, { maxItems: DESIGN_TAGS_MAX, description: `The design's tags, replacing the previous ones (at most ${DESIGN_TAGS_MAX}; duplicates count once)` }) },
  { additionalProperties: false },
);

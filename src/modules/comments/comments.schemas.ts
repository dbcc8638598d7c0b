import { Type } from 'typebox';
import { COMMENT_MAX_LENGTH } from './comments.domain.js';

export const CommentSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    design_id: Type.String({ format: 'uuid' }),
    author: Type.Ref('UserSummary'),
    text: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Comment', title: 'Comment' },
);

export const CommentBody = Type.Object({ text: Type.String({ minLength: 1, maxLength: COMMENT_MAX_LENGTH }) }, { additionalProperties: false });

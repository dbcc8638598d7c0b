import { Type } from 'typebox';
import { Nullable, PageQuery, Uuid } from '../../lib/envelope.js';
import { MODERATION_NOTE_MAX_LENGTH, REPORT_REASONS, REPORT_STATUSES, REPORT_TEXT_MAX_LENGTH } from './moderation.domain.js';

const DateTime = Type.String({ format: 'date-time' });

export const ReportBody = Type.Object(
  {
    reason: Type.Union(REPORT_REASONS.map((r) => Type.Literal(r)), { description: 'Why the item should not be in the gallery' }),
    text: Type.Optional(Type.String({ maxLength: REPORT_TEXT_MAX_LENGTH, description: 'What is wrong, in your words (required for `other`)' })),
  },
  { additionalProperties: false },
);

export const ReportSchema = Type.Object(
  {
    id: Uuid,
    design_id: Uuid,
    comment_id: Nullable(Uuid),
    reason: Type.String(),
    text: Nullable(Type.String()),
    status: Type.String({ description: `One of ${REPORT_STATUSES.join(', ')}` }),
    created_at: DateTime,
  },
  { $id: 'Report', title: 'Report' },
);

export const QueuedReportSchema = Type.Object(
  {
    ...ReportSchema.properties,
    reporter: Type.Ref('UserSummary'),
    comment_text: Nullable(Type.String({ description: 'The reported comment’s text (null for a design)' })),
    item_hidden: Type.Boolean({ description: 'Whether the item is hidden now (by a technician or by three open reports)' }),
  },
  { $id: 'QueuedReport', title: 'QueuedReport' },
);

export const QueueQuery = Type.Object(
  {
    ...PageQuery,
    status: Type.Optional(Type.Union(REPORT_STATUSES.map((s) => Type.Literal(s)), { default: 'open', description: 'Open (default), upheld or dismissed' })),
  },
  { additionalProperties: false },
);

export const DecisionBody = Type.Object(
  {
    action: Type.Union([Type.Literal('hide'), Type.Literal('restore')]),
    note: Type.String({ minLength: 1, maxLength: MODERATION_NOTE_MAX_LENGTH, description: 'Why, for the audit trail' }),
  },
  { additionalProperties: false },
);

export const DecisionSchema = Type.Object(
  {
    id: Uuid,
    design_id: Uuid,
    comment_id: Nullable(Uuid),
    action: Type.String({ description: 'hide or restore' }),
    note: Type.String(),
    moderator: Type.Ref('UserSummary'),
    reports_closed: Type.Integer({ description: 'Open reports this decision closed (upheld on hide, dismissed on restore)' }),
    created_at: DateTime,
  },
  { $id: 'ModerationDecision', title: 'ModerationDecision' },
);

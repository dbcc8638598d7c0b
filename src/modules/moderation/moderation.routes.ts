import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Envelope, IdParams, PageEnvelope, Uuid, errorResponses, ok, okPage, pageInfo, paging } from '../../lib/envelope.js';
import { requireUser } from '../../plugins/auth.js';
import { AUTO_HIDE_REPORTS } from './moderation.domain.js';
import { DecisionBody, DecisionSchema, QueueQuery, QueuedReportSchema, ReportBody, ReportSchema } from './moderation.schemas.js';
import type { ModerationService } from './moderation.service.js';

const CommentParams = Type.Object({ id: Uuid, commentId: Uuid }, { additionalProperties: false });
const hidden = 'A hidden item leaves the gallery, search, reuse and comment lists exactly as a removed one does.';

export const moderationRoutes: FastifyPluginAsyncTypebox<{ moderation: ModerationService }> = async (app, { moderation }) => {
  app.addSchema(ReportSchema);
  app.addSchema(QueuedReportSchema);
  app.addSchema(DecisionSchema);

  const reportDescription = (what: string) =>
    `Any signed-in user, once per ${what} (again → 409 ALREADY_REPORTED). ${AUTO_HIDE_REPORTS} open reports from different users hide it until a technician reviews it. ${hidden}`;

  app.post(
    '/api/v1/designs/:id/reports',
    {
      schema: {
        tags: ['moderation'],
        operationId: 'reportDesign',
        summary: 'Report a public design',
        description: `${reportDescription('design')} Private, removed, hidden or unknown designs → 404.`,
        params: IdParams,
        body: ReportBody,
        response: { 201: Envelope(Type.Ref('Report')), ...errorResponses(400, 401, 404, 409) },
      },
      config: { access: 'authenticated', errors: ['DESIGN_NOT_FOUND', 'COMMENT_NOT_FOUND', 'ALREADY_REPORTED'] },
    },
    async (request, reply) => {
      const { reason, text } = request.body;
      const report = await moderation.report(requireUser(request), { designId: request.params.id, commentId: null }, reason, text);
      return reply.code(201).send({ success: true, data: report });
    },
  );

  app.post(
    '/api/v1/designs/:id/comments/:commentId/reports',
    {
      schema: {
        tags: ['moderation'],
        operationId: 'reportComment',
        summary: 'Report a comment',
        description: `${reportDescription('comment')} Deleted, hidden or unknown comments, or comments on designs not in the gallery → 404.`,
        params: CommentParams,
        body: ReportBody,
        response: { 201: Envelope(Type.Ref('Report')), ...errorResponses(400, 401, 404, 409) },
      },
      config: { access: 'authenticated', errors: ['DESIGN_NOT_FOUND', 'COMMENT_NOT_FOUND', 'ALREADY_REPORTED'] },
    },
    async (request, reply) => {
      const { reason, text } = request.body;
      const item = { designId: request.params.id, commentId: request.params.commentId };
      const report = await moderation.report(requireUser(request), item, reason, text);
      return reply.code(201).send({ success: true, data: report });
    },
  );

  app.get(
    '/api/v1/moderation/reports',
    {
      schema: {
        tags: ['moderation'],
        operationId: 'listModerationReports',
        summary: 'The moderation queue, oldest first',
        description: 'Technicians only. Open reports by default; `status` shows the upheld or dismissed ones.',
        querystring: QueueQuery,
        response: { 200: PageEnvelope(Type.Ref('QueuedReport')), ...errorResponses(400, 401, 403) },
      },
      config: { access: 'nail_technician' },
    },
    async (request) => {
      const { page, limit, offset } = paging(request.query);
      const { items, total } = await moderation.queue(request.query.status ?? 'open', limit, offset);
      return okPage(items, pageInfo(page, limit, total));
    },
  );

  const decisionSchema = (what: 'design' | 'comment', params: typeof IdParams | typeof CommentParams) => ({
    tags: ['moderation'],
    operationId: what === 'design' ? 'moderateDesign' : 'moderateComment',
    summary: `Hide or restore a ${what}`,
    description:
      `Technicians only, with a note; every decision is recorded. Hiding upholds the ${what}’s open reports, restoring dismisses them. ${hidden} ` +
      `Unknown${what === 'design' ? ' or owner-removed designs' : ' or author-deleted comments'} → 404.`,
    params,
    body: DecisionBody,
    response: { 200: Envelope(Type.Ref('ModerationDecision')), ...errorResponses(400, 401, 403, 404) },
  });

  app.put('/api/v1/moderation/designs/:id', { schema: decisionSchema('design', IdParams), config: { access: 'nail_technician', errors: ['DESIGN_NOT_FOUND'] } }, async (request) => {
    const params = request.params as { id: string };
    const { action, note } = request.body as { action: 'hide' | 'restore'; note: string };
    return ok(await moderation.moderate(requireUser(request), { designId: params.id, commentId: null }, action, note));
  });

  app.put(
    '/api/v1/moderation/designs/:id/comments/:commentId',
    { schema: decisionSchema('comment', CommentParams), config: { access: 'nail_technician', errors: ['DESIGN_NOT_FOUND', 'COMMENT_NOT_FOUND'] } },
    async (request) => {
      const params = request.params as { id: string; commentId: string };
      const { action, note } = request.body as { action: 'hide' | 'restore'; note: string };
      return ok(await moderation.moderate(requireUser(request), { designId: params.id, commentId: params.commentId }, action, note));
    },
  );
};

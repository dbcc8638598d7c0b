import type { Database, Executor } from '../../db/client.js';
import { fail } from '../../errors.js';
import type { DesignsRepository } from '../designs/designs.repository.js';
import type { UserRow } from '../users/users.repository.js';
import { AUTO_HIDE_REPORTS, type ReportReason, type ReportStatus } from './moderation.domain.js';
import type { Item, ModerationRepository, ReportRow } from './moderation.repository.js';

const notShown = (item: Item) =>
  item.commentId ? fail('COMMENT_NOT_FOUND', 'No such comment on a design in the gallery.') : fail('DESIGN_NOT_FOUND', 'No such design in the gallery.');

const renderReport = (r: ReportRow) => ({
  id: r.id,
  design_id: r.designId,
  comment_id: r.commentId,
  reason: r.reason,
  text: r.text,
  status: r.status,
  created_at: r.createdAt.toISOString(),
});

/**
 * Reports and moderation (issue 19). A hidden item leaves the gallery, search, reuse and comment lists
 * exactly as a removed one does (designs: `inGallery`; comments: the list's filter and comment_count).
 */
export function createModerationService(deps: {
  db: Database;
  moderation: ModerationRepository;
  /** A hidden or restored comment leaves or rejoins its design's comment_count, in the decision's transaction. */
  designCounts: Pick<DesignsRepository, 'shiftCommentCount'>;
}) {
  const { db, moderation } = deps;

  /** Hides or restores, closes the item's open reports and records the decision, in the caller's transaction. */
  async function decide(tx: Executor, item: Item, moderatorId: string | null, hide: boolean, note: string) {
    const changed = await moderation.setHidden(item, hide, tx);
    if (changed && item.commentId) await deps.designCounts.shiftCommentCount(item.designId, hide ? -1 : 1, tx);
    // An automatic hide leaves the reports open: the item stays in the queue until a technician decides.
    const closed = moderatorId === null ? 0 : await moderation.closeReports(item, hide ? 'upheld' : 'dismissed', tx);
    const action = await moderation.recordAction({ ...item, moderatorId, action: moderatorId === null ? 'auto_hide' : hide ? 'hide' : 'restore', note }, tx);
    return { action, closed };
  }

  return {
    /** Once per user and item; the third open report from distinct users hides the item until reviewed. */
    async report(user: UserRow, item: Item, reason: ReportReason, text: string | undefined) {
      return db.transaction(async (tx) => {
        if (!(await moderation.lockShown(item, tx))) throw notShown(item);
        const row = await moderation.insertReport({ ...item, reporterId: user.id, reason, text: text?.trim() || null }, tx);
        if (!row) throw fail('ALREADY_REPORTED', `You have already reported this ${item.commentId ? 'comment' : 'design'}.`);
        if ((await moderation.openReports(item, tx)) >= AUTO_HIDE_REPORTS) {
          await decide(tx, item, null, true, `Hidden automatically: ${AUTO_HIDE_REPORTS} open reports from different users.`);
        }
        return renderReport(row);
      });
    },

    async queue(status: ReportStatus, limit: number, offset: number) {
      const { rows, total } = await moderation.queue(status, limit, offset);
      return {
        items: rows.map((r) => ({
          ...renderReport(r.report),
          reporter: { id: r.report.reporterId, name: r.reporterName },
          comment_text: r.commentText,
          item_hidden: r.report.commentId ? Boolean(r.commentHidden) : Boolean(r.designHidden),
        })),
        total,
      };
    },

    /** A technician's decision: hide or restore the item with a note; audited, and it closes the item's open reports. */
    async moderate(moderator: UserRow, item: Item, action: 'hide' | 'restore', note: string) {
      return db.transaction(async (tx) => {
        if (!(await moderation.findItem(item, tx))) throw notShown(item);
        const { action: row, closed } = await decide(tx, item, moderator.id, action === 'hide', note.trim());
        return {
          id: row.id,
          design_id: row.designId,
          comment_id: row.commentId,
          action: row.action,
          note: row.note,
          moderator: { id: moderator.id, name: moderator.name },
          reports_closed: closed,
          created_at: row.createdAt.toISOString(),
        };
      });
    },
  };
}

export type ModerationService = ReturnType<typeof createModerationService>;

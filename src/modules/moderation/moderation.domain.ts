/** Reports and moderation of the gallery (issue 19). */
export const REPORT_REASONS = ['spam', 'offensive', 'copyright', 'other'] as const;
export type ReportReason = (typeof REPORT_REASONS)[number];

/** open until a technician decides on the item; then upheld (it stays hidden) or dismissed (restored). */
export const REPORT_STATUSES = ['open', 'upheld', 'dismissed'] as const;
export type ReportStatus = (typeof REPORT_STATUSES)[number];

export const MODERATION_ACTIONS = ['hide', 'restore', 'auto_hide'] as const;
export type ModerationAction = (typeof MODERATION_ACTIONS)[number];

export const REPORT_TEXT_MAX_LENGTH = 1000;
export const MODERATION_NOTE_MAX_LENGTH = 1000;

/** Open reports from this many distinct users hide the item until a technician reviews it. */
export const AUTO_HIDE_REPORTS = 3;

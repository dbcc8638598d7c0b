import type { Notice } from '../notifications/events.js';

/** One thing pushed down a person's live stream; `id` is the SSE event id a reconnecting client resumes after. */
export interface LiveItem {
  id: string;
  type: 'notification';
  data: Notice;
}

/**
 * The items of `userId` that came after `afterId`, oldest first, at most `limit` (the app wires it to the
 * notifications table). An unknown `afterId` is the backlog's to interpret; the stream sends what it returns.
 */
export type Backlog = (userId: string, afterId: string, limit: number) => Promise<LiveItem[]>;

/** Until notifications are wired in, nothing is stored to resume from. */
export const emptyBacklog: Backlog = async () => [];

/** A resume sends at most this many missed items; a client further behind reloads its list instead. */
export const RESUME_MAX_ITEMS = 500;
export const RESUME_PAGE = 100;

/** One SSE event, as the specification frames it (the JSON has no raw line breaks). */
export function sseEvent(item: LiveItem): string {
  return `id: ${item.id}\nevent: ${item.type}\ndata: ${JSON.stringify(item.data)}\n\n`;
}

/** An SSE id may not contain a line break or NUL; nothing else is checked, since the backlog decides what it means. */
export const isUsableEventId = (id: string) => id.length > 0 && id.length <= 200 && !/[\r\n\0]/.test(id);

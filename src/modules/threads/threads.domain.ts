/**
 * An order's thread: its messages and its status events (the order_events timeline) in one list, oldest
 * first, read page by page with a cursor. The vocabulary and the cursor's format live here.
 */

export const THREAD_ITEM_TYPES = ['event', 'message'] as const;
export type ThreadItemType = (typeof THREAD_ITEM_TYPES)[number];

/**
 * Where an item sorts among items of the same instant: an event before a message. Events of one
 * transaction already differ (clock_timestamp); this only settles an event and a message that tie.
 */
export const RANK: Record<ThreadItemType, number> = { event: 0, message: 1 };

/** Items per page: a long thread is read in pages; a new client usually wants 50. */
export const THREAD_PAGE = { default: 50, max: 100 } as const;

/**
 * A position in a thread: just after the item created at `at` (microseconds, UTC, as PostgreSQL keeps
 * it: a JavaScript Date would round it to the millisecond and skip or repeat items) of `rank` and `id`.
 */
export interface Position {
  at: string;
  rank: number;
  id: string;
}

const AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Opaque to clients: base64url of the position. */
export const encodeCursor = (p: Position): string => Buffer.from(JSON.stringify([p.at, p.rank, p.id])).toString('base64url');

/** The position a cursor this API gave stands for; undefined for anything else (never an exception). */
export function decodeCursor(cursor: string): Position | undefined {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 3) return undefined;
  const [at, rank, id] = value as unknown[];
  if (typeof at !== 'string' || !AT.test(at) || Number.isNaN(Date.parse(at))) return undefined;
  if (rank !== RANK.event && rank !== RANK.message) return undefined;
  if (typeof id !== 'string' || !UUID.test(id)) return undefined;
  return { at, rank, id };
}

import { fail } from '../../errors.js';
import type { UserRow } from '../users/users.repository.js';
import { CATEGORIES, type Category, type Notice } from './events.js';
import type { NotificationRow, NotificationsRepository } from './notifications.repository.js';

const notFound = () => fail('NOTIFICATION_NOT_FOUND', 'No such notification among yours.');

export const renderNotification = (row: NotificationRow) => ({
  id: row.id,
  event_id: row.eventId,
  type: row.type,
  title: row.title,
  body: row.body,
  link: row.link,
  order: (row.orderFacts as Record<string, unknown> | null) ?? null,
  read: row.readAt !== null,
  read_at: row.readAt?.toISOString() ?? null,
  created_at: row.createdAt.toISOString(),
});

/** A stored notification as the live stream carries it: what the worker published when it wrote the row. */
export const noticeOf = (row: NotificationRow): Notice => ({
  id: row.id,
  eventId: row.eventId,
  type: row.type,
  recipientId: row.recipientId,
  createdAt: row.createdAt.toISOString(),
  title: row.title,
  body: row.body,
  link: row.link,
  ...(row.orderFacts ? { order: row.orderFacts as Notice['order'] } : {}),
});

/** A person's in-app notifications and email preferences: only ever their own (another's answers 404). */
export function createNotificationsService(deps: { repo: NotificationsRepository }) {
  const { repo } = deps;
  async function preferences(user: UserRow) {
    const set = await repo.preferences(user.id);
    return {
      email: Object.fromEntries(CATEGORIES.map((c) => [c, set[c] ?? true])) as Record<Category, boolean>,
      in_app: Object.fromEntries(CATEGORIES.map((c) => [c, true])) as Record<Category, true>,
    };
  }
  return {
    async list(user: UserRow, filter: { unread: boolean; limit: number; offset: number }) {
      const { rows, total } = await repo.list(user.id, filter);
      return { items: rows.map(renderNotification), total };
    },
    async read(user: UserRow, id: string) {
      const row = await repo.markRead(id, user.id);
      if (!row) throw notFound();
      return renderNotification(row);
    },
    async readAll(user: UserRow) {
      return { updated: await repo.markAllRead(user.id), unread_notifications: 0 };
    },
    unreadCount: (userId: string) => repo.unreadCount(userId),
    preferences,
    async setPreferences(user: UserRow, email: Partial<Record<Category, boolean>>) {
      await repo.setPreferences(user.id, email);
      return preferences(user);
    },
  };
}

export type NotificationsService = ReturnType<typeof createNotificationsService>;

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Envelope, IdParams, PageEnvelope, errorResponses, ok, okPage, pageInfo, paging } from '../../lib/envelope.js';
import { requireUser } from '../../plugins/auth.js';
import {
  NotificationListQuery,
  NotificationPreferencesBody,
  NotificationPreferencesSchema,
  NotificationSchema,
  ReadAllResult,
} from './notifications.schemas.js';
import type { NotificationsService } from './notifications.service.js';

const own = 'Only my own notifications: another person’s id answers 404 NOTIFICATION_NOT_FOUND.';

export const notificationsRoutes: FastifyPluginAsyncTypebox<{ notifications: NotificationsService }> = async (app, { notifications }) => {
  app.addSchema(NotificationSchema);
  app.addSchema(NotificationPreferencesSchema);

  app.get(
    '/api/v1/notifications',
    {
      schema: {
        tags: ['notifications'],
        operationId: 'listNotifications',
        summary: 'My in-app notifications, unread first, then newest',
        description:
          'What happened to my orders, messages and designs, written by the notification worker within seconds of the change. ' +
          '`unread=true` lists only unread ones. The count of unread ones is also `unread_notifications` on GET /users/me.',
        querystring: NotificationListQuery,
        response: { 200: PageEnvelope(Type.Ref('Notification')), ...errorResponses(400, 401, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND'] },
    },
    async (request) => {
      const { page, limit, offset } = paging(request.query);
      const { items, total } = await notifications.list(requireUser(request), { unread: request.query.unread ?? false, limit, offset });
      return okPage(items, pageInfo(page, limit, total));
    },
  );

  app.put(
    '/api/v1/notifications/:id/read',
    {
      schema: {
        tags: ['notifications'],
        operationId: 'markNotificationRead',
        summary: 'Mark one notification read',
        description: `Idempotent: a notification read before keeps its first read_at. ${own}`,
        params: IdParams,
        response: { 200: Envelope(Type.Ref('Notification')), ...errorResponses(400, 401, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND', 'NOTIFICATION_NOT_FOUND'] },
    },
    async (request) => ok(await notifications.read(requireUser(request), request.params.id)),
  );

  app.post(
    '/api/v1/notifications/read-all',
    {
      schema: {
        tags: ['notifications'],
        operationId: 'markAllNotificationsRead',
        summary: 'Mark all my notifications read',
        description: 'Marks every unread notification of mine read and says how many it changed.',
        response: { 200: Envelope(ReadAllResult), ...errorResponses(401, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND'] },
    },
    async (request) => ok(await notifications.readAll(requireUser(request))),
  );

  app.get(
    '/api/v1/users/me/notifications',
    {
      schema: {
        tags: ['users'],
        operationId: 'getMyNotificationPreferences',
        summary: 'My notification preferences',
        description: 'Email on or off per category (on unless switched off); in-app notifications are always on.',
        response: { 200: Envelope(Type.Ref('NotificationPreferences')), ...errorResponses(401, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND'] },
    },
    async (request) => ok(await notifications.preferences(requireUser(request))),
  );

  app.put(
    '/api/v1/users/me/notifications',
    {
      schema: {
        tags: ['users'],
        operationId: 'updateMyNotificationPreferences',
        summary: 'Switch email on or off per category',
        description:
          'Categories: order_updates, messages, gallery. Those left out keep their setting. In-app notifications cannot be switched off. ' +
          'An invitation email (technician.invited) goes to an address with no account yet and has no preference.',
        body: NotificationPreferencesBody,
        response: { 200: Envelope(Type.Ref('NotificationPreferences')), ...errorResponses(400, 401, 404) },
      },
      config: { access: 'authenticated', errors: ['USER_NOT_FOUND'] },
    },
    async (request) => ok(await notifications.setPreferences(requireUser(request), request.body.email), 'Preferences saved.'),
  );
};

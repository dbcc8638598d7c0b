import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Api } from './http.js';

/** Subscribes `user`'s webhook to `eventTypes` at the test receiver's /hooks, and returns the secret shown once. */
export async function subscribeWebhook(ctx: { app: Api }, user: { auth: Record<string, string> }, receiver: Server, eventTypes: string[]): Promise<string> {
  const hook = await ctx.app.inject({
    method: 'POST',
    url: '/api/v1/webhooks',
    headers: user.auth,
    payload: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`, event_types: eventTypes },
  });
  assert.equal(hook.statusCode, 201, hook.body);
  return hook.json().data.secret as string;
}

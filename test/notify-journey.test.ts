import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { type TestContext, buildTestApp, registerUser } from './support/app.js';
import { createOrder, put } from './support/orders.js';
import { TestSmtp } from './support/smtp.js';
import { SseClient } from './support/sse.js';
import { subscribeWebhook } from './support/webhooks.js';

/**
 * Issue 16's "done when", end to end on the real channels wired as the app wires them (no channel hooks from
 * the test): a customer whose design is rejected gets an email (a real SMTP server), an in-app notification and
 * a live event on their stream within seconds, the thread shows the rejection among the messages, and the
 * technician's webhook subscription receives it signed the Standard Webhooks way.
 */
describe('a rejected design reaches its customer everywhere', () => {
  let smtp: TestSmtp;
  let ctx: TestContext;
  let base: string;
  let receiver: Server;
  const hooks: Array<{ headers: IncomingHttpHeaders; body: string }> = [];

  before(async () => {
    smtp = await TestSmtp.start();
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += String(c)));
      req.on('end', () => {
        hooks.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    ctx = await buildTestApp({ env: { SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, MAIL_FROM: "Kendall's Nails <notify@kendalls.test>", WORKER_POLL_INTERVAL_MS: '500' } });
    await ctx.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await ctx.close();
    await new Promise((resolve) => receiver.close(resolve));
    await smtp.stop();
  });

  it('by email, in-app, on the live stream, in the thread and to the technician’s webhook', async () => {
    const tech = await registerUser(ctx, 'nail_technician', 'Tess');
    const customer = await registerUser(ctx, 'customer', 'Cleo');
    const secret = await subscribeWebhook(ctx, tech, receiver, ['order.rejected']);
    const order = await createOrder(ctx, customer);
    assert.equal(order.technician_id, tech.id);
    const stream = await SseClient.open(`${base}/api/v1/stream`, { authorization: `Bearer ${customer.token}` });
    assert.equal(stream.status, 200);

    const feedback = 'The daisies blur at this size: send a sharper file, please.';
    const rejected = await put(ctx, tech, `/api/v1/orders/${order.id}/review`, { action: 'reject', feedback });
    assert.equal(rejected.statusCode, 200, rejected.body);
    const at = Date.now();

    // Live: the notice on the customer's stream.
    await stream.until(() => stream.events.some((e) => JSON.parse(e.data).type === 'order.rejected'), 'the live event', 10_000);
    const live = JSON.parse(stream.events.find((e) => JSON.parse(e.data).type === 'order.rejected')!.data);
    assert.equal(live.order.feedback, feedback);
    const liveMs = Date.now() - at;
    stream.close();

    // In-app: the same notification, unread.
    const list = await ctx.app.inject({ method: 'GET', url: '/api/v1/notifications?unread=true', headers: customer.auth });
    const mine = (list.json().data as Array<{ id: string; event_id: string; type: string; order: { feedback: string } | null }>).find((n) => n.type === 'order.rejected');
    assert.ok(mine, list.body);
    assert.equal(mine.id, live.id, 'the stream carries the stored notification');
    assert.equal(mine.order?.feedback, feedback);
    const me = await ctx.app.inject({ method: 'GET', url: '/api/v1/users/me', headers: customer.auth });
    assert.ok(me.json().data.unread_notifications >= 1);

    // Email: to the customer alone, with the order's number, status and the feedback.
    const isRejection = (m: (typeof smtp.received)[number]) => m.envelope.to.includes(customer.email) && /reject/i.test(m.parsed.subject ?? '');
    for (let i = 0; i < 100 && !smtp.received.some(isRejection); i++) await new Promise((r) => setTimeout(r, 100));
    const mail = smtp.received.find(isRejection);
    assert.ok(mail, JSON.stringify(smtp.received.map((m) => [m.envelope.to, m.parsed.subject])));
    assert.deepEqual(mail.envelope.to, [customer.email]);
    assert.ok(mail.parsed.subject?.includes(order.id.slice(0, 8).toUpperCase()), mail.parsed.subject);
    assert.ok(mail.parsed.text?.includes(feedback), mail.parsed.text);
    assert.ok(!String(mail.raw).includes(tech.email), "never another person's address");

    // Thread: the rejection among the order's items.
    const thread = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}/thread`, headers: customer.auth });
    const items = thread.json().data as Array<{ type: string; to_status?: string; feedback?: string }>;
    assert.ok(items.some((i) => i.type === 'event' && i.to_status === 'rejected' && i.feedback === feedback), thread.body);

    // Webhook: the technician's subscription, verified with the Standard Webhooks library.
    for (let i = 0; i < 100 && hooks.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(hooks.length, 1, 'one delivery');
    const payload = new Webhook(secret).verify(hooks[0]!.body, hooks[0]!.headers as Record<string, string>) as { type: string; data: { order_id: string } };
    assert.equal(payload.type, 'order.rejected');
    assert.equal(payload.data.order_id, order.id);
    assert.equal(hooks[0]!.headers['webhook-id'], mine.event_id, 'webhook-id is the outbox event id');
    assert.ok(liveMs < 10_000, `live within seconds (${liveMs} ms)`);
  });
});


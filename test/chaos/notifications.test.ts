import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import type { TestUser } from '../support/app.js';
import { sleep } from '../support/load.js';
import { advanceOrder, createOrder, png } from '../support/orders.js';
import { type Spawned, spawnNode } from '../support/process.js';
import { recordResults } from '../support/results.js';
import { TestSmtp } from '../support/smtp.js';
import { type Stack, startStack } from '../support/stack.js';
import { subscribeWebhook } from '../support/webhooks.js';

/**
 * Notifications under faults (issue 16): a web process that only records events (WORKER_IN_PROCESS=false) and a
 * worker process (src/worker.ts, the Procfile's worker dyno) on one private PostgreSQL. While orders are accepted,
 * the worker is killed with SIGKILL mid-batch and started again, the SMTP server goes away and comes back on its
 * port, and the technician's webhook receiver answers 500 before it answers 200. Afterwards every acceptance has
 * reached its customer by email and the receiver by webhook: nothing lost, and nothing twice except as the same
 * message (one Message-ID per notice, one webhook-id per event).
 */

const ORDERS = 12;

describe('notifications: worker killed, SMTP down, webhook receiver failing', () => {
  let stack: Stack;
  let smtp: TestSmtp;
  let receiver: Server;
  /** The receiver answers 500 to its first requests (each retried 5 s later by the schedule), then 204. */
  let refusalsLeft = 3;
  const hooks: Array<{ id: string; status: number; body: string; headers: Record<string, string> }> = [];
  let worker: Spawned | undefined;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kn-worker-'));
  const figures: Record<string, unknown> = {};

  const startWorker = () => {
    worker = spawnNode(['src/worker.ts'], { ...stack.env, ENVIRONMENT: 'development', DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
    return worker;
  };

  before(async () => {
    smtp = await TestSmtp.start();
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += String(c)));
      req.on('end', () => {
        const status = refusalsLeft-- > 0 ? 500 : 204;
        hooks.push({ id: String(req.headers['webhook-id']), status, body, headers: req.headers as Record<string, string> });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    stack = await startStack({
      env: {
        WORKER_IN_PROCESS: 'false',
        SMTP_URL: smtp.url(),
        MAIL_FROM: "Kendall's Nails <notify@kendalls.test>",
        WORKER_POLL_INTERVAL_MS: '500',
        WORKER_RETRY_DELAY_S: '1',
        WORKER_RETRY_DELAY_MAX_S: '4',
        WORKER_RETRY_LIMIT: '30',
        WORKER_JOB_TIMEOUT_S: '10',
      },
    });
  });
  after(async () => {
    recordResults('notifications', figures);
    worker?.child.kill('SIGKILL');
    await stack?.close();
    await new Promise((resolve) => receiver?.close(resolve));
    await smtp?.stop().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('delivers every email and webhook once the faults are over, each as one message', async (t) => {
    const client = stack.client();
    const tech = await stack.register('nail_technician', 'Tess');
    const secret = await subscribeWebhook(client, tech, receiver, ['order.accepted']);
    const customers: TestUser[] = [];
    for (let i = 0; i < 4; i++) customers.push(await stack.register('customer', `Cara ${i}`));
    const image = await png(120, 120, 4);
    const orders: Array<{ id: string; customer: TestUser }> = [];
    for (let i = 0; i < ORDERS; i++) {
      const customer = customers[i % customers.length]!;
      orders.push({ id: (await createOrder(client, customer, { image })).id, customer });
    }

    startWorker();
    // Acceptances come in while the worker works; it is killed in the middle of them and comes back.
    const accepting = (async () => {
      for (const o of orders) {
        await advanceOrder(client, tech, o.id, 'accepted');
        await sleep(150);
      }
    })();
    // Killed once it is delivering: some emails out, more jobs in hand.
    for (let i = 0; i < 200 && smtp.received.length < 2; i++) await sleep(100);
    worker!.child.kill('SIGKILL');
    await worker!.exit;
    const killedAfter = smtp.received.length;
    await sleep(1500);
    // The SMTP server goes away while the worker is back; its port stays free for it to return to.
    const port = smtp.port;
    await smtp.stop();
    const received = smtp.received;
    startWorker();
    await accepting;
    await sleep(4000);
    smtp = await TestSmtp.start({ port });

    const number = (id: string) => id.slice(0, 8).toUpperCase();
    const all = () => [...received, ...smtp.received];
    const accepted = (o: { id: string; customer: TestUser }) => all().filter((m) => m.envelope.to.includes(o.customer.email) && m.parsed.subject?.includes(number(o.id)) && /accept/i.test(m.parsed.subject));
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && (orders.some((o) => accepted(o).length === 0) || new Set(hooks.filter((h) => h.status === 204).map((h) => h.id)).size < ORDERS)) await sleep(250);

    const missingMail = orders.filter((o) => accepted(o).length === 0).map((o) => o.id);
    assert.deepEqual(missingMail, [], 'every acceptance reached its customer by email');
    // At least once: a message sent again (the worker killed after the server took it) is the same message.
    for (const o of orders) assert.equal(new Set(accepted(o).map((m) => m.parsed.messageId)).size, 1, `one Message-ID for ${o.id}`);
    const delivered = hooks.filter((h) => h.status === 204);
    const eventIds = new Set(delivered.map((h) => h.id));
    assert.equal(eventIds.size, ORDERS, 'every acceptance reached the receiver');
    for (const h of delivered) {
      const payload = new Webhook(secret).verify(h.body, h.headers) as { type: string; data: { order_id: string } };
      assert.equal(payload.type, 'order.accepted');
    }
    const ordersHooked = new Set(delivered.map((h) => (JSON.parse(h.body) as { data: { order_id: string } }).data.order_id));
    assert.deepEqual([...ordersHooked].sort(), orders.map((o) => o.id).sort());
    assert.ok(hooks.some((h) => h.status === 500), 'the receiver did refuse some first');
    assert.ok(killedAfter > 0 && killedAfter < all().length, `the worker was killed mid-run (${killedAfter} emails before)`);

    Object.assign(figures, {
      orders: ORDERS,
      emails_before_kill: killedAfter,
      emails: all().length,
      duplicate_emails: all().length - new Set(all().map((m) => m.parsed.messageId)).size,
      webhook_attempts: hooks.length,
      webhook_refused: hooks.filter((h) => h.status === 500).length,
      webhook_duplicates: delivered.length - eventIds.size,
    });
    t.diagnostic(JSON.stringify(figures));
  });
});

import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { TestUser } from '../support/app.js';
import { type Action, Load, sleep, tally } from '../support/load.js';
import { multipart, pngPart } from '../support/multipart.js';
import { createOrder, png, submitOrder } from '../support/orders.js';
import { recordResults } from '../support/results.js';
import { type Stack, startStack } from '../support/stack.js';

/**
 * SIGTERM (what Heroku sends before a restart) under steady load, with uploads whose bodies are still
 * arriving: the server stops taking connections, finishes every request in flight (the uploads
 * complete with 201 and their orders exist), answers or refuses the rest without hanging, and exits 0
 * well within Heroku's 30 s grace.
 */

/** Starts an upload on its own connection and sends half its body; `finish()` sends the rest. */
function slowUpload(url: string, user: TestUser, image: Buffer) {
  const form = multipart({ description: 'Sent slowly across a restart', quantity: 1 }, [pngPart(image)]);
  const half = Math.floor(form.payload.length / 2);
  let finish!: () => void;
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(
      `${url}/api/v1/orders`,
      { method: 'POST', agent: false, headers: { ...user.auth, ...form.headers, 'content-length': String(form.payload.length) } },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += String(d)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.write(form.payload.subarray(0, half));
    finish = () => req.end(form.payload.subarray(half));
  });
  return { response, finish: () => finish() };
}

describe('SIGTERM under load', () => {
  let stack: Stack;
  let load: Load;
  const written = { orders: [] as string[], messages: [] as string[] };
  const figures: Record<string, unknown> = {};

  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await load?.stop();
    recordResults('sigterm', figures);
    await stack?.close();
  });

  it('finishes the requests in flight, refuses the rest without hanging, and exits 0', async (t) => {
    const client = stack.client();
    const server = stack.servers[0]!;
    await stack.register('nail_technician');
    const customer = await stack.register('customer');
    const order = await createOrder(client, customer);
    const image = await png(100, 100, 5);
    const actions: Action[] = [
      {
        name: 'message',
        weight: 3,
        run: async () => {
          const res = await client.app.inject({ method: 'POST', url: `/api/v1/orders/${order.id}/messages`, headers: customer.auth, payload: { text: 'Ready soon?' } });
          if (res.statusCode === 201) written.messages.push(res.json().data.id);
          return res.statusCode;
        },
      },
      { name: 'read', weight: 3, run: async () => (await client.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}`, headers: customer.auth })).statusCode },
      {
        name: 'upload',
        weight: 1,
        run: async () => {
          const res = await submitOrder(client, customer, { image, quantity: 1 });
          if (res.statusCode === 201) written.orders.push(res.json().data.id);
          return res.statusCode;
        },
      },
    ];
    load = new Load(actions).closedLoop(4, 10);
    await sleep(3000);

    const slow = await Promise.all([1, 2, 3, 4].map(async (seed) => slowUpload(server.url, customer, await png(120, 120, seed))));
    await sleep(500);
    const term = Date.now();
    const exited = server.stop('SIGTERM').then((code) => ({ code, at: Date.now() }));
    await sleep(1000);
    for (const upload of slow) upload.finish();
    const uploads = await Promise.all(slow.map((u) => u.response));
    const { code, at } = await Promise.race([exited, sleep(30_000).then(() => ({ code: 'still running after 30 s' as const, at: NaN }))]);
    await load.stop();

    assert.equal(code, 0, server.proc.output().slice(-2000));
    assert.ok(at - term < 28_000, `exited within the grace (${at - term} ms)`);
    assert.deepEqual(uploads.map((u) => u.status), [201, 201, 201, 201], 'uploads whose bodies were still arriving completed');
    const ids = uploads.map((u) => JSON.parse(u.body).data.id as string);
    written.orders.push(...ids);

    const before = load.between(0, term - 100);
    const inFlight = before.filter((o) => o.started + o.ms > term);
    assert.deepEqual(tally(inFlight.filter((o) => o.status === undefined || o.status >= 300)), {}, 'requests in flight at SIGTERM completed');
    const afterTerm = load.between(term);
    assert.deepEqual(
      Object.keys(tally(afterTerm)).filter((k) => !['200', '201', '503', 'ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET'].includes(k)),
      [],
      `after SIGTERM: served, 503 or refused: ${JSON.stringify(tally(afterTerm))}`,
    );
    const slowest = Math.max(0, ...afterTerm.map((o) => o.ms));
    assert.ok(slowest < 10_000, `nothing hung after SIGTERM (slowest ${Math.round(slowest)} ms)`);

    const messages = await stack.pg.query<{ id: string }>('select id from messages where id = any($1::uuid[])', [written.messages]);
    const orders = await stack.pg.query<{ id: string }>('select id from orders where id = any($1::uuid[])', [written.orders]);
    assert.equal(messages.length, written.messages.length, 'every 201 message is stored');
    assert.equal(orders.length, written.orders.length, 'every 201 order is stored');
    assert.deepEqual(await stack.violations(), []);

    Object.assign(figures, {
      requests: load.outcomes.length,
      in_flight_at_sigterm: inFlight.length + slow.length,
      after_sigterm: tally(afterTerm),
      exit_code: code,
      shutdown_ms: at - term,
    });
    t.diagnostic(JSON.stringify(figures));
  });
});

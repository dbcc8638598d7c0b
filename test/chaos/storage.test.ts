import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestUser } from '../support/app.js';
import { type Action, Load, sleep, tally } from '../support/load.js';
import { createOrder, png, submitOrder } from '../support/orders.js';
import { recordResults } from '../support/results.js';
import { type Stack, startStack } from '../support/stack.js';
import { s3Keys } from '../support/store.js';

/**
 * The image store goes away under steady load: uploads answer 503 STORAGE_UNAVAILABLE quickly and
 * create no order row and no object, while everything that only reads or writes the database (order
 * details with their presigned links, lists, messages) keeps working. When the store returns, uploads
 * work again without a restart.
 */
describe('storage faults under load', () => {
  let stack: Stack;
  let customer: TestUser;
  let order: { id: string };
  let uploads: Load;
  let reads: Load;
  const placed: string[] = [];
  const wrongCodes: string[] = [];
  const figures: Record<string, unknown> = {};

  before(async () => {
    // Objects a failed upload left behind are swept once they are 2 s old.
    stack = await startStack({ proxyS3: true, env: { STORAGE_CLEANUP_INTERVAL_MS: '2000' } });
    const client = stack.client();
    await stack.register('nail_technician');
    customer = await stack.register('customer');
    order = await createOrder(client, customer);
    placed.push(order.id);
    const image = await png(100, 100, 9);
    const upload: Action[] = [
      {
        name: 'upload',
        weight: 2,
        run: async () => {
          const res = await submitOrder(client, customer, { image, quantity: 1 });
          if (res.statusCode === 201) placed.push(res.json().data.id);
          else if (res.statusCode === 503 && res.json().error.code !== 'STORAGE_UNAVAILABLE') wrongCodes.push(res.json().error.code);
          return res.statusCode;
        },
      },
    ];
    const others: Action[] = [
      { name: 'read', weight: 3, run: async () => (await client.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}`, headers: customer.auth })).statusCode },
      { name: 'list', weight: 1, run: async () => (await client.app.inject({ method: 'GET', url: '/api/v1/orders?limit=5', headers: customer.auth })).statusCode },
      {
        name: 'message',
        weight: 2,
        run: async () =>
          (await client.app.inject({ method: 'POST', url: `/api/v1/orders/${order.id}/messages`, headers: customer.auth, payload: { text: 'Still there?' } })).statusCode,
      },
    ];
    // Separate workers, so uploads waiting on a dead store do not starve the reads.
    uploads = new Load(upload).closedLoop(3, 25);
    reads = new Load(others).closedLoop(2, 25);
    await sleep(3000);
  });

  after(async () => {
    await Promise.all([uploads?.stop(), reads?.stop()]);
    recordResults('storage_faults', figures);
    await stack?.close();
  });

  interface Fault {
    name: string;
    what: string;
    start(): Promise<void>;
    end(): Promise<void>;
    /** How long a refused upload may take at most: well under Heroku's 30 s router timeout. */
    boundMs: number;
    /** How long uploads keep starting against the dead store. */
    durationMs: number;
  }

  const FAULTS: Fault[] = [
    { name: 'stopped', what: 'is stopped', start: () => stack.s3.pause(), end: () => stack.s3.resume(), boundMs: 5_000, durationMs: 6000 },
    {
      name: 'black_hole',
      what: 'answers nothing (network partition)',
      start: async () => stack.s3Proxy!.blackhole(),
      end: async () => stack.s3Proxy!.restore(),
      boundMs: 15_000,
      durationMs: 12_000,
    },
  ];

  for (const fault of FAULTS) {
    it(`refuses uploads with 503 while S3 ${fault.what}, keeps serving reads, then uploads again`, async (t) => {
      await fault.start();
      const down = Date.now();
      await sleep(fault.durationMs);
      const windowEnd = Date.now();
      // The store stays down while the uploads started in the window get the time to be refused.
      await sleep(fault.boundMs);
      const refused = uploads.between(down, windowEnd);
      const hung = uploads.waitingSince(windowEnd);
      const served = reads.between(down, windowEnd);
      await fault.end();
      const up = Date.now();

      assert.ok(refused.length >= 2 && served.length >= 10, `traffic during the outage: ${refused.length} uploads, ${served.length} others`);
      assert.deepEqual(tally(refused), { 503: refused.length }, 'every upload answers 503');
      assert.deepEqual(wrongCodes, [], 'with code STORAGE_UNAVAILABLE');
      assert.deepEqual(Object.keys(tally(served)).filter((s) => s !== '200' && s !== '201'), [], `reads and messages still work: ${JSON.stringify(tally(served))}`);
      const slowest = Math.max(...refused.map((o) => o.ms));
      assert.equal(hung, 0, `uploads still waiting after ${fault.boundMs} ms`);
      assert.ok(slowest < fault.boundMs, `no upload hung (slowest ${Math.round(slowest)} ms)`);

      let recovered: number | undefined;
      for (let i = 0; i < 300 && recovered === undefined; i++) {
        await sleep(100);
        const ok = uploads.between(up).find((o) => o.status === 201);
        if (ok) recovered = Math.round(ok.started + ok.ms - up);
      }
      assert.ok(recovered !== undefined, 'uploads work again without a restart');
      figures[fault.name] = {
        outage_ms: up - down,
        uploads_refused: refused.length,
        slowest_refusal_ms: Math.round(slowest),
        reads_during_outage: served.length,
        upload_recovery_ms: recovered,
      };
      t.diagnostic(JSON.stringify(figures[fault.name]));
    });
  }

  it('left exactly the answered orders, each with its objects, and swept what failed uploads left', async () => {
    await Promise.all([uploads.stop(), reads.stop()]);
    const rows = await stack.pg.query<{ n: number }>('select count(*)::int as n from orders');
    assert.equal(rows[0]!.n, placed.length, 'exactly the orders that were answered 201 exist');
    // An upload cut off by the partition may have landed one object that could not be deleted then.
    const state = async () => ({ violations: await stack.violations(), queued: await stack.pg.query('select key, attempts, last_error from storage_cleanup') });
    let now = await state();
    for (let i = 0; i < 100 && (now.violations.length || now.queued.length); i++) {
      await sleep(200);
      now = await state();
    }
    assert.deepEqual(now, { violations: [], queued: [] }, 'every order has its objects, no object is left over, nothing is left to clean up');
    assert.equal((await s3Keys(stack.s3)).length, placed.length * 2, 'an image and a thumbnail per order');
    figures.requests = uploads.outcomes.length + reads.outcomes.length;
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from '../src/db/orm.js';
import sharp from 'sharp';
import { createStorageCleanup } from '../src/storage/cleanup.js';
import { createS3Storage } from '../src/storage/s3.js';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { createOrder, png, put, submitOrder } from './support/orders.js';
import { type S3rverHandle, startS3rver } from './support/s3rver.js';
import { countRows, s3Keys } from './support/store.js';
import { linkLifetimeS } from './support/links.js';

const objectKeys = s3Keys;
const orderCount = (ctx: TestContext) => countRows(ctx.database.handle.db, 'orders');

describe('orders on S3 (s3rver)', () => {
  let s3: S3rverHandle;
  let ctx: TestContext;
  let customer: TestUser;
  let tech: TestUser;
  before(async () => {
    s3 = await startS3rver();
    ctx = await buildTestApp({ env: s3.env });
    tech = await registerUser(ctx, 'nail_technician');
    customer = await registerUser(ctx);
  });
  after(async () => {
    await ctx.close();
    await s3.stop();
  });

  it('stores the normalised PNG under {order-id}/{uuid}.png and serves exactly those bytes by presigned URL', async () => {
    // A PNG with a text chunk: the stored copy must not carry it.
    const withText = await sharp(await png(300, 300, 5)).withMetadata({ exif: { IFD0: { Copyright: 'secret-gps-and-name' } } }).png().toBuffer();
    const order = await createOrder(ctx, customer, { image: withText });
    const keys = await objectKeys(s3);
    const imageKey = keys.find((k) => k.endsWith('.png'));
    assert.ok(imageKey, keys.join(','));
    assert.match(imageKey!, new RegExp(`^${order.id}/[0-9a-f-]{36}\\.png$`));
    assert.ok(keys.some((k) => k.startsWith(`${order.id}/`) && k.endsWith('.webp')), 'thumbnail beside it');
    const res = await fetch(order.image_url);
    assert.equal(res.status, 200);
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.ok(!bytes.includes(Buffer.from('secret-gps-and-name')), 'metadata stripped');
    const meta = await sharp(bytes).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 300, 300]);
    const stored = await fetch(`${s3.endpoint}/${s3.bucket}/${imageKey}`);
    assert.deepEqual(Buffer.from(await stored.arrayBuffer()), bytes, 'the presigned URL fetches the exact stored bytes');
    const lifetime = linkLifetimeS(order.image_url);
    assert.ok(lifetime >= 3599 && lifetime <= 3900, `valid for at least an hour (${lifetime} s)`);
  });

  it('reorders with an independent copy in the store', async () => {
    const order = await createOrder(ctx, customer);
    const res = await ctx.app.inject({ method: 'POST', url: `/api/v1/orders/${order.id}/reorder`, headers: customer.auth, payload: {} });
    assert.equal(res.statusCode, 201, res.body);
    const keys = await objectKeys(s3);
    assert.ok(keys.some((k) => k.startsWith(`${res.json().data.id}/`) && k.endsWith('.png')));
    const [a, b] = await Promise.all([fetch(order.image_url), fetch(res.json().data.image_url)]);
    assert.deepEqual(Buffer.from(await a.arrayBuffer()), Buffer.from(await b.arrayBuffer()));
    const review = await put(ctx, tech, `/api/v1/orders/${res.json().data.id}/review`, { action: 'accept', complexity_multiplier: 2 });
    assert.equal(review.json().data.unit_price_cents, 5000);
  });

  it('removes the uploaded objects when the database fails after the upload', async () => {
    const before = await objectKeys(s3);
    const count = await orderCount(ctx);
    await ctx.database.handle.db.execute(sql`alter table designs rename to designs_gone`);
    try {
      const res = await submitOrder(ctx, customer);
      assert.equal(res.statusCode, 500);
    } finally {
      await ctx.database.handle.db.execute(sql`alter table designs_gone rename to designs`);
    }
    assert.deepEqual((await objectKeys(s3)).sort(), before.sort(), 'no object left behind');
    assert.equal(await orderCount(ctx), count, 'no order row');
  });

  it('lets the invariant checks list every object, past the first page of a listing', async () => {
    // The soak holds more than a page (1000 keys); a page of one makes every key after the first a next page.
    const all = await objectKeys(s3);
    assert.ok(all.length >= 4, `objects stored by the tests above (${all.length})`);
    assert.deepEqual(await objectKeys(s3, 1), all);
  });
});

describe('orders when S3 is down', () => {
  it('answers 503 and creates no order row; reads of order data still work', async () => {
    const s3 = await startS3rver();
    const ctx = await buildTestApp({ env: s3.env });
    try {
      const customer = await registerUser(ctx);
      const order = await createOrder(ctx, customer);
      await s3.stop();
      const res = await submitOrder(ctx, customer);
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(res.json().error.code, 'STORAGE_UNAVAILABLE');
      assert.ok(res.headers['retry-after']);
      assert.equal(await orderCount(ctx), 1);
      const read = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}`, headers: customer.auth });
      assert.equal(read.statusCode, 200, 'presigning needs no network');
    } finally {
      await ctx.close();
      await s3.stop().catch(() => undefined);
    }
  });
});

describe('an upload whose transaction the database stopped answering in', () => {
  let s3: S3rverHandle;
  let ctx: TestContext;
  let customer: TestUser;
  before(async () => {
    s3 = await startS3rver();
    // No in-process notification worker: its fan-out transactions would take the sabotaged transaction below in the
    // upload's place (CI caught one under load).
    ctx = await buildTestApp({ env: { ...s3.env, WORKER_IN_PROCESS: 'false' } });
    await registerUser(ctx, 'nail_technician');
    customer = await registerUser(ctx);
  });
  after(async () => {
    await ctx.close();
    await s3.stop();
  });

  /** The next transaction of the app behaves as when the connection dies around COMMIT: `landed` says whether it committed. */
  function loseNextCommit(landed: boolean) {
    const db = ctx.database.handle.db;
    const real = db.transaction.bind(db);
    db.transaction = (async (work: Parameters<typeof real>[0]) => {
      delete (db as Partial<typeof db>).transaction;
      if (landed) await real(work);
      throw new Error('Connection terminated unexpectedly');
    }) as typeof db.transaction;
  }

  const until = async (what: string, check: () => Promise<boolean>, ms = 10_000) => {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (await check()) return;
    assert.fail(`not within ${ms} ms: ${what}`);
  };

  it('keeps the objects when the COMMIT landed after all (the chaos suite caught them deleted)', async () => {
    const before = new Set(await objectKeys(s3));
    loseNextCommit(true);
    const res = await submitOrder(ctx, customer);
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.json().error.code, 'DATABASE_UNAVAILABLE');
    const [order] = await ctx.database.handle.db.execute(sql`select id, image_key, thumbnail_key from orders order by created_at desc limit 1`).then((r) => (r as unknown as { rows: Array<{ id: string; image_key: string; thumbnail_key: string }> }).rows);
    assert.ok(order && !before.has(order.image_key), 'the order was committed');
    // Past the settle grace period: the objects must still be there, and nothing left to sweep.
    await new Promise((r) => setTimeout(r, 3500));
    const keys = await objectKeys(s3);
    assert.ok(keys.includes(order.image_key) && keys.includes(order.thumbnail_key), keys.join(','));
    assert.equal(await countRows(ctx.database.handle.db, 'storage_cleanup'), 0);
  });

  it('removes the objects once the database answers that it did not commit', async () => {
    const orders = await orderCount(ctx);
    const stored = (await objectKeys(s3)).length;
    loseNextCommit(false);
    const res = await submitOrder(ctx, customer);
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(await orderCount(ctx), orders);
    await until('the uploaded objects are removed', async () => (await objectKeys(s3)).length === stored);
  });
});

describe('storage cleanup', () => {
  it('removes recorded objects once they are old enough, retrying while the store is down', async () => {
    const s3 = await startS3rver();
    const ctx = await buildTestApp({ env: s3.env });
    const storage = createS3Storage({ bucket: s3.bucket, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', endpoint: s3.endpoint, forcePathStyle: true });
    const log = { warn: () => undefined, error: () => undefined };
    const cleanup = createStorageCleanup({ db: ctx.database.handle.db, storage, log, intervalMs: 60_000, minAgeMs: 0 });
    try {
      const keys = ['11111111-1111-4111-8111-111111111111/a.png', '11111111-1111-4111-8111-111111111111/a.thumb.webp'];
      for (const key of keys) await storage.put(key, Buffer.from('left behind'), { contentType: 'image/png', orderId: 'x' });
      await ctx.database.handle.db.execute(sql`insert into storage_cleanup (key) values (${keys[0]}), (${keys[1]})`);
      await s3.pause();
      assert.equal(await cleanup.sweep(), 0, 'nothing removed while the store is down');
      const pending = await ctx.database.handle.db.execute(sql`select attempts from storage_cleanup`);
      assert.deepEqual((pending as unknown as { rows: Array<{ attempts: number }> }).rows.map((r) => r.attempts), [1, 1]);
      await s3.resume();
      assert.equal(await cleanup.sweep(), 2);
      assert.deepEqual(await objectKeys(s3), []);
      assert.equal(await countRows(ctx.database.handle.db, 'storage_cleanup'), 0);
    } finally {
      await cleanup.stop();
      storage.client.destroy();
      await ctx.close();
      await s3.stop();
    }
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from '../src/db/orm.js';
import sharp from 'sharp';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { type FilePart, multipart, pngPart } from './support/multipart.js';
import { createOrder, png, put, submitOrder } from './support/orders.js';
import { chunk as pngChunk, withChunks } from './support/png-forge.js';
import { countRows, localKeys } from './support/store.js';

const storedKeys = (ctx: TestContext) => localKeys(ctx.dataDir);
const count = (ctx: TestContext, from: string) => countRows(ctx.database.handle.db, from);

async function fetchSigned(ctx: TestContext, url: string) {
  const u = new URL(url);
  return ctx.app.inject({ method: 'GET', url: u.pathname + u.search });
}

describe('orders: the whole journey', () => {
  let ctx: TestContext;
  let tech: TestUser;
  let customer: TestUser;
  before(async () => {
    ctx = await buildTestApp();
    tech = await registerUser(ctx, 'nail_technician', 'Kendall');
    customer = await registerUser(ctx, 'customer', 'Ana');
  });
  after(() => ctx.close());

  it('submit → auto-assign → reject → revise → accept → paid → production → shipped → delivered', async () => {
    const original = await png(300, 200, 7);
    const order = await createOrder(ctx, customer, { image: original, quantity: 3, description: 'Glazed donut coffin set' });
    assert.equal(order.status, 'under_review');
    assert.equal(order.technician_id, tech.id);
    assert.deepEqual(order.technician, { id: tech.id, name: 'Kendall' });
    assert.deepEqual(order.customer, { id: customer.id, name: 'Ana' });
    assert.equal(order.payment_status, 'unpaid');
    assert.equal(order.currency, 'USD');
    assert.ok(order.design_id);
    assert.ok(!JSON.stringify(order).includes(customer.email), 'no email in an order');

    const image = await fetchSigned(ctx, order.image_url);
    assert.equal(image.statusCode, 200);
    assert.equal(image.headers['content-type'], 'image/png');
    const meta = await sharp(image.rawPayload).metadata();
    assert.deepEqual([meta.width, meta.height], [300, 200]);
    const thumb = await fetchSigned(ctx, order.thumbnail_url);
    assert.equal(thumb.statusCode, 200);
    assert.equal((await sharp(thumb.rawPayload).metadata()).format, 'webp');

    const rejected = await put(ctx, tech, `/api/v1/orders/${order.id}/review`, { action: 'reject', feedback: '  Please add more contrast  ' });
    assert.equal(rejected.statusCode, 200, rejected.body);
    assert.equal(rejected.json().data.status, 'rejected');
    assert.equal(rejected.json().data.feedback, 'Please add more contrast');

    const revision = multipart({ description: 'Glazed donut coffin set, higher contrast' }, [pngPart(await png(320, 240, 8))]);
    const revised = await ctx.app.inject({
      method: 'PUT',
      url: `/api/v1/orders/${order.id}/design`,
      headers: { ...customer.auth, ...revision.headers },
      payload: revision.payload,
    });
    assert.equal(revised.statusCode, 200, revised.body);
    const afterRevision = revised.json().data;
    assert.equal(afterRevision.status, 'under_review');
    assert.equal(afterRevision.technician_id, tech.id, 'same technician');
    assert.equal(afterRevision.revision_count, 1);
    assert.notEqual(afterRevision.image_url.split('?')[0], order.image_url.split('?')[0]);
    assert.equal(afterRevision.revisions.length, 1);
    assert.equal(afterRevision.revisions[0].description, 'Glazed donut coffin set');
    assert.equal(afterRevision.revisions[0].feedback, 'Please add more contrast');
    const oldImage = await fetchSigned(ctx, afterRevision.revisions[0].image_url);
    assert.equal(oldImage.statusCode, 200, 'earlier images are kept');

    const accepted = await put(ctx, tech, `/api/v1/orders/${order.id}/review`, { action: 'accept', complexity_multiplier: 1.5 });
    assert.equal(accepted.statusCode, 200, accepted.body);
    const a = accepted.json().data;
    assert.equal(a.status, 'accepted');
    assert.equal(a.complexity_multiplier, 1.5);
    assert.equal(a.unit_price_cents, 3750);
    assert.equal(a.total_price_cents, 11250);

    const tooEarly = await put(ctx, tech, `/api/v1/orders/${order.id}/status`, { status: 'in_production' });
    assert.equal(tooEarly.statusCode, 422);
    assert.equal(tooEarly.json().error.code, 'PAYMENT_REQUIRED');

    const noDesignChange = await ctx.app.inject({
      method: 'PUT',
      url: `/api/v1/orders/${order.id}/design`,
      headers: customer.auth,
      payload: { description: 'sneaky change after acceptance' },
    });
    assert.equal(noDesignChange.statusCode, 422);
    assert.equal(noDesignChange.json().error.details.current_status, 'accepted');

    const paid = await put(ctx, tech, `/api/v1/orders/${order.id}/payment`, { payment_status: 'paid' });
    assert.equal(paid.statusCode, 200, paid.body);
    assert.equal(paid.json().data.payment_status, 'paid');

    const trackingTooEarly = await put(ctx, tech, `/api/v1/orders/${order.id}/status`, { status: 'in_production', tracking_number: 'EZ1000' });
    assert.equal(trackingTooEarly.statusCode, 400, 'tracking goes with shipping');
    assert.equal(trackingTooEarly.json().error.details.tracking_number, 'is only accepted when shipping');
    const production = await put(ctx, tech, `/api/v1/orders/${order.id}/status`, { status: 'in_production' });
    assert.equal(production.statusCode, 200, production.body);
    const shipped = await put(ctx, tech, `/api/v1/orders/${order.id}/status`, { status: 'shipped', carrier: 'USPS', tracking_number: '9400 1000 0000 0000 0000 00' });
    assert.equal(shipped.statusCode, 200, shipped.body);
    assert.equal(shipped.json().data.carrier, 'USPS');
    assert.equal(shipped.json().data.tracking_number, '9400 1000 0000 0000 0000 00');

    const backwards = await put(ctx, tech, `/api/v1/orders/${order.id}/status`, { status: 'in_production' });
    assert.equal(backwards.statusCode, 422);
    assert.equal(backwards.json().error.code, 'INVALID_STATE');
    assert.equal(backwards.json().error.details.current_status, 'shipped');

    const delivered = await put(ctx, customer, `/api/v1/orders/${order.id}/status`, { status: 'delivered' });
    assert.equal(delivered.statusCode, 200, delivered.body);
    const final = delivered.json().data;
    assert.equal(final.status, 'delivered');

    const steps = final.events.map((e: { from_status: string | null; to_status: string }) => `${e.from_status ?? '∅'}→${e.to_status}`);
    assert.deepEqual(steps, [
      '∅→submitted',
      'submitted→under_review',
      'under_review→rejected',
      'rejected→under_review',
      'under_review→accepted',
      'accepted→accepted',
      'accepted→in_production',
      'in_production→shipped',
      'shipped→delivered',
    ]);
    assert.equal(final.events[0].actor.id, customer.id);
    assert.equal(final.events[1].actor, null, 'automatic assignment has no actor');
    assert.equal(final.events[2].actor.id, tech.id);
    assert.equal(final.events[2].note, 'Please add more contrast');
    assert.equal(final.events.at(-1).actor.id, customer.id);
    const times = final.events.map((e: { created_at: string }) => Date.parse(e.created_at));
    assert.deepEqual([...times].sort((x, y) => x - y), times, 'timeline oldest first');
  });
});

describe('orders: assignment', () => {
  it('stays submitted without technicians; a technician takes it; a second one gets 422', async () => {
    const ctx = await buildTestApp();
    try {
      const customer = await registerUser(ctx);
      const order = await createOrder(ctx, customer);
      assert.equal(order.status, 'submitted');
      assert.equal(order.technician_id, null);
      const t1 = await registerUser(ctx, 'nail_technician');
      const t2 = await registerUser(ctx, 'nail_technician');
      const list = await ctx.app.inject({ method: 'GET', url: '/api/v1/orders', headers: t2.auth });
      assert.equal(list.json().data.length, 1, 'technicians see unassigned orders');
      const take = await put(ctx, t1, `/api/v1/orders/${order.id}/assign`, {});
      assert.equal(take.statusCode, 200, take.body);
      assert.equal(take.json().data.status, 'under_review');
      assert.equal(take.json().data.technician_id, t1.id);
      const again = await put(ctx, t2, `/api/v1/orders/${order.id}/assign`, {});
      assert.equal(again.statusCode, 422);
      assert.equal(again.json().error.code, 'ORDER_ALREADY_ASSIGNED');
      const hidden = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}`, headers: t2.auth });
      assert.equal(hidden.statusCode, 403, 'another technician may know it exists but not see it');
      const t2list = await ctx.app.inject({ method: 'GET', url: '/api/v1/orders', headers: t2.auth });
      assert.equal(t2list.json().data.length, 0);
    } finally {
      await ctx.close();
    }
  });

  it('assigns to the technician with the fewest open orders, ties to the least recently assigned', async () => {
    const ctx = await buildTestApp();
    try {
      const customer = await registerUser(ctx);
      const t1 = await registerUser(ctx, 'nail_technician');
      const t2 = await registerUser(ctx, 'nail_technician');
      const t3 = await registerUser(ctx, 'nail_technician');
      const first = await createOrder(ctx, customer);
      const second = await createOrder(ctx, customer);
      const third = await createOrder(ctx, customer);
      const owners = [first.technician_id, second.technician_id, third.technician_id];
      assert.deepEqual(new Set(owners), new Set([t1.id, t2.id, t3.id]), 'each technician gets one');
      // Close one technician's order out of the open set: they now have the fewest open orders.
      const lightest = first.technician_id === t1.id ? t1 : first.technician_id === t2.id ? t2 : t3;
      await put(ctx, lightest, `/api/v1/orders/${first.id}/review`, { action: 'reject', feedback: 'needs work' });
      const fourth = await createOrder(ctx, customer);
      assert.equal(fourth.technician_id, lightest.id);
    } finally {
      await ctx.close();
    }
  });

  it("lists a technician's own and the unassigned orders merged in one order, page by page", async () => {
    const ctx = await buildTestApp();
    try {
      const customer = await registerUser(ctx);
      const unassigned = [await createOrder(ctx, customer), await createOrder(ctx, customer)];
      const t1 = await registerUser(ctx, 'nail_technician');
      const t2 = await registerUser(ctx, 'nail_technician');
      const assigned = [];
      for (let i = 0; i < 4; i++) assigned.push(await createOrder(ctx, customer));
      const mine = assigned.filter((o) => o.technician_id === t1.id);
      assert.equal(mine.length, 2, 'the two technicians share the new orders');
      const late = await createOrder(ctx, customer, { description: 'late unassigned' });
      await ctx.database.handle.db.execute(sql`update orders set technician_id = null, status = 'submitted' where id = ${late.id}`);
      // Newest first, the two ranges (mine, unassigned) interleave: late, mine…, unassigned…
      const expected = [late, ...mine.reverse(), ...unassigned.reverse()].map((o) => o.id);
      for (const [sort, ids] of [['-created_at', expected], ['created_at', [...expected].reverse()]] as const) {
        const seen: string[] = [];
        for (let page = 1; page <= 3; page++) {
          const res = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders?limit=2&page=${page}&sort=${sort}`, headers: t1.auth });
          assert.equal(res.statusCode, 200, res.body);
          assert.deepEqual(res.json().pagination, { page, limit: 2, total: 5, totalPages: 3, hasNext: page < 3, hasPrev: page > 1 });
          seen.push(...res.json().data.map((o: { id: string }) => o.id));
        }
        assert.deepEqual(seen, ids, sort);
      }
      const other = await ctx.app.inject({ method: 'GET', url: '/api/v1/orders?limit=100', headers: t2.auth });
      assert.ok(!other.json().data.some((o: { id: string }) => mine.some((m) => m.id === o.id)), "never another technician's orders");
    } finally {
      await ctx.close();
    }
  });

  it('exactly one of 50 concurrent self-assignments wins', async () => {
    const ctx = await buildTestApp();
    try {
      const customer = await registerUser(ctx);
      const order = await createOrder(ctx, customer);
      const techs = await Promise.all(Array.from({ length: 50 }, () => registerUser(ctx, 'nail_technician')));
      const results = await Promise.all(techs.map((t) => put(ctx, t, `/api/v1/orders/${order.id}/assign`, {})));
      const codes = results.map((r) => r.statusCode);
      assert.equal(codes.filter((c) => c === 200).length, 1, codes.join(','));
      assert.equal(codes.filter((c) => c === 422).length, 49);
      assert.equal(await count(ctx, `order_events where order_id = '${order.id}' and to_status = 'under_review'`), 1);
    } finally {
      await ctx.close();
    }
  });

  it('exactly one of 20 concurrent identical status moves wins, with one event', async () => {
    const ctx = await buildTestApp();
    try {
      const customer = await registerUser(ctx);
      const tech = await registerUser(ctx, 'nail_technician');
      const order = await createOrder(ctx, customer);
      assert.equal((await put(ctx, tech, `/api/v1/orders/${order.id}/review`, { action: 'accept', complexity_multiplier: 1 })).statusCode, 200);
      assert.equal((await put(ctx, tech, `/api/v1/orders/${order.id}/payment`, { payment_status: 'paid' })).statusCode, 200);
      const results = await Promise.all(
        Array.from({ length: 20 }, () => put(ctx, tech, `/api/v1/orders/${order.id}/status`, { status: 'in_production' })),
      );
      const codes = results.map((r) => r.statusCode);
      assert.equal(codes.filter((c) => c === 200).length, 1, codes.join(','));
      assert.ok(results.filter((r) => r.statusCode === 422).every((r) => r.json().error.details.current_status === 'in_production'));
      assert.equal(await count(ctx, `order_events where order_id = '${order.id}' and to_status = 'in_production'`), 1);
      const detail = results.find((r) => r.statusCode === 200)!.json().data;
      assert.equal(detail.status, 'in_production');
      assert.deepEqual(detail.events.at(-1), { ...detail.events.at(-1), from_status: 'accepted', to_status: 'in_production', actor: { id: tech.id, name: tech.name } });
    } finally {
      await ctx.close();
    }
  });
});

describe('orders: permissions and rules', () => {
  let ctx: TestContext;
  let a: TestUser;
  let b: TestUser;
  let tech: TestUser;
  let otherTech: TestUser;
  let order: { id: string };
  before(async () => {
    ctx = await buildTestApp();
    tech = await registerUser(ctx, 'nail_technician');
    a = await registerUser(ctx, 'customer');
    b = await registerUser(ctx, 'customer');
    order = await createOrder(ctx, a);
    otherTech = await registerUser(ctx, 'nail_technician');
  });
  after(() => ctx.close());

  it("hides another customer's order, image and messages (404)", async () => {
    for (const url of [`/api/v1/orders/${order.id}`, `/api/v1/orders/${order.id}/messages`]) {
      const res = await ctx.app.inject({ method: 'GET', url, headers: b.auth });
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.json().error.code, 'ORDER_NOT_FOUND');
    }
    const post = await ctx.app.inject({ method: 'POST', url: `/api/v1/orders/${order.id}/messages`, headers: b.auth, payload: { text: 'hi' } });
    assert.equal(post.statusCode, 404);
    const list = await ctx.app.inject({ method: 'GET', url: '/api/v1/orders', headers: b.auth });
    assert.equal(list.json().data.length, 0);
    const revise = await put(ctx, b, `/api/v1/orders/${order.id}/design`, { description: 'mine now' });
    assert.equal(revise.statusCode, 404);
    const reorder = await ctx.app.inject({ method: 'POST', url: `/api/v1/orders/${order.id}/reorder`, headers: b.auth, payload: {} });
    assert.equal(reorder.statusCode, 404);
  });

  it('refuses roles that may not act', async () => {
    const review = await put(ctx, a, `/api/v1/orders/${order.id}/review`, { action: 'accept', complexity_multiplier: 2 });
    assert.equal(review.statusCode, 403);
    const byOther = await put(ctx, otherTech, `/api/v1/orders/${order.id}/review`, { action: 'accept', complexity_multiplier: 2 });
    assert.equal(byOther.statusCode, 403);
    assert.equal(byOther.json().error.code, 'NOT_ASSIGNED');
    const techSubmit = await submitOrder(ctx, tech);
    assert.equal(techSubmit.statusCode, 403);
    const customerProduction = await put(ctx, a, `/api/v1/orders/${order.id}/status`, { status: 'in_production' });
    assert.equal(customerProduction.statusCode, 403);
    const strangerDelivered = await put(ctx, b, `/api/v1/orders/${order.id}/status`, { status: 'delivered' });
    assert.equal(strangerDelivered.statusCode, 404, "another customer's order does not exist for them");
    const otherTechStatus = await put(ctx, otherTech, `/api/v1/orders/${order.id}/status`, { status: 'in_production' });
    assert.equal(otherTechStatus.statusCode, 403);
    assert.equal(otherTechStatus.json().error.code, 'NOT_ASSIGNED');
    const anonymous = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}` });
    assert.equal(anonymous.statusCode, 401);
    const otherTechMessages = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}/messages`, headers: otherTech.auth });
    assert.equal(otherTechMessages.statusCode, 403);
    const otherTechPost = await ctx.app.inject({
      method: 'POST',
      url: `/api/v1/orders/${order.id}/messages`,
      headers: otherTech.auth,
      payload: { text: 'not my order' },
    });
    assert.equal(otherTechPost.statusCode, 403);
    assert.equal(otherTechPost.json().error.code, 'NOT_ASSIGNED');
    assert.equal(await count(ctx, 'messages'), 0, 'nothing stored');
  });

  it('validates review input', async () => {
    const cases: Array<[unknown, string]> = [
      [{ action: 'reject' }, 'feedback'],
      [{ action: 'reject', feedback: '   ' }, 'feedback'],
      [{ action: 'accept' }, 'complexity_multiplier'],
      [{ action: 'accept', complexity_multiplier: 1.234 }, 'complexity_multiplier'],
      [{ action: 'accept', complexity_multiplier: 5.01 }, 'complexity_multiplier'],
      [{ action: 'accept', complexity_multiplier: 0.99 }, 'complexity_multiplier'],
      [{ action: 'approve' }, 'action'],
    ];
    for (const [payload, field] of cases) {
      const res = await put(ctx, tech, `/api/v1/orders/${order.id}/review`, payload);
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
      assert.ok(field in res.json().error.details, `${JSON.stringify(payload)} → ${res.body}`);
    }
    const still = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}`, headers: a.auth });
    assert.equal(still.json().data.status, 'under_review');
  });

  it('refuses transitions the workflow does not draw with 422 and the current status', async () => {
    for (const status of ['delivered', 'shipped', 'in_production', 'submitted', 'accepted', 'rejected']) {
      const res = await put(ctx, tech, `/api/v1/orders/${order.id}/status`, { status });
      assert.equal(res.statusCode, 422, status);
      assert.equal(res.json().error.code, 'INVALID_STATE');
      assert.equal(res.json().error.details.current_status, 'under_review');
    }
    const pay = await put(ctx, tech, `/api/v1/orders/${order.id}/payment`, { payment_status: 'paid' });
    assert.equal(pay.statusCode, 422);
    const revise = await put(ctx, a, `/api/v1/orders/${order.id}/design`, { description: 'not rejected yet' });
    assert.equal(revise.statusCode, 422);
    const bad = await put(ctx, tech, `/api/v1/orders/${order.id}/status`, { status: 'cancelled' });
    assert.equal(bad.statusCode, 400);
  });

  it('keeps a conversation between the customer and the assigned technician, oldest first, paginated', async () => {
    for (let i = 1; i <= 5; i++) {
      const who = i % 2 ? a : tech;
      const res = await ctx.app.inject({ method: 'POST', url: `/api/v1/orders/${order.id}/messages`, headers: who.auth, payload: { text: `message ${i}` } });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().data.sender.id, who.id);
      assert.ok(!('email' in res.json().data.sender));
    }
    const page2 = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}/messages?page=2&limit=2`, headers: tech.auth });
    assert.equal(page2.statusCode, 200);
    assert.deepEqual(page2.json().data.map((m: { text: string }) => m.text), ['message 3', 'message 4']);
    assert.deepEqual(page2.json().pagination, { page: 2, limit: 2, total: 5, totalPages: 3, hasNext: true, hasPrev: true });
    for (const text of ['', '   ', 'x'.repeat(2001)]) {
      const res = await ctx.app.inject({ method: 'POST', url: `/api/v1/orders/${order.id}/messages`, headers: a.auth, payload: { text } });
      assert.equal(res.statusCode, 400, JSON.stringify(text));
    }
    assert.equal(await count(ctx, 'messages'), 5);
  });

  it('posts a retried message once when it carries the same Idempotency-Key', async () => {
    const url = `/api/v1/orders/${order.id}/messages`;
    const send = (text: string, key = 'message-retry-0001') =>
      ctx.app.inject({ method: 'POST', url, headers: { ...a.auth, 'idempotency-key': key }, payload: { text } });
    const first = await send('Is the glitter holographic?');
    const retry = await send('Is the glitter holographic?');
    assert.equal(first.statusCode, 201);
    assert.equal(retry.statusCode, 201);
    assert.equal(retry.headers['idempotent-replayed'], 'true');
    assert.deepEqual(retry.json().data, first.json().data);
    const misuse = await send('Something else entirely');
    assert.equal(misuse.statusCode, 422);
    assert.equal(misuse.json().error.code, 'IDEMPOTENCY_KEY_REUSED');
    assert.equal(await count(ctx, `messages where text = 'Is the glitter holographic?'`), 1);
    const otherKey = await send('Is the glitter holographic?', 'message-retry-0002');
    assert.equal(otherKey.statusCode, 201, 'a new key is a new message');
  });
});

describe('orders: the stored image', () => {
  it('is the uploaded image without its metadata chunks or trailing bytes, transparency and colour kept', async () => {
    const ctx = await buildTestApp();
    try {
      const customer = await registerUser(ctx);
      // A palette image with transparency (PLTE + tRNS), plus text and time chunks and bytes after IEND.
      const raw = Buffer.alloc(120 * 100 * 4);
      for (let i = 0; i < raw.length; i += 4) raw.set([(i >> 4) & 0xff, 90, 200, i % 3 ? 255 : 0], i);
      const palette = await sharp(raw, { raw: { width: 120, height: 100, channels: 4 } }).png({ palette: true }).toBuffer();
      const upload = Buffer.concat([
        withChunks(
          palette,
          pngChunk('gAMA', Buffer.from([0, 0, 0xb1, 0x8f])),
          pngChunk('tEXt', Buffer.from('Author\0Ana Private-Name')),
          pngChunk('tIME', Buffer.from([7, 233, 1, 2, 3, 4, 5])),
        ),
        Buffer.from('trailing secret'),
      ]);
      const order = await createOrder(ctx, customer, { image: upload });
      const stored = (await fetchSigned(ctx, order.image_url)).rawPayload;
      assert.ok(!stored.includes(Buffer.from('Private-Name')) && !stored.includes(Buffer.from('tIME')), 'no metadata chunks');
      assert.ok(!stored.includes(Buffer.from('trailing secret')), 'nothing after IEND');
      const types: string[] = [];
      for (let at = 8; at < stored.length; at += 12 + stored.readUInt32BE(at)) types.push(stored.toString('latin1', at + 4, at + 8));
      assert.deepEqual([...new Set(types)], ['IHDR', 'gAMA', 'PLTE', 'tRNS', 'IDAT', 'IEND'], 'the image and colour chunks alone');
      const pixels = async (png: Buffer) => sharp(png).ensureAlpha().raw().toBuffer();
      assert.deepEqual(await pixels(stored), await pixels(upload), 'same pixels, transparency included');
    } finally {
      await ctx.close();
    }
  });
});

describe('orders: upload refusals leave nothing behind', () => {
  let ctx: TestContext;
  let customer: TestUser;
  before(async () => {
    ctx = await buildTestApp();
    customer = await registerUser(ctx);
  });
  after(() => ctx.close());

  const cases: Array<[string, () => Promise<{ fields?: Record<string, string>; file?: FilePart | null }>, number, string]> = [
    ['a JPEG renamed .png', async () => ({ file: { filename: 'design.png', contentType: 'image/png', data: await sharp(await png()).jpeg().toBuffer() } }), 400, 'INVALID_FILE_FORMAT'],
    ['a PNG declared as image/jpeg', async () => ({ file: { filename: 'design.png', contentType: 'image/jpeg', data: await png() } }), 400, 'INVALID_FILE_FORMAT'],
    ['a PNG named .jpg', async () => ({ file: { filename: 'design.jpg', contentType: 'image/png', data: await png() } }), 400, 'INVALID_FILE_FORMAT'],
    ['99×99', async () => ({ file: pngPart(await png(99, 99)) }), 400, 'INVALID_IMAGE_DIMENSIONS'],
    ['4097×100', async () => ({ file: pngPart(await png(4097, 100)) }), 400, 'INVALID_IMAGE_DIMENSIONS'],
    ['11 MB', async () => ({ file: pngPart(Buffer.concat([await png(), Buffer.alloc(11 * 1024 * 1024)])) }), 413, 'FILE_TOO_LARGE'],
    ['a truncated PNG', async () => {
      const full = await png(400, 400);
      return { file: pngPart(full.subarray(0, Math.floor(full.length / 2))) };
    }, 400, 'INVALID_IMAGE'],
    ['corrupt pixel data', async () => {
      const data = Buffer.from(await png(400, 400));
      for (let i = data.length >> 1; i < (data.length >> 1) + 64; i++) data[i] = data[i]! ^ 0x5a;
      return { file: pngPart(data) };
    }, 400, 'INVALID_IMAGE'],
    ['an unknown critical chunk', async () => ({ file: pngPart(withChunks(await png(), pngChunk('ZZZZ', Buffer.from('must understand')))) }), 400, 'INVALID_IMAGE'],
    ['a PNG without its end chunk', async () => {
      const full = await png();
      return { file: pngPart(full.subarray(0, full.length - 12)) };
    }, 400, 'INVALID_IMAGE'],
    ['a header claiming 100000×100000', async () => {
      const data = Buffer.from(await png(200, 200));
      data.writeUInt32BE(100000, 16);
      data.writeUInt32BE(100000, 20);
      return { file: pngPart(data) };
    }, 400, 'INVALID_IMAGE_DIMENSIONS'],
    ['a zero-byte file', async () => ({ file: pngPart(Buffer.alloc(0)) }), 400, 'INVALID_FILE_FORMAT'],
    ['no image field', async () => ({ file: null }), 400, 'VALIDATION_ERROR'],
    ['a file in another field', async () => ({ file: { ...pngPart(await png()), field: 'picture' } as never }), 400, 'UNEXPECTED_FILE_FIELD'],
    ['a path in the file name', async () => ({ file: pngPart(await png(), '../../etc/passwd.png') }), 400, 'INVALID_FILE_NAME'],
    ['quantity 0', async () => ({ fields: { quantity: '0' }, file: pngPart(await png()) }), 400, 'VALIDATION_ERROR'],
    ['quantity 21', async () => ({ fields: { quantity: '21' }, file: pngPart(await png()) }), 400, 'VALIDATION_ERROR'],
    ['an unknown field', async () => ({ fields: { colour: 'red' }, file: pngPart(await png()) }), 400, 'VALIDATION_ERROR'],
  ];

  for (const [name, make, status, code] of cases) {
    it(`refuses ${name} with ${status} ${code}`, async () => {
      const { fields, file } = await make();
      const body = multipart({ description: 'A design', quantity: 1, ...fields }, file ? [file as never] : []);
      const res = await ctx.app.inject({ method: 'POST', url: '/api/v1/orders', headers: { ...customer.auth, ...body.headers }, payload: body.payload });
      assert.equal(res.statusCode, status, res.body);
      assert.equal(res.json().error.code, code);
      assert.ok(res.json().error.message.length > 10, 'a message a person can act on');
      assert.equal(await count(ctx, 'orders'), 0);
      assert.deepEqual(storedKeys(ctx), []);
    });
  }
});

describe('orders: lists, idempotency and reorder', () => {
  let ctx: TestContext;
  let customer: TestUser;
  let tech: TestUser;
  before(async () => {
    ctx = await buildTestApp();
    tech = await registerUser(ctx, 'nail_technician');
    customer = await registerUser(ctx);
  });
  after(() => ctx.close());

  it('replays a retried submission with the same Idempotency-Key', async () => {
    const image = await png(200, 200, 42);
    const headers = { 'idempotency-key': 'order-attempt-0001' };
    const first = await submitOrder(ctx, customer, { image, headers, description: 'Idempotent set' });
    assert.equal(first.statusCode, 201);
    const second = await submitOrder(ctx, customer, { image, headers, description: 'Idempotent set' });
    assert.equal(second.statusCode, 201);
    assert.equal(second.headers['idempotent-replayed'], 'true');
    assert.equal(second.json().data.id, first.json().data.id);
    const different = await submitOrder(ctx, customer, { image, headers, description: 'Another set' });
    assert.equal(different.statusCode, 422);
    assert.equal(different.json().error.code, 'IDEMPOTENCY_KEY_REUSED');
    const bad = await submitOrder(ctx, customer, { image, headers: { 'idempotency-key': 'has space' } });
    assert.equal(bad.statusCode, 400);
    assert.equal(await count(ctx, `orders where description = 'Idempotent set'`), 1);
  });

  it('lets concurrent duplicates create one order', async () => {
    const image = await png(200, 200, 43);
    const headers = { 'idempotency-key': 'concurrent-attempt-1' };
    const results = await Promise.all(Array.from({ length: 5 }, () => submitOrder(ctx, customer, { image, headers, description: 'Concurrent set' })));
    for (const r of results) assert.ok([201, 409].includes(r.statusCode), r.body);
    assert.ok(results.some((r) => r.statusCode === 201));
    assert.equal(await count(ctx, `orders where description = 'Concurrent set'`), 1);
  });

  it('reorders with a copied image, a link to the original and a fresh review', async () => {
    const original = await createOrder(ctx, customer, { description: 'Reorder me', quantity: 1 });
    const res = await ctx.app.inject({ method: 'POST', url: `/api/v1/orders/${original.id}/reorder`, headers: customer.auth, payload: { quantity: 4 } });
    assert.equal(res.statusCode, 201, res.body);
    const copy = res.json().data;
    assert.notEqual(copy.id, original.id);
    assert.equal(copy.original_order_id, original.id);
    assert.equal(copy.quantity, 4);
    assert.equal(copy.description, 'Reorder me');
    assert.equal(copy.status, 'under_review');
    assert.equal(copy.technician_id, tech.id);
    assert.equal(copy.revision_count, 0);
    assert.ok(copy.image_url.includes(copy.id), 'the copy lives under the new order');
    const [x, y] = await Promise.all([fetchSigned(ctx, original.image_url), fetchSigned(ctx, copy.image_url)]);
    assert.ok(Buffer.compare(x.rawPayload, y.rawPayload) === 0, 'same bytes');
    const noBody = await ctx.app.inject({ method: 'POST', url: `/api/v1/orders/${original.id}/reorder`, headers: customer.auth });
    assert.equal(noBody.statusCode, 201, noBody.body);
    assert.equal(noBody.json().data.quantity, 1);
  });

  it('filters, sorts and pages, refusing invalid values', async () => {
    const mine = await registerUser(ctx);
    for (const d of ['alpha flowers', 'beta stripes', 'gamma flowers']) await createOrder(ctx, mine, { description: d });
    const list = async (qs: string) => ctx.app.inject({ method: 'GET', url: `/api/v1/orders?${qs}`, headers: mine.auth });
    const all = await list('sort=created_at');
    assert.deepEqual(all.json().data.map((o: { description: string }) => o.description), ['alpha flowers', 'beta stripes', 'gamma flowers']);
    const search = await list('search=flowers&sort=-created_at');
    assert.deepEqual(search.json().data.map((o: { description: string }) => o.description), ['gamma flowers', 'alpha flowers']);
    const paged = await list('limit=1&page=2&sort=created_at');
    assert.equal(paged.json().data[0].description, 'beta stripes');
    assert.deepEqual(paged.json().pagination, { page: 2, limit: 1, total: 3, totalPages: 3, hasNext: true, hasPrev: true });
    const status = await list('status=under_review,accepted');
    assert.equal(status.json().data.length, 3);
    const none = await list('status=delivered');
    assert.equal(none.json().data.length, 0);
    const future = await list(`from_date=${new Date(Date.now() + 86400000).toISOString()}`);
    assert.equal(future.json().data.length, 0);
    for (const qs of ['limit=101', 'limit=0', 'page=0', 'sort=price', 'status=lost', 'from_date=yesterday', 'unknown=1', 'limit=abc']) {
      const res = await list(qs);
      assert.equal(res.statusCode, 400, qs);
      assert.equal(res.json().error.code, 'VALIDATION_ERROR');
    }
  });

  it('refuses a signed image link once it has expired or was tampered with', async () => {
    const order = await createOrder(ctx, customer);
    const u = new URL(order.image_url);
    const expired = new URL(u);
    expired.searchParams.set('expires', String(Math.floor(Date.now() / 1000) - 10));
    const res = await ctx.app.inject({ method: 'GET', url: expired.pathname + expired.search });
    assert.equal(res.statusCode, 403, 'changing the expiry breaks the signature or is refused as expired');
    const ok = await ctx.app.inject({ method: 'GET', url: u.pathname + u.search });
    assert.equal(ok.statusCode, 200);
    const expiresIn = Number(u.searchParams.get('expires')) - Date.now() / 1000;
    assert.ok(expiresIn > 3500 && expiresIn <= 3600, `valid for one hour (${expiresIn})`);
  });
});

describe('orders: nobody acts as technician on their own customer order (issue 14, defect 3)', () => {
  it('refuses taking it (422 OWN_ORDER) and never auto-assigns it to its customer', async () => {
    const ctx = await buildTestApp();
    try {
      const person = await registerUser(ctx, 'customer', 'Dana Both');
      const own = await createOrder(ctx, person);
      assert.equal(own.status, 'submitted', 'no technician yet');
      // The same account, later given the technician role in Auth0 (the role claim is the token's).
      const asTech = { authorization: `Bearer ${await ctx.auth0.token({ sub: person.sub, role: 'nail_technician', email: person.email, name: person.name })}` };
      const login = await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: asTech });
      assert.equal(login.statusCode, 200, login.body);

      const take = await ctx.app.inject({ method: 'PUT', url: `/api/v1/orders/${own.id}/assign`, headers: asTech, payload: {} });
      assert.equal(take.statusCode, 422, take.body);
      assert.equal(take.json().error.code, 'OWN_ORDER');
      assert.match(take.json().error.message, /your own order/);

      // Back as a customer: the only technician is this person, who may not review their own order.
      const next = await createOrder(ctx, person);
      assert.equal(next.status, 'submitted');
      assert.equal(next.technician_id, null);

      const other = await registerUser(ctx, 'nail_technician', 'Tia Other');
      const third = await createOrder(ctx, person);
      assert.equal(third.technician_id, other.id, 'another technician is picked');
      for (const [url, payload] of [
        [`/api/v1/orders/${third.id}/review`, { action: 'accept', complexity_multiplier: 2 }],
        [`/api/v1/orders/${third.id}/assign`, {}],
      ] as const) {
        const res = await ctx.app.inject({ method: 'PUT', url, headers: asTech, payload });
        assert.ok([403, 422].includes(res.statusCode), `${url}: ${res.body}`);
        assert.notEqual(res.json().error.code, undefined);
      }
      const still = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${third.id}`, headers: person.auth });
      assert.equal(still.json().data.status, 'under_review');
    } finally {
      await ctx.close();
    }
  });

  it('refuses review, payment and production on an own order already assigned to its customer (422 OWN_ORDER)', async () => {
    const ctx = await buildTestApp();
    try {
      const person = await registerUser(ctx, 'customer', 'Eli Both');
      const order = await createOrder(ctx, person);
      // As data from before the rule could hold it: the order assigned to its own customer.
      await ctx.database.handle.db.execute(
        sql`update orders set technician_id = ${person.id}, status = 'under_review' where id = ${order.id}`,
      );
      const asTech = { authorization: `Bearer ${await ctx.auth0.token({ sub: person.sub, role: 'nail_technician', email: person.email, name: person.name })}` };
      const moves: Array<[string, unknown]> = [
        [`/api/v1/orders/${order.id}/review`, { action: 'accept', complexity_multiplier: 2 }],
        [`/api/v1/orders/${order.id}/review`, { action: 'reject', feedback: 'Mine' }],
        [`/api/v1/orders/${order.id}/payment`, { payment_status: 'paid' }],
        [`/api/v1/orders/${order.id}/status`, { status: 'in_production' }],
      ];
      for (const [url, payload] of moves) {
        const res = await ctx.app.inject({ method: 'PUT', url, headers: asTech, payload: payload as object });
        assert.equal(res.statusCode, 422, `${url} ${JSON.stringify(payload)}: ${res.body}`);
        assert.equal(res.json().error.code, 'OWN_ORDER');
      }
      const events = await count(ctx, `order_events where order_id = '${order.id}'`);
      assert.equal(events, 1, 'only the submission event');
    } finally {
      await ctx.close();
    }
  });
});

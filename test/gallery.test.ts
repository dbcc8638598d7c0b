import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from '../src/db/orm.js';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { createOrder, png, put } from './support/orders.js';

async function publish(ctx: TestContext, owner: TestUser, designId: string, isPublic = true) {
  return put(ctx, owner, `/api/v1/designs/${designId}/visibility`, { is_public: isPublic });
}

const gallery = (ctx: TestContext, qs = '') => ctx.app.inject({ method: 'GET', url: `/api/v1/designs${qs ? `?${qs}` : ''}` });

describe('gallery', () => {
  let ctx: TestContext;
  let owner: TestUser;
  let other: TestUser;
  let tech: TestUser;
  before(async () => {
    ctx = await buildTestApp();
    tech = await registerUser(ctx, 'nail_technician');
    owner = await registerUser(ctx, 'customer', 'Olivia Owner');
    other = await registerUser(ctx, 'customer', 'Rita Reuser');
  });
  after(() => ctx.close());

  it('keeps a new design private, shows it once public, hides it again, and never brings back a removed one', async () => {
    const order = await createOrder(ctx, owner, { description: 'Holographic mermaid scales' });
    assert.equal((await gallery(ctx)).json().data.length, 0, 'private by default');
    const anonymousPeek = await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${order.design_id}` });
    assert.equal(anonymousPeek.statusCode, 404);
    const ownerPeek = await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${order.design_id}`, headers: owner.auth });
    assert.equal(ownerPeek.statusCode, 200, 'the owner sees a private design');
    assert.equal(ownerPeek.json().data.is_public, false);

    const shared = await publish(ctx, owner, order.design_id);
    assert.equal(shared.statusCode, 200, shared.body);
    const publishedAt = shared.json().data.published_at;
    assert.ok(publishedAt);
    const list = await gallery(ctx);
    assert.equal(list.statusCode, 200);
    assert.equal(list.json().data.length, 1);
    const item = list.json().data[0];
    assert.equal(item.id, order.design_id);
    assert.deepEqual(item.owner, { id: owner.id, name: 'Olivia Owner' });
    assert.ok(!JSON.stringify(list.json()).includes(owner.email), 'no email in the gallery');
    const u = new URL(item.image_url);
    const image = await ctx.app.inject({ method: 'GET', url: u.pathname + u.search });
    assert.equal(image.statusCode, 200, 'anonymous clients get working image links');
    const t = new URL(item.thumbnail_url);
    assert.equal((await ctx.app.inject({ method: 'GET', url: t.pathname + t.search })).statusCode, 200);

    const byOther = await publish(ctx, other, order.design_id, false);
    assert.equal(byOther.statusCode, 404, 'only the owner changes visibility');

    assert.equal((await publish(ctx, owner, order.design_id, false)).statusCode, 200);
    assert.equal((await gallery(ctx)).json().data.length, 0);
    const again = await publish(ctx, owner, order.design_id, true);
    assert.equal(again.json().data.published_at, publishedAt, 'published_at is set only the first time');

    const removedByOther = await ctx.app.inject({ method: 'DELETE', url: `/api/v1/designs/${order.design_id}`, headers: other.auth });
    assert.equal(removedByOther.statusCode, 404);
    const removed = await ctx.app.inject({ method: 'DELETE', url: `/api/v1/designs/${order.design_id}`, headers: owner.auth });
    assert.equal(removed.statusCode, 204);
    assert.equal((await gallery(ctx)).json().data.length, 0);
    assert.equal((await publish(ctx, owner, order.design_id, true)).statusCode, 404, 'a removed design stays removed');
    assert.equal((await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${order.design_id}`, headers: owner.auth })).statusCode, 404);
    const orderStill = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${order.id}`, headers: owner.auth });
    assert.equal(orderStill.statusCode, 200, 'the order and its image stay');
    const reuse = await ctx.app.inject({ method: 'POST', url: '/api/v1/orders', headers: other.auth, payload: { source_design_id: order.design_id, quantity: 1 } });
    assert.equal(reuse.statusCode, 404, 'a removed design cannot be reused');
  });

  it('searches descriptions and sorts by reuse', async () => {
    const a = await createOrder(ctx, owner, { description: 'Cherry blossom french tips' });
    const b = await createOrder(ctx, owner, { description: 'Galaxy swirl with stars' });
    await publish(ctx, owner, a.design_id);
    await publish(ctx, owner, b.design_id);
    const found = await gallery(ctx, 'search=blossoms');
    assert.deepEqual(found.json().data.map((d: { id: string }) => d.id), [a.design_id], 'stemmed word matches');
    assert.equal((await gallery(ctx, 'search=leopard')).json().data.length, 0);
    const newest = await gallery(ctx);
    assert.equal(newest.json().data[0].id, b.design_id, 'newest first by default');

    for (let i = 0; i < 2; i++) {
      const res = await ctx.app.inject({ method: 'POST', url: '/api/v1/orders', headers: other.auth, payload: { source_design_id: a.design_id, quantity: 1 } });
      assert.equal(res.statusCode, 201, res.body);
    }
    const byReuse = await gallery(ctx, 'sort=-reuse_count');
    assert.equal(byReuse.json().data[0].id, a.design_id);
    assert.equal(byReuse.json().data[0].reuse_count, 2);
    assert.equal((await gallery(ctx, 'sort=reuse_count')).statusCode, 400, 'only documented sorts');
    assert.equal((await gallery(ctx, 'limit=500')).statusCode, 400);
  });

  it('reuse copies the image, records the use, and shows the owner who reused it without emails', async () => {
    const source = await createOrder(ctx, owner, { description: 'Tortoiseshell almond', image: await png(250, 250, 99) });
    await publish(ctx, owner, source.design_id);
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/orders',
      headers: other.auth,
      payload: { source_design_id: source.design_id, quantity: 2, description: 'Tortoiseshell almond, but shorter' },
    });
    assert.equal(res.statusCode, 201, res.body);
    const copy = res.json().data;
    assert.equal(copy.source_design_id, source.design_id);
    assert.equal(copy.customer_id, other.id);
    assert.equal(copy.description, 'Tortoiseshell almond, but shorter');
    assert.equal(copy.status, 'under_review', 'normal review');
    assert.notEqual(new URL(copy.image_url).pathname, new URL(source.image_url).pathname, 'a new key');
    const [x, y] = await Promise.all(
      [source.image_url, copy.image_url].map((url: string) => {
        const u = new URL(url);
        return ctx.app.inject({ method: 'GET', url: u.pathname + u.search });
      }),
    );
    assert.equal(Buffer.compare(x!.rawPayload, y!.rawPayload), 0, 'same bytes');

    const defaults = await ctx.app.inject({ method: 'POST', url: '/api/v1/orders', headers: other.auth, payload: { source_design_id: source.design_id, quantity: 1 } });
    assert.equal(defaults.json().data.description, 'Tortoiseshell almond', 'description defaults to the source');

    const inspiration = await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${source.design_id}/inspiration`, headers: owner.auth });
    assert.equal(inspiration.statusCode, 200);
    const entries = inspiration.json().data;
    assert.equal(entries.length, 2);
    assert.deepEqual(entries[0].user, { id: other.id, name: 'Rita Reuser' });
    assert.equal(entries[0].order_id, defaults.json().data.id, 'newest first');
    assert.ok(!inspiration.body.includes(other.email));
    const notOwner = await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${source.design_id}/inspiration`, headers: other.auth });
    assert.equal(notOwner.statusCode, 404);
    const privateOne = await createOrder(ctx, owner);
    const refused = await ctx.app.inject({ method: 'POST', url: '/api/v1/orders', headers: other.auth, payload: { source_design_id: privateOne.design_id, quantity: 1 } });
    assert.equal(refused.statusCode, 404);
    assert.equal(refused.json().error.code, 'DESIGN_NOT_FOUND');
  });

  it('enforces the comment rules', async () => {
    const order = await createOrder(ctx, owner, { description: 'Comment target' });
    const url = `/api/v1/designs/${order.design_id}/comments`;
    const onPrivate = await ctx.app.inject({ method: 'POST', url, headers: other.auth, payload: { text: 'hello' } });
    assert.equal(onPrivate.statusCode, 404, 'no comments on private designs');
    assert.equal((await ctx.app.inject({ method: 'GET', url })).statusCode, 404);
    await publish(ctx, owner, order.design_id);
    const anonymous = await ctx.app.inject({ method: 'POST', url, payload: { text: 'hello' } });
    assert.equal(anonymous.statusCode, 401);
    const byTech = await ctx.app.inject({ method: 'POST', url, headers: tech.auth, payload: { text: 'hello' } });
    assert.equal(byTech.statusCode, 403);
    for (const text of ['', '    ', 'x'.repeat(1001)]) {
      const res = await ctx.app.inject({ method: 'POST', url, headers: other.auth, payload: { text } });
      assert.equal(res.statusCode, 400, JSON.stringify(text));
    }
    const posted = await ctx.app.inject({ method: 'POST', url, headers: other.auth, payload: { text: '  Love these!  ' } });
    assert.equal(posted.statusCode, 201, posted.body);
    assert.equal(posted.json().data.text, 'Love these!');
    assert.deepEqual(posted.json().data.author, { id: other.id, name: 'Rita Reuser' });
    await ctx.app.inject({ method: 'POST', url, headers: owner.auth, payload: { text: 'Thank you' } });
    const read = await ctx.app.inject({ method: 'GET', url });
    assert.equal(read.statusCode, 200, 'anyone reads');
    assert.deepEqual(read.json().data.map((c: { text: string }) => c.text), ['Love these!', 'Thank you']);
    assert.ok(!read.body.includes(other.email));
    const bogus = await ctx.app.inject({ method: 'POST', url: '/api/v1/designs/00000000-0000-4000-8000-000000000000/comments', headers: other.auth, payload: { text: 'x' } });
    assert.equal(bogus.statusCode, 404);
  });

  it('keeps a retried comment once with the same Idempotency-Key, and refuses comments once the design is hidden', async () => {
    const order = await createOrder(ctx, owner, { description: 'Retry target' });
    await publish(ctx, owner, order.design_id);
    const url = `/api/v1/designs/${order.design_id}/comments`;
    const headers = { ...other.auth, 'idempotency-key': 'comment-retry-0001' };
    const first = await ctx.app.inject({ method: 'POST', url, headers, payload: { text: 'Gorgeous' } });
    const retry = await ctx.app.inject({ method: 'POST', url, headers, payload: { text: 'Gorgeous' } });
    assert.equal(first.statusCode, 201);
    assert.equal(retry.headers['idempotent-replayed'], 'true');
    assert.equal(retry.json().data.id, first.json().data.id);
    const design = await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${order.design_id}` });
    assert.equal(design.json().data.comment_count, 1);
    const hide = await ctx.app.inject({ method: 'PUT', url: `/api/v1/designs/${order.design_id}/visibility`, headers: owner.auth, payload: { is_public: false } });
    assert.equal(hide.statusCode, 200);
    const late = await ctx.app.inject({ method: 'POST', url, headers: other.auth, payload: { text: 'Too late' } });
    assert.equal(late.statusCode, 404);
    // Defect 6: a replay re-checks the design is still public, as a message replay re-checks the conversation.
    const replayHidden = await ctx.app.inject({ method: 'POST', url, headers, payload: { text: 'Gorgeous' } });
    assert.equal(replayHidden.statusCode, 404, replayHidden.body);
    assert.equal(replayHidden.json().error.code, 'DESIGN_NOT_FOUND');
    assert.ok(!replayHidden.body.includes('Gorgeous'), 'the hidden comment is not handed back');
    const mine = await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${order.design_id}`, headers: owner.auth });
    assert.equal(mine.json().data.comment_count, 1, 'the refused comment did not count');
    const rows = await ctx.database.handle.db.execute(sql`select count(*)::int as n from comments where design_id = ${order.design_id}`);
    assert.equal((rows as unknown as { rows: Array<{ n: number }> }).rows[0]!.n, 1, 'and was not stored');
  });

  it('keeps comment counts right under 20 concurrent comments', async () => {
    const order = await createOrder(ctx, owner, { description: 'Busy design' });
    await publish(ctx, owner, order.design_id);
    const url = `/api/v1/designs/${order.design_id}/comments`;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => ctx.app.inject({ method: 'POST', url, headers: (i % 2 ? owner : other).auth, payload: { text: `comment ${i}` } })),
    );
    assert.deepEqual([...new Set(results.map((r) => r.statusCode))], [201]);
    const design = await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${order.design_id}` });
    assert.equal(design.json().data.comment_count, 20);
    const rows = await ctx.database.handle.db.execute(sql`select count(*)::int as n from comments where design_id = ${order.design_id}`);
    assert.equal((rows as unknown as { rows: Array<{ n: number }> }).rows[0]!.n, 20);
    const mostCommented = await gallery(ctx, 'sort=-comment_count');
    assert.equal(mostCommented.json().data[0].id, order.design_id);
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { invariantViolations } from './support/invariants.js';
import { createOrder, put } from './support/orders.js';
import { rows } from './support/store.js';

/** The gallery community (issue 19): favourites, tags. */

const gallery = (ctx: TestContext, qs = '') => ctx.app.inject({ method: 'GET', url: `/api/v1/designs${qs ? `?${qs}` : ''}` });
const ids = (res: { json(): { data: Array<{ id: string }> } }) => res.json().data.map((d) => d.id);

describe('community', () => {
  let ctx: TestContext;
  let owner: TestUser;
  let fan: TestUser;
  let tech: TestUser;
  before(async () => {
    ctx = await buildTestApp();
    tech = await registerUser(ctx, 'nail_technician', 'Tia Tech');
    owner = await registerUser(ctx, 'customer', 'Olivia Owner');
    fan = await registerUser(ctx, 'customer', 'Fay Fan');
  });
  after(() => ctx.close());

  async function publicDesign(description: string, fields: Record<string, string> = {}): Promise<string> {
    const order = await createOrder(ctx, owner, { description, fields });
    const res = await put(ctx, owner, `/api/v1/designs/${order.design_id}/visibility`, { is_public: true });
    assert.equal(res.statusCode, 200, res.body);
    return order.design_id as string;
  }

  const favourite = (user: TestUser, id: string, method: 'PUT' | 'DELETE' = 'PUT') =>
    ctx.app.inject({ method, url: `/api/v1/designs/${id}/favourite`, headers: user.auth });
  const myFavourites = (user: TestUser, qs = '') => ctx.app.inject({ method: 'GET', url: `/api/v1/users/me/favourites${qs}`, headers: user.auth });

  describe('favourites', () => {
    it('favourites a public design once, however often asked, lists it, and takes it back', async () => {
      const id = await publicDesign('Glazed donut chrome');
      const first = await favourite(fan, id);
      assert.equal(first.statusCode, 200, first.body);
      assert.equal(first.json().data.favourite_count, 1);
      const again = await favourite(fan, id);
      assert.equal(again.statusCode, 200, 'idempotent');
      assert.equal(again.json().data.favourite_count, 1, 'a second favourite by the same customer changes nothing');

      const mine = await myFavourites(fan);
      assert.equal(mine.statusCode, 200, mine.body);
      assert.deepEqual(ids(mine), [id]);
      assert.equal(mine.json().pagination.total, 1);
      assert.deepEqual(ids(await myFavourites(owner)), [], 'favourites are per customer');

      assert.equal((await favourite(fan, id, 'DELETE')).statusCode, 204);
      assert.equal((await favourite(fan, id, 'DELETE')).statusCode, 204, 'removing again is idempotent');
      assert.equal((await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${id}` })).json().data.favourite_count, 0);
      assert.deepEqual(ids(await myFavourites(fan)), []);
    });

    it('refuses private, removed and unknown designs, technicians and anonymous callers', async () => {
      const order = await createOrder(ctx, owner, { description: 'Private negative space' });
      assert.equal((await favourite(fan, order.design_id)).statusCode, 404, 'private');
      assert.equal((await favourite(owner, order.design_id)).statusCode, 404, 'private, even for its owner: favourites are gallery designs');
      assert.equal((await favourite(fan, order.design_id, 'DELETE')).statusCode, 404);
      assert.equal((await favourite(fan, '00000000-0000-4000-8000-000000000000')).statusCode, 404, 'unknown');
      const id = await publicDesign('Tortoiseshell tips');
      const byTech = await favourite(tech, id);
      assert.equal(byTech.statusCode, 403);
      assert.equal(byTech.json().error.code, 'FORBIDDEN');
      assert.equal((await ctx.app.inject({ method: 'PUT', url: `/api/v1/designs/${id}/favourite` })).statusCode, 401);
      assert.equal((await ctx.app.inject({ method: 'GET', url: '/api/v1/users/me/favourites', headers: tech.auth })).statusCode, 403);
      const bad = await favourite(fan, 'not-a-uuid');
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().error.code, 'VALIDATION_ERROR');
    });

    it('drops a design that left the gallery from my list, keeps the count right, and still lets me unfavourite it', async () => {
      const id = await publicDesign('Velvet cat-eye');
      assert.equal((await favourite(fan, id)).statusCode, 200);
      assert.equal((await put(ctx, owner, `/api/v1/designs/${id}/visibility`, { is_public: false })).statusCode, 200);
      assert.ok(!ids(await myFavourites(fan)).includes(id), 'hidden designs leave the list');
      assert.equal((await favourite(fan, id)).statusCode, 404, 'no new favourites while hidden');
      assert.equal((await favourite(fan, id, 'DELETE')).statusCode, 204, 'an old favourite can still be dropped');
      const [row] = await rows<{ favourite_count: number }>(ctx.database.handle.db, `select favourite_count from designs where id = '${id}'`);
      assert.equal(row!.favourite_count, 0);
    });

    it('counts exactly under concurrent favourites and unfavourites, and sorts the gallery by them', async () => {
      const fans = await Promise.all(Array.from({ length: 6 }, (_, i) => registerUser(ctx, 'customer', `Fan ${i}`)));
      const quiet = await publicDesign('Quiet milky nude');
      const loved = await publicDesign('Loved aura nails');
      // Every fan favourites `loved` three times at once; half of them also drop it at the same moment.
      const calls = fans.flatMap((f, i) => [favourite(f, loved), favourite(f, loved), favourite(f, loved), ...(i % 2 ? [favourite(f, loved, 'DELETE')] : [])]);
      const results = await Promise.all(calls);
      assert.deepEqual([...new Set(results.map((r) => r.statusCode))].sort(), [200, 204]);
      // Settle: odd fans drop it for good, so exactly the three even ones keep it.
      await Promise.all(fans.map((f, i) => favourite(f, loved, i % 2 ? 'DELETE' : 'PUT')));
      const design = await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${loved}` });
      assert.equal(design.json().data.favourite_count, 3);
      const [stored] = await rows<{ n: number }>(ctx.database.handle.db, `select count(*)::int as n from design_favourites where design_id = '${loved}'`);
      assert.equal(stored!.n, 3);
      const sorted = ids(await gallery(ctx, 'sort=-favourite_count&limit=100'));
      assert.ok(sorted.indexOf(loved) < sorted.indexOf(quiet), 'most favourited first');
      assert.equal(sorted[0], loved);
      assert.deepEqual(await invariantViolations(ctx.database.handle.db), []);
    });
  });

  describe('tags', () => {
    it('carries the order’s shape and length, takes up to 5 owner tags, and filters the gallery by each', async () => {
      const almond = await publicDesign('Sunset ombre', { shape: 'almond', length: 'long' });
      const square = await publicDesign('Checkerboard', { shape: 'square', length: 'short' });
      const design = (await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${almond}` })).json().data;
      assert.equal(design.shape, 'almond');
      assert.equal(design.length, 'long');
      assert.deepEqual(design.tags, []);

      const tagged = await put(ctx, owner, `/api/v1/designs/${almond}/tags`, { tags: ['summer', 'ombre', 'y2k', 'summer'] });
      assert.equal(tagged.statusCode, 200, tagged.body);
      assert.deepEqual(tagged.json().data.tags, ['summer', 'ombre', 'y2k'], 'duplicates count once');
      await put(ctx, owner, `/api/v1/designs/${square}/tags`, { tags: ['french-tip'] });

      assert.deepEqual(ids(await gallery(ctx, 'shape=almond&limit=100')), [almond]);
      assert.deepEqual(ids(await gallery(ctx, 'length=short&limit=100')), [square]);
      assert.deepEqual(ids(await gallery(ctx, 'tag=ombre&limit=100')), [almond]);
      assert.deepEqual(ids(await gallery(ctx, 'tag=french-tip&shape=square&sort=-favourite_count')), [square]);
      assert.deepEqual(ids(await gallery(ctx, 'tag=french-tip&shape=almond')), []);
      assert.equal((await gallery(ctx, 'tag=ombre')).json().pagination.total, 1);

      const replaced = await put(ctx, owner, `/api/v1/designs/${almond}/tags`, { tags: [] });
      assert.deepEqual(replaced.json().data.tags, []);
      assert.deepEqual(ids(await gallery(ctx, 'tag=ombre')), [], 'tags are replaced, not added');
    });

    it('refuses bad tags, other people’s designs and bad filters with clear 4xx', async () => {
      const id = await publicDesign('Matte black coffin', { shape: 'coffin' });
      for (const tags of [['a'], ['x'.repeat(25)], ['Summer'], ['two words'], ['-edge'], ['a', 'b', 'c', 'd', 'e', 'f'].map((t) => `${t}${t}`), [{}]]) {
        const res = await put(ctx, owner, `/api/v1/designs/${id}/tags`, { tags });
        assert.equal(res.statusCode, 400, JSON.stringify(tags));
        assert.equal(res.json().error.code, 'VALIDATION_ERROR');
      }
      assert.equal((await put(ctx, fan, `/api/v1/designs/${id}/tags`, { tags: ['mine'] })).statusCode, 404, 'not the owner');
      assert.equal((await put(ctx, tech, `/api/v1/designs/${id}/tags`, { tags: ['mine'] })).statusCode, 403);
      for (const qs of ['shape=triangle', 'length=huge', 'tag=A', 'sort=-tags', 'tag=']) {
        const res = await gallery(ctx, qs);
        assert.equal(res.statusCode, 400, qs);
        assert.equal(res.json().error.code, 'VALIDATION_ERROR');
      }
    });
  });
});

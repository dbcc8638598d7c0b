import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { invariantViolations } from './support/invariants.js';
import { sql } from '../src/db/orm.js';
import { addBusinessDays } from '../src/modules/orders/orders.domain.js';
import { advanceOrder, createOrder, put } from './support/orders.js';
import { rows } from './support/store.js';

/** The gallery community and order promises (issue 19): favourites, tags, comment deletion, reports and moderation, ship-by dates. */

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

    it('keeps a tag’s total exact as designs are retagged, hidden, restored, unpublished and removed', async () => {
      const glow = await publicDesign('Glow in the dark');
      const neon = await publicDesign('Neon glow tips');
      await put(ctx, owner, `/api/v1/designs/${glow}/tags`, { tags: ['glow', 'uv'] });
      await put(ctx, owner, `/api/v1/designs/${neon}/tags`, { tags: ['glow'] });
      const total = async (tag: string, sort = '') => {
        const res = await gallery(ctx, `tag=${tag}${sort}`);
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.json().pagination.total, res.json().data.length, 'one page holds them all');
        return res.json().pagination.total as number;
      };
      const moderate = (action: 'hide' | 'restore') =>
        ctx.app.inject({ method: 'PUT', url: `/api/v1/moderation/designs/${glow}`, headers: tech.auth, payload: { action, note: 'test' } });
      const visible = (id: string, isPublic: boolean) => put(ctx, owner, `/api/v1/designs/${id}/visibility`, { is_public: isPublic });

      assert.equal(await total('glow'), 2);
      assert.equal(await total('glow', '&sort=-favourite_count'), 2, 'whatever the order');
      assert.equal((await moderate('hide')).statusCode, 200);
      assert.equal(await total('glow'), 1, 'a hidden design leaves its tags');
      assert.equal(await total('uv'), 0);
      assert.equal((await moderate('restore')).statusCode, 200);
      assert.equal(await total('uv'), 1, 'and takes them back when restored');
      assert.equal((await visible(neon, false)).statusCode, 200);
      assert.equal(await total('glow'), 1, 'an unpublished design leaves its tags');
      assert.equal((await visible(neon, true)).statusCode, 200);
      assert.equal(await total('glow'), 2);
      await put(ctx, owner, `/api/v1/designs/${glow}/tags`, { tags: ['uv'] });
      assert.deepEqual([await total('glow'), await total('uv')], [1, 1], 'a retag moves the design between tags');
      assert.equal((await ctx.app.inject({ method: 'DELETE', url: `/api/v1/designs/${neon}`, headers: owner.auth })).statusCode, 204);
      assert.equal(await total('glow'), 0, 'a removed design leaves its tags');
      assert.deepEqual(await invariantViolations(ctx.database.handle.db), []);
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

  describe('comments, reports and moderation', () => {
    const comment = async (user: TestUser, designId: string, text: string) => {
      const res = await ctx.app.inject({ method: 'POST', url: `/api/v1/designs/${designId}/comments`, headers: user.auth, payload: { text } });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().data.id as string;
    };
    const comments = async (designId: string) =>
      (await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${designId}/comments` })).json().data.map((c: { id: string }) => c.id);
    const commentCount = async (designId: string) => {
      const [row] = await rows<{ comment_count: number }>(ctx.database.handle.db, `select comment_count from designs where id = '${designId}'`);
      return row!.comment_count;
    };
    const report = (user: TestUser, designId: string, payload: unknown, commentId?: string) =>
      ctx.app.inject({
        method: 'POST',
        url: `/api/v1/designs/${designId}${commentId ? `/comments/${commentId}` : ''}/reports`,
        headers: user.auth,
        payload: payload as object,
      });
    const decide = (user: TestUser, designId: string, payload: unknown, commentId?: string) =>
      ctx.app.inject({
        method: 'PUT',
        url: `/api/v1/moderation/designs/${designId}${commentId ? `/comments/${commentId}` : ''}`,
        headers: user.auth,
        payload: payload as object,
      });
    const queue = async (qs = '') => {
      const res = await ctx.app.inject({ method: 'GET', url: `/api/v1/moderation/reports?limit=100${qs}`, headers: tech.auth });
      assert.equal(res.statusCode, 200, res.body);
      return res.json().data as Array<{ id: string; design_id: string; comment_id: string | null; item_hidden: boolean; reporter: { name: string }; reason: string }>;
    };

    it('lets authors delete their own comments (soft), and nobody else', async () => {
      const id = await publicDesign('Pearl french');
      const mine = await comment(fan, id, 'Love the pearls');
      const theirs = await comment(owner, id, 'Thank you!');
      assert.equal(await commentCount(id), 2);
      const url = (c: string) => `/api/v1/designs/${id}/comments/${c}`;
      assert.equal((await ctx.app.inject({ method: 'DELETE', url: url(theirs), headers: fan.auth })).statusCode, 404, 'not the author');
      assert.equal((await ctx.app.inject({ method: 'DELETE', url: url(mine), headers: tech.auth })).statusCode, 403);
      assert.equal((await ctx.app.inject({ method: 'DELETE', url: url(mine) })).statusCode, 401);
      const deleted = await ctx.app.inject({ method: 'DELETE', url: url(mine), headers: fan.auth });
      assert.equal(deleted.statusCode, 204, deleted.body);
      const again = await ctx.app.inject({ method: 'DELETE', url: url(mine), headers: fan.auth });
      assert.equal(again.statusCode, 404);
      assert.equal(again.json().error.code, 'COMMENT_NOT_FOUND');
      assert.deepEqual(await comments(id), [theirs]);
      assert.equal(await commentCount(id), 1);
      const [row] = await rows<{ deleted_at: Date | null }>(ctx.database.handle.db, `select deleted_at from comments where id = '${mine}'`);
      assert.ok(row!.deleted_at, 'soft: the row stays');
    });

    it('takes one report per user and item, and refuses what is not in the gallery', async () => {
      const id = await publicDesign('Neon splatter');
      const first = await report(fan, id, { reason: 'spam', text: ' Advertising a shop ' });
      assert.equal(first.statusCode, 201, first.body);
      assert.equal(first.json().data.text, 'Advertising a shop');
      assert.equal(first.json().data.status, 'open');
      const twice = await report(fan, id, { reason: 'offensive' });
      assert.equal(twice.statusCode, 409);
      assert.equal(twice.json().error.code, 'ALREADY_REPORTED');
      assert.equal((await report(tech, id, { reason: 'copyright' })).statusCode, 201, 'technicians may report too');
      assert.equal((await ctx.app.inject({ method: 'POST', url: `/api/v1/designs/${id}/reports`, payload: { reason: 'spam' } })).statusCode, 401);
      for (const payload of [{ reason: 'boring' }, {}, { reason: 'other', text: 'x'.repeat(1001) }, { reason: 'spam', extra: 1 }]) {
        const res = await report(owner, id, payload);
        assert.equal(res.statusCode, 400, JSON.stringify(payload));
        assert.equal(res.json().error.code, 'VALIDATION_ERROR');
      }
      const order = await createOrder(ctx, owner, { description: 'Private one' });
      assert.equal((await report(fan, order.design_id, { reason: 'spam' })).statusCode, 404, 'private designs');
      const c = await comment(owner, id, 'Buy my stuff');
      assert.equal((await report(fan, id, { reason: 'spam' }, c)).statusCode, 201, 'a comment is its own item');
      assert.equal((await report(fan, id, { reason: 'spam' }, c)).json().error.code, 'ALREADY_REPORTED');
      assert.equal((await report(fan, order.design_id, { reason: 'spam' }, c)).statusCode, 404, 'the comment must be on that design');
      const queued = await queue();
      assert.ok(queued.some((r) => r.design_id === id && r.comment_id === null && r.reporter.name === 'Fay Fan' && r.reason === 'spam'));
      assert.equal((await ctx.app.inject({ method: 'GET', url: '/api/v1/moderation/reports', headers: fan.auth })).statusCode, 403, 'technicians only');
    });

    it('hides a design after 3 open reports from different users, exactly like a removed one, until a technician restores it', async () => {
      const id = await publicDesign('Reported chrome flames');
      await comment(fan, id, 'Hmm');
      assert.equal((await favourite(fan, id)).statusCode, 200);
      const reporters = await Promise.all(Array.from({ length: 4 }, (_, i) => registerUser(ctx, 'customer', `Reporter ${i}`)));
      // Three at once: the item row lock counts them one after another, so the third hides it.
      const results = await Promise.all(reporters.slice(0, 3).map((r) => report(r, id, { reason: 'offensive' })));
      assert.deepEqual(results.map((r) => r.statusCode), [201, 201, 201]);

      assert.ok(!ids(await gallery(ctx, 'limit=100')).includes(id), 'gone from the gallery');
      assert.ok(!ids(await gallery(ctx, 'search=flames')).includes(id), 'gone from search');
      assert.equal((await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${id}` })).statusCode, 404);
      assert.equal((await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${id}`, headers: owner.auth })).statusCode, 404, 'even for its owner, as removed');
      const reuse = await ctx.app.inject({ method: 'POST', url: '/api/v1/orders', headers: fan.auth, payload: { source_design_id: id, quantity: 1 } });
      assert.equal(reuse.statusCode, 404, 'no reuse');
      assert.equal((await ctx.app.inject({ method: 'POST', url: `/api/v1/designs/${id}/comments`, headers: fan.auth, payload: { text: 'x' } })).statusCode, 404);
      assert.equal((await report(reporters[3]!, id, { reason: 'spam' })).statusCode, 404, 'hidden items take no more reports');
      assert.ok(!ids(await myFavourites(fan)).includes(id));
      const [action] = await rows<{ action: string; moderator_id: string | null }>(
        ctx.database.handle.db,
        `select action, moderator_id from moderation_actions where design_id = '${id}'`,
      );
      assert.deepEqual({ ...action }, { action: 'auto_hide', moderator_id: null }, 'the automatic hide is audited');
      const open = (await queue()).filter((r) => r.design_id === id);
      assert.equal(open.length, 3, 'the reports stay open until reviewed');
      assert.ok(open.every((r) => r.item_hidden));

      const restored = await decide(tech, id, { action: 'restore', note: 'Reviewed: not offensive' });
      assert.equal(restored.statusCode, 200, restored.body);
      assert.equal(restored.json().data.reports_closed, 3);
      assert.equal(restored.json().data.moderator.id, tech.id);
      assert.ok(ids(await gallery(ctx, 'limit=100')).includes(id), 'back in the gallery');
      assert.ok(!(await queue()).some((r) => r.design_id === id), 'no longer in the open queue');
      assert.equal((await queue('&status=dismissed')).filter((r) => r.design_id === id).length, 3);
      assert.equal((await report(reporters[0]!, id, { reason: 'offensive' })).statusCode, 409, 'still once per user');
      assert.deepEqual(await invariantViolations(ctx.database.handle.db), []);
    });

    it('lets technicians hide and restore designs and comments with a note, audited; others may not', async () => {
      const id = await publicDesign('Moderated marble');
      const c = await comment(fan, id, 'Rude words');
      await report(owner, id, { reason: 'offensive', text: 'rude' }, c);
      assert.equal((await decide(fan, id, { action: 'hide', note: 'x' })).statusCode, 403);
      assert.equal((await decide(tech, id, { action: 'hide' })).statusCode, 400, 'a note is required');
      assert.equal((await decide(tech, id, { action: 'ban', note: 'x' })).statusCode, 400);
      assert.equal((await decide(tech, '00000000-0000-4000-8000-000000000000', { action: 'hide', note: 'x' })).statusCode, 404);

      const hid = await decide(tech, id, { action: 'hide', note: 'Rude comment' }, c);
      assert.equal(hid.statusCode, 200, hid.body);
      assert.equal(hid.json().data.reports_closed, 1);
      assert.deepEqual(await comments(id), [], 'a hidden comment leaves the list');
      assert.equal(await commentCount(id), 0, 'and the count');
      assert.equal((await queue('&status=upheld')).filter((r) => r.comment_id === c).length, 1);
      assert.equal((await ctx.app.inject({ method: 'DELETE', url: `/api/v1/designs/${id}/comments/${c}`, headers: fan.auth })).statusCode, 204, 'its author may still delete it');
      assert.equal(await commentCount(id), 0, 'deleting a hidden comment does not count it twice');
      assert.equal((await decide(tech, id, { action: 'restore', note: 'x' }, c)).statusCode, 404, 'deleted comments are gone');

      assert.equal((await decide(tech, id, { action: 'hide', note: 'Copyright claim' })).statusCode, 200);
      assert.equal((await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${id}` })).statusCode, 404);
      assert.equal((await decide(tech, id, { action: 'restore', note: 'Claim withdrawn' })).statusCode, 200);
      assert.equal((await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${id}` })).statusCode, 200);
      const audit = await rows<{ action: string; note: string }>(
        ctx.database.handle.db,
        `select action, note from moderation_actions where design_id = '${id}' order by created_at, id`,
      );
      assert.deepEqual(audit.map((a) => `${a.action}: ${a.note}`), ['hide: Rude comment', 'hide: Copyright claim', 'restore: Claim withdrawn']);
      assert.deepEqual(await invariantViolations(ctx.database.handle.db), []);
    });
  });

  describe('ship-by dates', () => {
    it('counts business days, skipping weekends', () => {
      // 4 December 2026 is a Friday.
      assert.equal(addBusinessDays(new Date('2026-12-04T12:00:00Z'), 1), '2026-12-07', 'Friday + 1 → Monday');
      assert.equal(addBusinessDays(new Date('2026-12-05T12:00:00Z'), 1), '2026-12-07', 'Saturday + 1 → Monday');
      assert.equal(addBusinessDays(new Date('2026-12-06T23:59:00Z'), 5), '2026-12-11', 'Sunday + 5 → Friday');
      assert.equal(addBusinessDays(new Date('2026-12-02T00:00:00Z'), 10), '2026-12-16', 'Wednesday + 10 → Wednesday two weeks on');
    });

    it('sets ship_by at acceptance, shows it to both sides, and lets technicians filter overdue orders and sort by ship_by', async () => {
      const expected = addBusinessDays(new Date(), 10);
      const late = await createOrder(ctx, owner, { description: 'Late chrome set' });
      const onTime = await createOrder(ctx, owner, { description: 'On-time glitter set' });
      const shippedLate = await createOrder(ctx, owner, { description: 'Shipped late set' });
      const pending = await createOrder(ctx, owner, { description: 'Not yet accepted' });
      assert.equal(pending.ship_by, null);
      await advanceOrder(ctx, tech, late.id, 'in_production');
      await advanceOrder(ctx, tech, onTime.id, 'accepted');
      await advanceOrder(ctx, tech, shippedLate.id, 'shipped');
      const get = (user: TestUser, id: string) => ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${id}`, headers: user.auth });
      for (const user of [owner, tech]) {
        const res = await get(user, onTime.id);
        assert.equal(res.json().data.ship_by, expected, 'TURNAROUND_BUSINESS_DAYS (10) business days after acceptance');
        assert.equal(res.json().data.overdue, false);
      }
      // Their promises fall due: two days ago.
      await ctx.database.handle.db.execute(sql.raw(`update orders set ship_by = current_date - 2 where id in ('${late.id}', '${shippedLate.id}')`));
      assert.equal((await get(owner, late.id)).json().data.overdue, true, 'the customer sees it too');
      assert.equal((await get(owner, shippedLate.id)).json().data.overdue, false, 'shipped is not overdue');

      const list = async (qs: string) => {
        const res = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders?limit=100&${qs}`, headers: tech.auth });
        assert.equal(res.statusCode, 200, res.body);
        return res.json().data as Array<{ id: string; overdue: boolean; ship_by: string | null }>;
      };
      const overdue = await list('overdue=true');
      assert.deepEqual(overdue.map((o) => o.id), [late.id]);
      assert.ok(overdue[0]!.overdue);
      const rest = (await list('overdue=false')).map((o) => o.id);
      assert.ok(rest.includes(onTime.id) && rest.includes(shippedLate.id) && rest.includes(pending.id) && !rest.includes(late.id));
      const mine = [late.id, shippedLate.id, onTime.id];
      const bySoonest = (await list('sort=ship_by')).filter((o) => o.ship_by !== null && mine.includes(o.id)).map((o) => o.id);
      assert.deepEqual(bySoonest.slice(-1), [onTime.id], 'soonest first');
      assert.deepEqual(bySoonest.slice(0, 2).sort(), [late.id, shippedLate.id].sort());
      const byLatest = (await list('sort=-ship_by')).filter((o) => mine.includes(o.id)).map((o) => o.id);
      assert.equal(byLatest[0], onTime.id);
      const bad = await ctx.app.inject({ method: 'GET', url: '/api/v1/orders?overdue=maybe', headers: tech.auth });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().error.code, 'VALIDATION_ERROR');
    });
  });

  describe('ratings', () => {
    const rate = (user: TestUser, orderId: string, payload: unknown) => put(ctx, user, `/api/v1/orders/${orderId}/rating`, payload);

    it('lets the customer rate a delivered order once, change it within 14 days, and shows technician and design averages', async () => {
      const tech2 = await registerUser(ctx, 'nail_technician', 'Rae Rated');
      const id = await publicDesign('Rated rose gold');
      // The design's own order, then two reuses by the fan, all delivered by whichever technician got them.
      const [own] = await rows<{ id: string }>(ctx.database.handle.db, `select order_id as id from designs where id = '${id}'`);
      const reuse = async () => {
        const res = await ctx.app.inject({ method: 'POST', url: '/api/v1/orders', headers: fan.auth, payload: { source_design_id: id, quantity: 1 } });
        assert.equal(res.statusCode, 201, res.body);
        return res.json().data as { id: string; technician_id: string };
      };
      const techOf = (techId: string) => (techId === tech.id ? tech : tech2);
      const first = await reuse();
      const second = await reuse();
      assert.equal((await rate(fan, first.id, { stars: 5 })).statusCode, 422, 'not delivered yet');
      assert.equal((await rate(fan, first.id, { stars: 5 })).json().error.code, 'INVALID_STATE');
      await advanceOrder(ctx, techOf(first.technician_id), first.id, 'delivered');
      await advanceOrder(ctx, techOf(second.technician_id), second.id, 'delivered');
      const [ownOrder] = await rows<{ technician_id: string }>(ctx.database.handle.db, `select technician_id from orders where id = '${own!.id}'`);
      await advanceOrder(ctx, techOf(ownOrder!.technician_id), own!.id, 'delivered');

      assert.equal((await rate(owner, first.id, { stars: 5 })).statusCode, 404, 'someone else’s order');
      assert.equal((await rate(tech, first.id, { stars: 5 })).statusCode, 403);
      for (const payload of [{ stars: 0 }, { stars: 6 }, { stars: 4.5 }, {}, { stars: 3, comment: 'x'.repeat(1001) }]) {
        const res = await rate(fan, first.id, payload);
        assert.equal(res.statusCode, 400, JSON.stringify(payload));
        assert.equal(res.json().error.code, 'VALIDATION_ERROR');
      }
      const given = await rate(fan, first.id, { stars: 2, comment: ' Chipped on day two ' });
      assert.equal(given.statusCode, 200, given.body);
      assert.equal(given.json().data.comment, 'Chipped on day two');
      const changed = await rate(fan, first.id, { stars: 4 });
      assert.equal(changed.statusCode, 200);
      assert.equal(changed.json().data.stars, 4, 'editable');
      assert.equal(changed.json().data.comment, null);
      assert.equal((await rate(fan, second.id, { stars: 5 })).statusCode, 200);
      assert.equal((await rate(owner, own!.id, { stars: 3 })).statusCode, 200);
      const [count] = await rows<{ n: number }>(ctx.database.handle.db, `select count(*)::int as n from order_ratings where order_id = '${first.id}'`);
      assert.equal(count!.n, 1, 'one rating per order');

      // Fifteen days on, the rating is fixed.
      await ctx.database.handle.db.execute(sql.raw(`update order_ratings set created_at = now() - interval '15 days' where order_id = '${first.id}'`));
      const locked = await rate(fan, first.id, { stars: 1 });
      assert.equal(locked.statusCode, 422);
      assert.equal(locked.json().error.code, 'RATING_LOCKED');

      const design = (await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${id}` })).json().data;
      assert.equal(design.rating_count, 3);
      assert.equal(design.rating_average, 4, '(4 + 5 + 3) / 3');
      const expected = await rows<{ technician_id: string; average: string; n: number }>(
        ctx.database.handle.db,
        `select technician_id, avg(stars)::text as average, count(*)::int as n from order_ratings group by technician_id`,
      );
      for (const t of [tech, tech2]) {
        const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/users/me/ratings', headers: t.auth });
        assert.equal(res.statusCode, 200, res.body);
        const row = expected.find((e) => e.technician_id === t.id);
        assert.deepEqual(res.json().data, { average: row ? Math.round(Number(row.average) * 100) / 100 : null, count: row?.n ?? 0 });
      }
      assert.equal((await ctx.app.inject({ method: 'GET', url: '/api/v1/users/me/ratings', headers: fan.auth })).statusCode, 403);
    });
  });
});

// The whole product, as a front end would drive it: every call goes through the generated client
// (client/index.ts on client/schema.d.ts) over real HTTP to the app listening on 127.0.0.1, so a route
// whose behaviour drifts from its documented shape fails here to compile or to pass.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type ApiClient, createApiClient, formData } from '../client/index.js';
import { type TestContext, buildTestApp } from './support/app.js';
import { checkedFetch } from './support/contract.js';
import { png } from './support/orders.js';

interface Outcome<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The body of a response that must have answered `status`; otherwise the failure shows the error body. */
function expect<T>(outcome: Outcome<T>, status: number): T {
  const { response, data, error } = outcome;
  assert.equal(response.status, status, `${response.url} answered ${response.status}: ${JSON.stringify(error)}`);
  assert.ok(data !== undefined, `${response.url} answered ${status} without a body`);
  return data;
}

const pngFile = async (seed: number) => new File([await png(240, 240, seed)], 'design.png', { type: 'image/png' });

interface Person {
  id: string;
  name: string;
  api: ApiClient;
}

describe('journey through the generated client', () => {
  let ctx: TestContext;
  let baseUrl: string;

  before(async () => {
    ctx = await buildTestApp();
    await ctx.app.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`;
  });
  after(() => ctx.close());

  async function signUp(role: 'customer' | 'nail_technician', name: string): Promise<Person> {
    const slug = `${name.toLowerCase()}-${Math.random().toString(36).slice(2, 8)}`;
    const email = `${slug}@example.com`;
    const token = await ctx.auth0.token({ sub: `auth0|${slug}`, role, email, name, claims: { email_verified: true } });
    const api = createApiClient(baseUrl, { token, fetch: checkedFetch(ctx.contract) });
    const profile = expect(await api.POST('/api/v1/auth/register'), 201).data;
    assert.equal(profile.role, role);
    assert.equal(profile.email, email);
    assert.equal(profile.name, name);
    return { id: profile.id, name, api };
  }

  it('takes an order from sign-up through review, revision, payment and delivery to gallery reuse and reorder', async () => {
    const anonymous = createApiClient(baseUrl, { fetch: checkedFetch(ctx.contract) });
    const tess = await signUp('nail_technician', 'Tess');
    const ada = await signUp('customer', 'Ada');
    const bea = await signUp('customer', 'Bea');

    // Ada's profile supplies the nail sizes her orders default to.
    const sizes = [3, 5, 4, 5, 8, 3, 5, 4, 5, 8];
    const me = expect(await ada.api.PUT('/api/v1/users/me', { body: { name: 'Ada', nail_sizes: sizes, preferred_shape: 'almond' } }), 200).data;
    assert.deepEqual(me.nail_sizes, sizes);

    // Submit: multipart with the PNG; the only technician is assigned at once. A retry with the same
    // Idempotency-Key gets the same order back instead of a second one.
    const submission = {
      image: await pngFile(1),
      description: 'Pastel chrome almond set with tiny daisies',
      quantity: 2,
      shape: 'almond' as const,
      length: 'medium' as const,
    };
    const key = { 'idempotency-key': 'journey-submit-1' };
    const submitted = expect(await ada.api.POST('/api/v1/orders', { params: { header: key }, body: submission, bodySerializer: formData }), 201).data;
    assert.equal(submitted.status, 'under_review');
    assert.equal(submitted.technician_id, tess.id);
    assert.equal(submitted.technician?.name, 'Tess');
    assert.equal(submitted.customer.name, 'Ada');
    assert.equal(submitted.quantity, 2);
    assert.equal(submitted.shape, 'almond');
    assert.deepEqual(submitted.nail_sizes, sizes);
    assert.equal(submitted.revision_count, 0);
    assert.equal(submitted.payment_status, 'unpaid');
    assert.equal(submitted.unit_price_cents, null);
    assert.equal(submitted.total_price_cents, null);
    assert.ok(submitted.design_id);
    const orderId = submitted.id;
    const designId = submitted.design_id;
    const replay = await ada.api.POST('/api/v1/orders', { params: { header: key }, body: submission, bodySerializer: formData });
    assert.equal(expect(replay, 201).data.id, orderId);
    assert.equal(replay.response.headers.get('idempotent-replayed'), 'true');

    // Tess finds it among her orders under review and rejects it with feedback.
    const queue = expect(await tess.api.GET('/api/v1/orders', { params: { query: { status: ['under_review'] } } }), 200);
    assert.deepEqual(
      queue.data.map((o) => o.id),
      [orderId],
    );
    assert.deepEqual(queue.pagination, { page: 1, limit: 20, total: 1, totalPages: 1, hasNext: false, hasPrev: false });
    const feedback = 'Lovely idea; the daisies get lost at this size, please make them bolder';
    const rejected = expect(
      await tess.api.PUT('/api/v1/orders/{id}/review', { params: { path: { id: orderId } }, body: { action: 'reject', feedback } }),
      200,
    ).data;
    assert.equal(rejected.status, 'rejected');
    assert.equal(rejected.feedback, feedback);

    // They talk it over, both ways; the thread is oldest first and pages.
    const path = { params: { path: { id: orderId } } };
    const question = expect(await ada.api.POST('/api/v1/orders/{id}/messages', { ...path, body: { text: 'Bolder as in bigger, or more contrast?' } }), 201).data;
    assert.equal(question.sender.name, 'Ada');
    assert.equal(question.order_id, orderId);
    expect(await tess.api.POST('/api/v1/orders/{id}/messages', { ...path, body: { text: 'Both: twice the size, white on pastel' } }), 201);
    const thread = expect(await tess.api.GET('/api/v1/orders/{id}/messages', path), 200);
    assert.deepEqual(
      thread.data.map((m) => [m.sender.name, m.text]),
      [
        ['Ada', 'Bolder as in bigger, or more contrast?'],
        ['Tess', 'Both: twice the size, white on pastel'],
      ],
    );
    const secondPage = expect(
      await ada.api.GET('/api/v1/orders/{id}/messages', { params: { path: { id: orderId }, query: { page: 2, limit: 1 } } }),
      200,
    );
    assert.deepEqual(
      secondPage.data.map((m) => m.sender.name),
      ['Tess'],
    );
    assert.deepEqual(secondPage.pagination, { page: 2, limit: 1, total: 2, totalPages: 2, hasNext: false, hasPrev: true });

    // Ada revises with a new image and description: back under review with the same technician, the
    // earlier version kept with the feedback it received.
    const revisedDescription = 'Pastel chrome almond set with big white daisies';
    const revised = expect(
      await ada.api.PUT('/api/v1/orders/{id}/design', {
        ...path,
        body: { image: await pngFile(2), description: revisedDescription },
        bodySerializer: formData,
      }),
      200,
    ).data;
    assert.equal(revised.status, 'under_review');
    assert.equal(revised.technician_id, tess.id);
    assert.equal(revised.revision_count, 1);
    assert.equal(revised.description, revisedDescription);
    assert.deepEqual(
      revised.revisions.map((r) => [r.revision, r.description, r.feedback]),
      [[0, submission.description, feedback]],
    );
    assert.notEqual(revised.revisions[0]?.image_url, revised.image_url);

    // Accepted at 1.5 × the base price (2500 cents) per set, for two sets; then paid, made, shipped.
    const accepted = expect(
      await tess.api.PUT('/api/v1/orders/{id}/review', { ...path, body: { action: 'accept', complexity_multiplier: 1.5 } }),
      200,
    ).data;
    assert.equal(accepted.status, 'accepted');
    assert.equal(accepted.complexity_multiplier, 1.5);
    assert.equal(accepted.unit_price_cents, 3750);
    assert.equal(accepted.total_price_cents, 7500);
    assert.equal(accepted.currency, 'USD');
    const paid = expect(await tess.api.PUT('/api/v1/orders/{id}/payment', { ...path, body: { payment_status: 'paid' } }), 200).data;
    assert.equal(paid.payment_status, 'paid');
    assert.equal(paid.status, 'accepted');
    const producing = expect(await tess.api.PUT('/api/v1/orders/{id}/status', { ...path, body: { status: 'in_production' } }), 200).data;
    assert.equal(producing.status, 'in_production');
    const shipped = expect(
      await tess.api.PUT('/api/v1/orders/{id}/status', { ...path, body: { status: 'shipped', carrier: 'USPS', tracking_number: '9400 1000 0000 0000' } }),
      200,
    ).data;
    assert.equal(shipped.status, 'shipped');
    assert.equal(shipped.carrier, 'USPS');
    assert.equal(shipped.tracking_number, '9400 1000 0000 0000');

    // Ada confirms delivery; the detail view tells the whole story, oldest first, with who did each step.
    expect(await ada.api.PUT('/api/v1/orders/{id}/status', { ...path, body: { status: 'delivered' } }), 200);
    const delivered = expect(await ada.api.GET('/api/v1/orders/{id}', path), 200).data;
    assert.equal(delivered.status, 'delivered');
    assert.equal(delivered.total_price_cents, 7500);
    assert.deepEqual(
      delivered.events.map((e) => [e.from_status, e.to_status, e.actor?.name ?? null, e.note]),
      [
        [null, 'submitted', 'Ada', null],
        ['submitted', 'under_review', null, 'assigned automatically'],
        ['under_review', 'rejected', 'Tess', feedback],
        ['rejected', 'under_review', 'Ada', 'revision 1'],
        ['under_review', 'accepted', 'Tess', 'accepted at ×1.50'],
        ['accepted', 'accepted', 'Tess', 'payment paid'],
        ['accepted', 'in_production', 'Tess', null],
        ['in_production', 'shipped', 'Tess', 'tracking USPS 9400 1000 0000 0000'],
        ['shipped', 'delivered', 'Ada', null],
      ],
    );
    const times = delivered.events.map((e) => Date.parse(e.created_at));
    assert.deepEqual(times, [...times].sort((a, b) => a - b));

    // Ada shares the design; anyone can find it in the gallery without signing in.
    assert.ok(designId);
    const design = { params: { path: { id: designId } } };
    const shared = expect(await ada.api.PUT('/api/v1/designs/{id}/visibility', { ...design, body: { is_public: true } }), 200).data;
    assert.equal(shared.is_public, true);
    assert.ok(shared.published_at);
    const gallery = expect(await anonymous.GET('/api/v1/designs', { params: { query: { search: 'daisies' } } }), 200);
    assert.deepEqual(
      gallery.data.map((d) => [d.id, d.owner.name, d.description]),
      [[designId, 'Ada', revisedDescription]],
    );
    assert.equal(gallery.pagination.total, 1);

    // Bea comments, and starts her own order from Ada's design.
    const comment = expect(await bea.api.POST('/api/v1/designs/{id}/comments', { ...design, body: { text: 'Those daisies!' } }), 201).data;
    assert.equal(comment.author.name, 'Bea');
    assert.equal(comment.design_id, designId);
    const comments = expect(await anonymous.GET('/api/v1/designs/{id}/comments', design), 200);
    assert.deepEqual(
      comments.data.map((c) => [c.author.name, c.text]),
      [['Bea', 'Those daisies!']],
    );
    const reused = expect(
      await bea.api.POST('/api/v1/orders', { body: { source_design_id: designId, quantity: 1, description: 'Ada’s daisies, in lilac' } }),
      201,
    ).data;
    assert.equal(reused.source_design_id, designId);
    assert.equal(reused.customer_id, bea.id);
    assert.equal(reused.status, 'under_review');
    assert.equal(reused.revision_count, 0);
    assert.equal(reused.description, 'Ada’s daisies, in lilac');
    assert.notEqual(reused.design_id, designId);
    const counted = expect(await anonymous.GET('/api/v1/designs/{id}', design), 200).data;
    assert.equal(counted.reuse_count, 1);
    assert.equal(counted.comment_count, 1);

    // The owner sees who was inspired by it.
    const inspiration = expect(await ada.api.GET('/api/v1/designs/{id}/inspiration', design), 200);
    assert.deepEqual(
      inspiration.data.map((entry) => [entry.user.name, entry.order_id]),
      [['Bea', reused.id]],
    );

    // Ada reorders her delivered set, three this time: a new order linked to the first, reviewed afresh.
    const reordered = expect(await ada.api.POST('/api/v1/orders/{id}/reorder', { ...path, body: { quantity: 3 } }), 201).data;
    assert.notEqual(reordered.id, orderId);
    assert.equal(reordered.original_order_id, orderId);
    assert.equal(reordered.status, 'under_review');
    assert.equal(reordered.quantity, 3);
    assert.equal(reordered.description, revisedDescription);
    assert.equal(reordered.revision_count, 0);
    assert.equal(reordered.payment_status, 'unpaid');
    assert.equal(reordered.total_price_cents, null);

    const mine = expect(await ada.api.GET('/api/v1/orders', { params: { query: { sort: '-created_at', limit: 1 } } }), 200);
    assert.deepEqual(
      mine.data.map((o) => o.id),
      [reordered.id],
    );
    assert.deepEqual(mine.pagination, { page: 1, limit: 1, total: 2, totalPages: 2, hasNext: true, hasPrev: false });
  });
});

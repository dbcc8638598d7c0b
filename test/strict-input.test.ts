import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from '../src/db/orm.js';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { createOrder, put, submitOrder } from './support/orders.js';

// Issue 14, "Strict input": a JSON body is taken as sent. A value of the wrong JSON type is a 400 naming
// the field, and nothing is stored; only text (query strings, path parameters, multipart fields) is coerced.
describe('strict input', () => {
  let ctx: TestContext;
  let customer: TestUser;
  let other: TestUser;
  let orderId: string;
  let designId: string;
  before(async () => {
    ctx = await buildTestApp();
    await registerUser(ctx, 'nail_technician');
    customer = await registerUser(ctx, 'customer', 'Stella Strict');
    other = await registerUser(ctx, 'customer');
    const order = await createOrder(ctx, customer);
    orderId = order.id;
    designId = order.design_id;
    const shared = await put(ctx, customer, `/api/v1/designs/${designId}/visibility`, { is_public: true });
    assert.equal(shared.statusCode, 200, shared.body);
  });
  after(() => ctx.close());

  const count = async (table: string) => {
    const rows = await ctx.database.handle.db.execute(sql.raw(`select count(*)::int as n from ${table}`));
    return (rows as unknown as { rows: Array<{ n: number }> }).rows[0]!.n;
  };

  const refused = (res: { statusCode: number; body: string; json(): { error: { code: string; details: Record<string, string> } } }, field: string) => {
    assert.equal(res.statusCode, 400, res.body);
    const { error } = res.json();
    assert.equal(error.code, 'VALIDATION_ERROR');
    assert.ok(field in error.details, `details name ${field}: ${res.body}`);
  };

  it('refuses a number as a message text and stores nothing', async () => {
    const before = await count('messages');
    const res = await ctx.app.inject({ method: 'POST', url: `/api/v1/orders/${orderId}/messages`, headers: customer.auth, payload: { text: 12345 } });
    refused(res, 'text');
    assert.equal(await count('messages'), before);
  });

  it('refuses a number as a comment text and stores nothing', async () => {
    const before = await count('comments');
    const res = await ctx.app.inject({ method: 'POST', url: `/api/v1/designs/${designId}/comments`, headers: other.auth, payload: { text: 12345 } });
    refused(res, 'text');
    assert.equal(await count('comments'), before);
  });

  for (const quantity of [true, '3']) {
    it(`refuses quantity ${JSON.stringify(quantity)} in a JSON order and stores nothing`, async () => {
      const before = await count('orders');
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/api/v1/orders',
        headers: other.auth,
        payload: { source_design_id: designId, quantity },
      });
      refused(res, 'quantity');
      assert.equal(await count('orders'), before);
    });
  }

  it('still takes a JSON order with a real number', async () => {
    const res = await ctx.app.inject({ method: 'POST', url: '/api/v1/orders', headers: other.auth, payload: { source_design_id: designId, quantity: 3 } });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().data.quantity, 3);
  });

  for (const isPublic of [null, 'true', 0]) {
    it(`refuses is_public ${JSON.stringify(isPublic)} and leaves the design as it was`, async () => {
      const res = await put(ctx, customer, `/api/v1/designs/${designId}/visibility`, { is_public: isPublic });
      refused(res, 'is_public');
      const design = await ctx.app.inject({ method: 'GET', url: `/api/v1/designs/${designId}` });
      assert.equal(design.statusCode, 200, 'still public: a null did not turn it private');
      assert.equal(design.json().data.is_public, true);
    });
  }

  it('refuses a boolean as a profile name and keeps the name', async () => {
    const res = await put(ctx, customer, '/api/v1/users/me', { name: true });
    refused(res, 'name');
    const me = await ctx.app.inject({ method: 'GET', url: '/api/v1/users/me', headers: customer.auth });
    assert.equal(me.json().data.name, 'Stella Strict');
  });

  it('still coerces text: query strings, path parameters and multipart fields', async () => {
    const page = await ctx.app.inject({ method: 'GET', url: '/api/v1/orders?limit=1&page=1', headers: customer.auth });
    assert.equal(page.statusCode, 200, page.body);
    assert.equal(page.json().data.length, 1, 'limit "1" read as the number 1');
    const bad = await ctx.app.inject({ method: 'GET', url: '/api/v1/orders?limit=abc', headers: customer.auth });
    assert.equal(bad.statusCode, 400);
    const form = await submitOrder(ctx, customer, { quantity: '4' });
    assert.equal(form.statusCode, 201, form.body);
    assert.equal(form.json().data.quantity, 4, 'a multipart field "4" is the number 4');
  });
});

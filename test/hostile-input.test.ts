import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { multipart, pngPart } from './support/multipart.js';
import { createOrder, png } from './support/orders.js';
import { countRows } from './support/store.js';

/**
 * Inputs that test/fuzz.test.ts found answering 5xx or outside the envelope, pinned here so they stay
 * fixed whatever the fuzzer happens to draw next time.
 */
describe('hostile input found by fuzzing', () => {
  let ctx: TestContext;
  let customer: TestUser;
  let order: { id: string };
  before(async () => {
    ctx = await buildTestApp();
    await registerUser(ctx, 'nail_technician');
    customer = await registerUser(ctx);
    order = await createOrder(ctx, customer);
  });
  after(() => ctx.close());

  const get = (url: string, user?: TestUser) => ctx.app.inject({ method: 'GET', url, headers: user?.auth ?? {} });

  function assertEnvelope(res: { statusCode: number; json(): { success: boolean; error: { code: string; message: string } } }, status: number, code: string) {
    assert.equal(res.statusCode, status);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['error', 'success']);
    assert.equal(body.error.code, code);
    return body.error;
  }

  it('answers a URL that does not decode, or an over-long id, with 400 BAD_URL in the envelope', async () => {
    for (const url of ['/api/v1/orders/%C0%AF', '/api/v1/designs/%ff%fe', '/api/v1/orders/%ED%A0%80/messages', `/api/v1/orders/${'x'.repeat(300)}`]) {
      const res = await get(url, customer);
      const error = assertEnvelope(res, 400, 'BAD_URL');
      assert.ok(!error.message.includes(url.slice(16, 40)), 'the URL is not echoed back');
      assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    }
  });

  it('refuses Infinity as a page or limit (Ajv coerces it and skips the bounds)', async () => {
    for (const url of ['/api/v1/orders?limit=-Infinity', '/api/v1/orders?page=Infinity', '/api/v1/designs?limit=Infinity', `/api/v1/orders/${order.id}/messages?limit=Infinity`]) {
      const res = await get(url, customer);
      const error = assertEnvelope(res, 400, 'VALIDATION_ERROR');
      assert.ok(Object.keys((error as { details?: object }).details ?? {}).some((f) => ['page', 'limit'].includes(f)), JSON.stringify(error));
    }
  });

  it('refuses NUL characters, which PostgreSQL text cannot hold, in JSON, queries and forms', async () => {
    const messages = await countRows(ctx.database.handle.db, 'messages');
    const cases = [
      ctx.app.inject({ method: 'POST', url: `/api/v1/orders/${order.id}/messages`, headers: customer.auth, payload: { text: 'hi\u0000there' } }),
      ctx.app.inject({ method: 'PUT', url: '/api/v1/users/me', headers: customer.auth, payload: { name: 'Ana\u0000' } }),
      ctx.app.inject({ method: 'PUT', url: '/api/v1/users/me', headers: customer.auth, payload: { name: 'Ana', shipping_address: { line1: 'a\u0000', city: 'x', postal_code: '1', country: 'US' } } }),
      get('/api/v1/designs?search=a%00b'),
      get('/api/v1/orders?search=%00', customer),
    ];
    for (const res of await Promise.all(cases)) {
      const error = assertEnvelope(res, 400, 'VALIDATION_ERROR') as { details?: Record<string, string> };
      assert.match(Object.values(error.details ?? {}).join(), /NUL/);
    }
    const form = multipart({ description: 'Daisies\u0000', quantity: 1 }, [pngPart(await png())]);
    const upload = await ctx.app.inject({ method: 'POST', url: '/api/v1/orders', headers: { ...customer.auth, ...form.headers }, payload: form.payload });
    assertEnvelope(upload, 400, 'VALIDATION_ERROR');
    assert.equal(await countRows(ctx.database.handle.db, 'messages'), messages);
    assert.equal(await countRows(ctx.database.handle.db, 'orders'), 1);
  });
});

// The OpenAPI contract: what boot enforces on every route (operationId, security from access), what the
// document promises (statuses, error enums, named bodies, the signed file path), and that the response checker
// every test runs through (test/support/contract.ts) really catches an answer outside the document.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { buildSerializer } from '../src/lib/serializers.js';
import { buildValidator } from '../src/lib/validators.js';
import { contractFor, type OperationContract } from '../src/plugins/openapi-contract.js';
import { serverUrlFor } from '../src/plugins/openapi.js';
import { type TestContext, buildTestApp } from './support/app.js';

interface Op {
  operationId?: string;
  security?: unknown[];
  parameters?: Array<{ in: string; name: string }>;
  requestBody?: { required?: boolean; content: Record<string, { schema: { $ref?: string } }> };
  responses: Record<string, { description?: string; headers?: Record<string, unknown>; content?: Record<string, { schema: { $ref?: string } }> }>;
}
interface Doc {
  info: { contact?: unknown; license?: unknown };
  servers: Array<{ url: string }>;
  paths: Record<string, Record<string, Op>>;
  components: { schemas: Record<string, { properties?: { error?: { properties?: { code?: { enum?: string[] } } } } }> };
}

describe('OpenAPI contract', () => {
  let ctx: TestContext;
  let doc: Doc;
  let ops: Array<{ key: string; method: string; path: string; op: Op }>;

  before(async () => {
    ctx = await buildTestApp();
    doc = (await ctx.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json() as Doc;
    ops = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, method, path, op })),
    );
  });
  after(() => ctx.close());

  const errorCodes = (op: Op, status: string) => {
    const ref = op.responses[status]?.content?.['application/json']?.schema.$ref;
    assert.ok(ref, `no error body on ${op.operationId} ${status}`);
    return doc.components.schemas[ref.split('/').pop()!]?.properties?.error?.properties?.code?.enum ?? [];
  };

  it('refuses to boot a documented route without an operationId, or with a duplicate one', async () => {
    for (const routes of [
      [{ url: '/api/v1/thing', schema: {} }],
      [
        { url: '/api/v1/a', schema: { operationId: 'same' } },
        { url: '/api/v1/b', schema: { operationId: 'same' } },
      ],
    ]) {
      const app = Fastify();
      const seen = new Map<string, OperationContract>();
      app.addHook('onRoute', (route) => contractFor(route, seen));
      assert.throws(() => {
        for (const r of routes) app.get(r.url, { schema: r.schema, config: { access: 'public' } }, async () => ({}));
      }, /operationId/);
      await app.close();
    }
  });

  it('gives every operation a unique camelCase operationId and the security its access means', () => {
    const ids = ops.map(({ op }) => op.operationId);
    assert.ok(ids.every((id) => id && /^[a-z][A-Za-z0-9]*$/.test(id)), `missing or bad operationIds: ${ids.join(', ')}`);
    assert.equal(new Set(ids).size, ids.length);
    const byId = Object.fromEntries(ops.map(({ op }) => [op.operationId, op]));
    for (const id of ['listDesigns', 'getDesign', 'listComments', 'getHealth', 'getFile']) assert.deepEqual(byId[id]!.security, [], id);
    for (const id of ['submitOrder', 'listOrders', 'register', 'postComment', 'inviteTechnician']) assert.deepEqual(byId[id]!.security, [{ bearerAuth: [] }], id);
  });

  it('lists 413 and 415 on every operation with a body, 409 and 422 IDEMPOTENCY_KEY_REUSED wherever Idempotency-Key is taken', () => {
    for (const { key, op } of ops) {
      if (op.requestBody) {
        assert.ok(op.responses['413'] && op.responses['415'], `${key} lacks 413/415`);
        assert.ok(errorCodes(op, '415').includes('UNSUPPORTED_MEDIA_TYPE'), key);
      }
      if (op.parameters?.some((p) => p.in === 'header' && p.name === 'idempotency-key')) {
        assert.ok(errorCodes(op, '409').includes('IDEMPOTENCY_REQUEST_IN_PROGRESS'), key);
        assert.ok(errorCodes(op, '422').includes('IDEMPOTENCY_KEY_REUSED'), key);
      }
      if (op.parameters?.some((p) => p.in === 'path' || p.in === 'query')) assert.ok(op.responses['400'], `${key} lacks 400`);
    }
    const idempotent = ops.filter(({ op }) => op.parameters?.some((p) => p.name === 'idempotency-key')).map(({ op }) => op.operationId);
    assert.deepEqual(idempotent.sort(), ['inviteTechnician', 'postComment', 'postMessage', 'reorder', 'submitOrder']);
  });

  it('lists 429 with Retry-After wherever the rate limits count, and the workflow refusals on status moves', () => {
    // health and files are not rate limited; Stripe's webhook is outside the user rate limits (issue 17)
    const unlimited = ['getHealth', 'getLiveness', 'getFile', 'receiveStripeWebhook'];
    for (const { key, op } of ops) {
      if (unlimited.includes(op.operationId!)) assert.equal(op.responses['429'], undefined, key);
      else {
        assert.ok(errorCodes(op, '429').includes('RATE_LIMITED'), key);
        assert.ok(op.responses['429']!.headers?.['Retry-After'], `${key} 429 without Retry-After`);
      }
      if (op.responses['503']) assert.ok(op.responses['503'].headers?.['Retry-After'], `${key} 503 without Retry-After`);
    }
    const status = ops.find(({ op }) => op.operationId === 'updateOrderStatus')!.op;
    for (const code of ['INVALID_STATE', 'OWN_ORDER', 'PAYMENT_REQUIRED']) assert.ok(errorCodes(status, '422').includes(code), code);
    assert.ok(errorCodes(status, '403').includes('NOT_ASSIGNED'));
  });

  it('names every body and describes every response; the file route is a valid path with its images', () => {
    assert.ok(!Object.keys(doc.components.schemas).some((name) => name.startsWith('def-')));
    for (const { key, op } of ops) {
      for (const [status, response] of Object.entries(op.responses)) {
        assert.ok(response.description && response.description !== 'Default Response', `${key} ${status}`);
        const json = response.content?.['application/json'];
        if (json) assert.ok(json.schema.$ref, `${key} ${status} body is not a named schema`);
      }
      for (const media of Object.values(op.requestBody?.content ?? {})) assert.ok(media.schema.$ref, `${key} request body is not named`);
    }
    const file = doc.paths['/api/v1/files/{key}']?.get;
    assert.ok(file, 'the signed file route is /api/v1/files/{key}');
    assert.deepEqual(Object.keys(file.responses['200']!.content!).sort(), ['image/png', 'image/webp']);
    assert.ok(file.parameters!.some((p) => p.in === 'path' && p.name === 'key'));
    assert.equal(doc.paths['/api/v1/orders/{id}/reorder']!.post!.requestBody!.required, false);
    assert.ok(doc.info.contact && doc.info.license);
    assert.equal(doc.servers[0]!.url, ctx.config.publicUrl);
    assert.equal(serverUrlFor('http://localhost:3000', true), '/');
    assert.equal(serverUrlFor('https://api.example.org', true), 'https://api.example.org');
  });

  it('catches an answer outside the document: an unlisted status, a body off its schema, a code of another status', () => {
    const id = '00000000-0000-4000-8000-000000000000';
    const json = { 'content-type': 'application/json; charset=utf-8' };
    const order = { method: 'GET', url: `/api/v1/orders/${id}`, headers: json };
    assert.match(ctx.contract.problems({ ...order, statusCode: 418, body: '{}' }) ?? '', /does not list/);
    assert.match(ctx.contract.problems({ ...order, statusCode: 200, body: JSON.stringify({ success: true, data: { id: 5 } }) }) ?? '', /outside its documented schema/);
    const wrongCode = { success: false, error: { code: 'EMAIL_IN_USE', message: 'x' } };
    assert.match(ctx.contract.problems({ ...order, statusCode: 404, body: JSON.stringify(wrongCode) }) ?? '', /outside its documented schema/);
    const otherStatus = { success: false, error: { code: 'ORDER_NOT_FOUND', message: 'x' } };
    assert.match(ctx.contract.problems({ ...order, statusCode: 403, body: JSON.stringify(otherStatus) }) ?? '', /catalogue/);
    assert.equal(ctx.contract.problems({ ...order, statusCode: 404, body: JSON.stringify(otherStatus) }), undefined);
    // And through app.inject itself: a forged body on the wire would throw the same way.
    assert.throws(() => ctx.contract.check({ ...order, statusCode: 200, body: '{"success":true}' }), /ContractViolation|outside/);
  });
});

describe('response serializers (lib/serializers.ts)', () => {
  it('builds each distinct schema once across contexts, and never hands one schema the serializer of another', () => {
    const external = { Tag: { $id: 'Tag', type: 'string' } };
    const error = { type: 'object', properties: { code: { type: 'string' } } };
    const first = buildSerializer(external, {})({ method: 'GET', url: '/a', httpStatus: '400', schema: structuredClone(error) });
    const again = buildSerializer(external, {})({ method: 'POST', url: '/b', httpStatus: '400', schema: structuredClone(error) });
    assert.equal(again, first, 'an equal schema in another context reuses the serializer');
    const other = buildSerializer(external, {})({ method: 'GET', url: '/a', httpStatus: '200', schema: { type: 'object', properties: { name: { type: 'string' } } } });
    assert.notEqual(other, first);
    assert.equal(first({ code: 'X', name: 'n' }), '{"code":"X"}');
    assert.equal(other({ code: 'X', name: 'n' }), '{"name":"n"}');
    const elsewhere = buildSerializer({ Tag: { $id: 'Tag', type: 'integer' } }, {})({ method: 'GET', url: '/c', httpStatus: '400', schema: structuredClone(error) });
    assert.notEqual(elsewhere, first, 'other external schemas get their own serializers');
  });
});

describe('request validators (lib/validators.ts)', () => {
  const options = { customOptions: { allErrors: true, coerceTypes: 'array' as const } };
  const validator = (external: Record<string, object>) => buildValidator(external as never, options) as unknown as (route: object) => (data: unknown) => boolean;

  it('gives every context one Ajv per mode, holding the schemas of each context, bodies strict and text coerced', () => {
    // Two contexts with different shared schemas (as two route modules have): each route sees its own by $ref.
    const shapes = validator({ VShape: { $id: 'VShape', type: 'string', enum: ['almond', 'square'] } });
    const sizes = validator({ VShape: { $id: 'VShape', type: 'string', enum: ['almond', 'square'] }, VSize: { $id: 'VSize', type: 'integer', minimum: 1 } });
    const body = { type: 'object', properties: { shape: { $ref: 'VShape#' }, size: { $ref: 'VSize#' } } };
    const checkBody = sizes({ schema: body, httpPart: 'body' });
    assert.equal(checkBody({ shape: 'almond', size: 2 }), true);
    assert.equal(checkBody({ shape: 'round', size: 2 }), false, "the first context's schema is enforced");
    assert.equal(checkBody({ shape: 'almond', size: '2' }), false, 'a JSON body is not coerced');
    const checkQuery = shapes({ schema: { type: 'object', properties: { size: { type: 'integer' } } }, httpPart: 'querystring' });
    const query = { size: '2' };
    assert.equal(checkQuery(query), true);
    assert.deepEqual(query, { size: 2 }, 'text is coerced');
    // The same schema object compiled in both contexts is the same function: one instance holds it.
    const shared = { type: 'object', properties: { shape: { $ref: 'VShape#' } } };
    assert.equal(shapes({ schema: shared, httpPart: 'body' }), sizes({ schema: shared, httpPart: 'body' }));
  });

  it('gives a context whose $id clashes with the content held an instance of its own', () => {
    validator({ VClash: { $id: 'VClash', type: 'string' } });
    const other = validator({ VClash: { $id: 'VClash', type: 'integer' } });
    const check = other({ schema: { type: 'object', properties: { v: { $ref: 'VClash#' } } }, httpPart: 'body' });
    assert.equal(check({ v: 3 }), true);
    assert.equal(check({ v: 'three' }), false);
  });
});

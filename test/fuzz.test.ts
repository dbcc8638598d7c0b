import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import sharp from 'sharp';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { FAKE_STRIPE_ENV, FakeStripe } from './support/fake-stripe.js';
import { type BodyPlan, type Caller, Known, type Plan, type PoolName, encode, planFor } from './support/fuzz.js';
import { invariantViolations } from './support/invariants.js';
import { multipart } from './support/multipart.js';
import { type Operation, documentedOperations } from './support/openapi.js';
import { type Stage, advanceOrder, createOrder, png, put } from './support/orders.js';
import { forgePng, zipArchive } from './support/png-forge.js';
import { recordResults } from './support/results.js';
import { localKeys } from './support/store.js';

/**
 * Schema fuzzing: requests generated from the OpenAPI document (valid, boundary and hostile values,
 * unknown and repeated parameters, malformed JSON and forms), sent as every kind of caller so that
 * handlers run on real orders and designs. No response may be a 5xx, every one must be in the
 * SPEC §6 envelope without a stack trace or SQL, and afterwards the database invariants hold.
 * FUZZ_RUNS sets the number of requests (default 5000); FUZZ_SEED replays a run.
 */

const RUNS = Number(process.env.FUZZ_RUNS ?? 5000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const CONCURRENCY = 4;
const LEAKS = /\bat [^\s()]+ \([^)]*:\d+:\d+\)|node_modules|syntax error at or near|violates [^"]{0,80}? constraint|duplicate key value|relation "|invalid input syntax|\bSELECT\b[^"]{0,80}?\bFROM\b/i;
const CODE = /^[A-Z][A-Z0-9_]*$/;

interface Outcome {
  key: string;
  status: number;
  code?: string;
}

describe('schema fuzzing', () => {
  let ctx: TestContext;
  let users: Record<Exclude<Caller, 'anonymous' | 'badToken'>, TestUser>;
  let operations: Operation[];
  let doc: Awaited<ReturnType<typeof documentedOperations>>['doc'];
  const pools: Record<PoolName, string[]> = { order: [], design: [], file: [] };
  const images: Buffer[] = [];
  const outcomes: Outcome[] = [];
  const problems: string[] = [];
  let seconds = 0;

  let stripe: FakeStripe;
  const STREAM = 'GET /api/v1/stream';

  before(async () => {
    // Checkout reaches a local fake of Stripe: fuzzed requests must not depend on a real one, nor fail for want of it.
    stripe = await FakeStripe.start();
    ctx = await buildTestApp({ env: FAKE_STRIPE_ENV, overrides: { stripe: stripe.endpoint() } });
    ({ doc, operations } = await documentedOperations(ctx.app));
    const a = await registerUser(ctx, 'customer', 'Ada');
    const b = await registerUser(ctx, 'customer', 'Bea');
    const keep = <T extends { id: string; design_id: string; image_url: string }>(order: T): T => {
      pools.order.push(order.id);
      pools.design.push(order.design_id);
      pools.file.push(order.image_url);
      return order;
    };
    // Two orders stay unassigned (no technician yet), the rest are spread over both technicians.
    for (const owner of [a, b]) keep(await createOrder(ctx, owner, { description: `unassigned flowers by ${owner.name}` }));
    const techA = await registerUser(ctx, 'nail_technician', 'Tia');
    const techB = await registerUser(ctx, 'nail_technician', 'Ted');
    users = { customerA: a, customerB: b, techA, techB };
    const stages: Stage[] = ['under_review', 'under_review', 'rejected', 'accepted', 'paid', 'in_production', 'shipped'];
    for (const owner of [a, b]) {
      for (const stage of stages) {
        const order = keep(await createOrder(ctx, owner, { description: `${stage} chrome almond set`, image: await png(120, 120, pools.order.length) }));
        const tech = order.technician_id === techA.id ? techA : techB;
        await advanceOrder(ctx, tech, order.id, stage);
        if (stage === 'under_review') await put(ctx, owner, `/api/v1/designs/${order.design_id}/visibility`, { is_public: true });
      }
    }
    const valid = await png(100, 100, 7);
    images.push(
      valid,
      await png(130, 110, 8),
      await sharp(valid).png({ palette: true }).toBuffer(),
      Buffer.concat([valid, zipArchive('x.html', Buffer.from('<script>1</script>'), valid.length)]),
      valid.subarray(0, valid.length >> 1),
      forgePng({ width: 100, height: 100, pixels: Buffer.alloc(8 * 1024 * 1024) }),
      forgePng({ width: 5000, height: 100 }),
      Buffer.alloc(0),
      await sharp(valid).jpeg().toBuffer(),
      Buffer.from('GIF89a not really'),
    );
  });
  after(async () => {
    await ctx.close();
    await stripe.stop();
  });

  function pick(known: Known): string {
    const pool = pools[known.pool];
    return pool[known.index % pool.length]!;
  }

  /** Fills Known placeholders anywhere in a generated value. */
  function resolveValue(v: unknown): unknown {
    if (v instanceof Known) return pick(v);
    if (Array.isArray(v)) return v.map(resolveValue);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(v)) Object.defineProperty(out, key, { value: resolveValue((v as Record<string, unknown>)[key]), enumerable: true });
      return out;
    }
    return v;
  }

  function bodyOf(plan: BodyPlan | undefined): { payload?: string | Buffer; headers: Record<string, string> } {
    if (!plan) return { headers: {} };
    if (plan.kind === 'json') return { payload: JSON.stringify(resolveValue(plan.value)) ?? 'null', headers: { 'content-type': plan.contentType } };
    if (plan.kind === 'text') return { payload: plan.text, headers: plan.contentType ? { 'content-type': plan.contentType } : {} };
    const fields = plan.fields.map(([k, v]): [string, string] => {
      const value = resolveValue(v);
      return [k, typeof value === 'string' ? value : (JSON.stringify(value) ?? '')];
    });
    const form = multipart(fields, plan.file ? [{ field: plan.file.field, filename: plan.file.filename, contentType: plan.file.contentType, data: images[plan.file.image]! }] : []);
    if (plan.damage === 'no-boundary') return { payload: form.payload, headers: { 'content-type': 'multipart/form-data' } };
    if (plan.damage === 'cut') return { payload: form.payload.subarray(0, Math.floor(form.payload.length * 0.6)), headers: form.headers };
    return form;
  }

  function requestOf(plan: Plan) {
    let query = plan.query.map(([k, v]) => `${encode(k)}=${encode(resolveValue(v))}`);
    const url = plan.op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      const v = plan.path[name];
      if (v instanceof Known && v.pool === 'file') {
        const signed = new URL(pick(v));
        query = [...query, signed.search.slice(1)];
        return signed.pathname.replace('/api/v1/files/', '');
      }
      if (v && typeof v === 'object' && 'raw' in v) return String((v as { raw: string }).raw);
      return encode(resolveValue(v));
    });
    const user = plan.caller === 'anonymous' || plan.caller === 'badToken' ? undefined : users[plan.caller];
    const auth: Record<string, string> = user ? user.auth : plan.caller === 'badToken' ? { authorization: 'Bearer not.a.token' } : {};
    const body = bodyOf(plan.body);
    return {
      method: plan.op.method as 'GET',
      url: query.length ? `${url}?${query.join('&')}` : url,
      headers: { ...plan.headers, ...auth, ...body.headers },
      payload: body.payload,
    };
  }

  // Every request's URL and body so far, lower-cased: what the server may echo without leaking anything.
  const sent: string[] = [];

  function check(plan: Plan, req: ReturnType<typeof requestOf>, res: { statusCode: number; body: string; headers: Record<string, unknown> }): string | undefined {
    const fail = (what: string): undefined =>
      void problems.push(`${plan.op.key} → ${res.statusCode} ${what} (e.g. ${req.method} ${req.url.slice(0, 120)} as ${plan.caller}: ${res.body.slice(0, 160)})`);
    if (res.statusCode >= 500) fail('server error');
    // A leak is text the server made up: fuzzed input that looks like SQL may be echoed back (a field name, a message),
    // by this request or, once stored, by any later one (seed 22: a report's text in the moderation queue).
    const leak = LEAKS.exec(res.body)?.[0]?.toLowerCase();
    if (leak && !String(res.headers['content-type']).startsWith('image/') && !sent.some((text) => text.includes(leak))) {
      fail('stack trace or SQL in the body');
    }
    if (res.statusCode === 204) {
      if (res.body !== '') fail('204 with a body');
      return undefined;
    }
    if (plan.op.key === STREAM && res.statusCode === 200) {
      if (!String(res.headers['content-type']).startsWith('text/event-stream')) fail('a stream that is not an event stream');
      return undefined;
    }
    if (plan.op.path === '/api/v1/files/{key}' && res.statusCode === 200) {
      if (!/^image\/(png|webp)$/.test(String(res.headers['content-type']))) fail('an image link that is not an image');
      return undefined;
    }
    if (!String(res.headers['content-type']).startsWith('application/json')) return fail(`content-type ${String(res.headers['content-type'])}`);
    let body: { success?: unknown; data?: unknown; error?: { code?: unknown; message?: unknown; details?: unknown } };
    try {
      body = JSON.parse(res.body);
    } catch {
      return fail('not JSON');
    }
    const keys = Object.keys(body);
    if (res.statusCode < 400) {
      if (body.success !== true || !('data' in body) || keys.some((k) => !['success', 'data', 'message', 'pagination'].includes(k))) fail('not a success envelope');
      return undefined;
    }
    const error = body.error;
    if (body.success !== false || !error || keys.some((k) => !['success', 'error'].includes(k))) return fail('not an error envelope');
    if (typeof error.code !== 'string' || !CODE.test(error.code) || typeof error.message !== 'string' || !error.message) fail('error without code or message');
    if (Object.keys(error).some((k) => !['code', 'message', 'details'].includes(k))) fail('unexpected error fields');
    return error.code as string;
  }

  /**
   * The live stream answers once its headers are out and never ends: an opened one is dropped at once (check()
   * takes its 200 by content type); a refusal is read whole and checked like any answer.
   */
  async function streamed(req: ReturnType<typeof requestOf>) {
    const res = await ctx.app.inject({ ...req, payloadAsStream: true });
    const stream = res.stream();
    if (res.statusCode === 200 && String(res.headers['content-type']).startsWith('text/event-stream')) {
      stream.destroy();
      return Object.assign(res, { body: '' });
    }
    let body = '';
    for await (const chunk of stream) body += String(chunk);
    ctx.contract.check({ method: req.method, url: req.url, statusCode: res.statusCode, headers: res.headers, body });
    return Object.assign(res, { body });
  }

  /** New orders join the pools, so later requests act on them too. */
  function learn(res: { statusCode: number; body: string }) {
    if (res.statusCode !== 201) return;
    const data = JSON.parse(res.body).data as { id?: string; design_id?: string; image_url?: string };
    if (data.design_id && data.image_url && data.id) {
      pools.order.push(data.id);
      pools.design.push(data.design_id);
      pools.file.push(data.image_url);
    }
  }

  it(`survives ${RUNS} generated requests without a 5xx, always in the envelope`, async (t) => {
    const context = { doc, poolFor: (name: string) => (name.includes('design') ? ('design' as const) : name.includes('order') ? ('order' as const) : undefined) };
    const plans = fc.sample(fc.oneof(...operations.map((op) => planFor(op, context, { valid: 3, total: images.length }))), { numRuns: RUNS, seed: SEED });
    let next = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < plans.length) {
          const plan = plans[next++]!;
          const req = requestOf(plan);
          sent.push(`${req.url} ${String(req.payload ?? '')}`.toLowerCase());
          const res = plan.op.key === STREAM ? await streamed(req) : await ctx.app.inject(req);
          const code = check(plan, req, res);
          outcomes.push({ key: plan.op.key, status: res.statusCode, code: code ?? undefined });
          learn(res);
        }
      }),
    );
    seconds = (Date.now() - started) / 1000;
    const byStatus = outcomes.reduce<Record<number, number>>((acc, o) => ({ ...acc, [o.status]: (acc[o.status] ?? 0) + 1 }), {});
    t.diagnostic(`seed ${SEED}: ${outcomes.length} requests in ${seconds.toFixed(1)} s; statuses ${JSON.stringify(byStatus)}`);
    if (process.env.FUZZ_VERBOSE) {
      for (const op of operations) {
        const mine = outcomes.filter((o) => o.key === op.key);
        const counts = mine.reduce<Record<string, number>>((acc, o) => ({ ...acc, [o.status]: (acc[o.status] ?? 0) + 1 }), {});
        t.diagnostic(`${op.key}: ${JSON.stringify(counts)}`);
      }
    }
    assert.equal(outcomes.length, RUNS);
    // One line per kind of problem (operation, status, what), with its first example and how often it happened.
    const kinds = new Map<string, { example: string; count: number }>();
    for (const p of problems) {
      const kind = p.slice(0, p.indexOf(' (e.g.'));
      const entry = kinds.get(kind) ?? { example: p, count: 0 };
      entry.count++;
      kinds.set(kind, entry);
    }
    assert.deepEqual([...kinds.values()].map((k) => `${k.count}× ${k.example}`), [], `seed ${SEED}: ${problems.length} problems`);
  });

  it('reached every operation past authentication, and changed things', () => {
    const passed = new Set(outcomes.filter((o) => o.status !== 401 && o.status !== 403 && o.code !== 'NOT_FOUND').map((o) => o.key));
    assert.deepEqual(operations.map((o) => o.key).filter((k) => !passed.has(k)), [], 'operations that never got past authentication');
    const succeeded = new Set(outcomes.filter((o) => o.status < 300).map((o) => o.key));
    const writes = operations.filter((o) => o.method !== 'GET' && succeeded.has(o.key)).length;
    assert.ok(succeeded.size >= operations.length * 0.6, `2xx on only ${succeeded.size} of ${operations.length} operations`);
    assert.ok(writes >= 8, `only ${writes} writing operations ever succeeded`);
  });

  it('leaves the database consistent', async () => {
    assert.deepEqual(await invariantViolations(ctx.database.handle.db, async () => localKeys(ctx.dataDir)), []);
    recordResults('fuzz', {
      database: ctx.database.handle.kind,
      seed: SEED,
      requests: outcomes.length,
      operations: operations.length,
      seconds: Math.round(seconds * 10) / 10,
      statuses: outcomes.reduce<Record<number, number>>((acc, o) => ({ ...acc, [o.status]: (acc[o.status] ?? 0) + 1 }), {}),
      server_errors: outcomes.filter((o) => o.status >= 500).length,
      invariant_violations: 0,
    });
  });
});

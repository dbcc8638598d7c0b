import sharp from 'sharp';
import type { TestUser } from './app.js';
import type { Api } from './http.js';
import { type FilePart, multipart, pngPart } from './multipart.js';

/** A noisy PNG (noise keeps it from compressing to nothing) of the given size. */
export async function png(width = 200, height = 200, seed = 1): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  let x = seed * 2654435761;
  for (let i = 0; i < raw.length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    raw[i] = x & 0xff;
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

export interface SubmitOptions {
  description?: string;
  quantity?: number | string;
  image?: Buffer | null;
  file?: FilePart;
  fields?: Record<string, string | number>;
  headers?: Record<string, string>;
}

export async function submitOrder(ctx: { app: Api }, user: TestUser, opts: SubmitOptions = {}) {
  const fields: Record<string, string | number> = {
    description: opts.description ?? 'Pastel chrome almond set with tiny daisies',
    quantity: opts.quantity ?? 2,
    ...opts.fields,
  };
  const files = opts.file ? [opts.file] : opts.image === null ? [] : [pngPart(opts.image ?? (await png()))];
  const body = multipart(fields, files);
  return ctx.app.inject({
    method: 'POST',
    url: '/api/v1/orders',
    headers: { ...user.auth, ...body.headers, ...opts.headers },
    payload: body.payload,
  });
}

/** Submits and asserts success, returning the created order. */
export async function createOrder(ctx: { app: Api }, user: TestUser, opts: SubmitOptions = {}) {
  const res = await submitOrder(ctx, user, opts);
  if (res.statusCode !== 201) throw new Error(`submit failed: ${res.statusCode} ${res.body}`);
  return res.json().data;
}

export async function put(ctx: { app: Api }, user: TestUser, url: string, payload: unknown) {
  return ctx.app.inject({ method: 'PUT', url, headers: user.auth, payload: payload as object });
}

/** Where an order can be taken through the API, in workflow order from under_review. */
export type Stage = 'under_review' | 'rejected' | 'accepted' | 'paid' | 'in_production' | 'shipped' | 'delivered';
const STEPS: Array<[Stage, (id: string) => [string, unknown]]> = [
  ['accepted', (id) => [`/api/v1/orders/${id}/review`, { action: 'accept', complexity_multiplier: 1.5 }]],
  ['paid', (id) => [`/api/v1/orders/${id}/payment`, { payment_status: 'paid' }]],
  ['in_production', (id) => [`/api/v1/orders/${id}/status`, { status: 'in_production' }]],
  ['shipped', (id) => [`/api/v1/orders/${id}/status`, { status: 'shipped', carrier: 'USPS', tracking_number: '9400 1000' }]],
  ['delivered', (id) => [`/api/v1/orders/${id}/status`, { status: 'delivered' }]],
];

/** Moves an order under review by `tech` forward to `stage` through the API, asserting every step. */
export async function advanceOrder(ctx: { app: Api }, tech: TestUser, orderId: string, stage: Stage): Promise<void> {
  if (stage === 'under_review') return;
  if (stage === 'rejected') {
    const res = await put(ctx, tech, `/api/v1/orders/${orderId}/review`, { action: 'reject', feedback: 'More contrast, please' });
    if (res.statusCode !== 200) throw new Error(`reject failed: ${res.statusCode} ${res.body}`);
    return;
  }
  for (const [reached, step] of STEPS) {
    const [url, payload] = step(orderId);
    const res = await put(ctx, tech, url, payload);
    if (res.statusCode !== 200) throw new Error(`${url} failed: ${res.statusCode} ${res.body}`);
    if (reached === stage) return;
  }
}

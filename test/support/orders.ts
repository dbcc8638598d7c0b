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

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** One PNG chunk (length, type, data, CRC), to build files that carry metadata or damage on purpose. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  let crc = 0xffffffff;
  for (const byte of body) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0, 8 + data.length);
  return out;
}

/** `png` with `chunks` inserted right after its IHDR chunk (which ends at byte 33). */
export function withChunks(png: Buffer, ...chunks: Buffer[]): Buffer {
  return Buffer.concat([png.subarray(0, 33), ...chunks, png.subarray(33)]);
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

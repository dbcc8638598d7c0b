import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { badRequest } from '../errors.js';
import type { ObjectBody } from './storage.js';

// libvips' cache holds decoded images between calls; uploads are never processed twice, so it only costs memory.
sharp.cache(false);
sharp.concurrency(1);

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
  badRequest('INVALID_FILE_FORMAT', 'The file is not a PNG image. Export the design as PNG and upload that file.');
const damaged = () =>
  badRequest(
    'INVALID_IMAGE',
    'The PNG could not be read: it is truncated, corrupt or too complex to decode. Export it again and upload the new file.',
  );

/** Width and height as the IHDR chunk declares them, read before anything is decoded. */
export function pngHeader(head: Buffer): { width: number; height: number } {
  if (head.length < 24 || !head.subarray(0, 8).equals(PNG_SIGNATURE)) throw invalidFormat();
  if (head.toString('latin1', 12, 16) !== 'IHDR') {
    throw badRequest('INVALID_IMAGE', 'The PNG is damaged (its header chunk is missing). Export it again.');
  }
  return { width: head.readUInt32BE(16), height: head.readUInt32BE(20) };
}

/**
 * What a stored design keeps of the upload: the image (header, palette, transparency, pixel data, end).
 * Every other chunk is metadata (tEXt, zTXt, iTXt, eXIf, tIME, pHYs, iCCP, …) and is left out.
 */
const KEPT_CHUNKS = new Set(['IHDR', 'PLTE', 'tRNS', 'IDAT', 'IEND']);
const CHUNK_TYPE = /^[A-Za-z]{4}$/;

/**
 * The byte ranges of the file that make the metadata-free PNG: the signature and the kept chunks,
 * copied as they are (their CRCs stay valid), everything after IEND dropped. Only chunk headers are
 * looked at; a chunk running past the end of the file, a missing IEND or an unknown critical chunk
 * (one a decoder must refuse) make the file damaged.
 */
async function keptRanges(file: string, size: number): Promise<Array<{ start: number; end: number }>> {
  const ranges = [{ start: 0, end: 8 }];
  const head = Buffer.alloc(8);
  let next = 8; // where the chunk whose header is being read starts
  let missing = 8; // header bytes of that chunk not read yet
  let position = 0; // file offset of the current buffer
  let ended = false;
  for await (const buffer of createReadStream(file, { start: 8, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    const from = position + 8;
    let i = next + 8 - missing - from;
    while (!ended && i < buffer.length) {
      const take = Math.min(missing, buffer.length - i);
      buffer.copy(head, 8 - missing, i, i + take);
      missing -= take;
      if (missing > 0) break;
      const type = head.toString('latin1', 4, 8);
      const end = next + 12 + head.readUInt32BE(0);
      if (!CHUNK_TYPE.test(type) || end > size) throw damaged();
      if (KEPT_CHUNKS.has(type)) {
        const last = ranges[ranges.length - 1]!;
        if (last.end === next) last.end = end;
        else ranges.push({ start: next, end });
      } else if (type[0]! >= 'A' && type[0]! <= 'Z') {
        throw damaged();
      }
      ended = type === 'IEND';
      next = end;
      missing = 8;
      i = next - from;
    }
    position += buffer.length;
    if (ended) break;
  }
  if (!ended) throw damaged();
  return ranges;
}

function streamOf(file: string, ranges: Array<{ start: number; end: number }>): ObjectBody {
  const length = ranges.reduce((n, r) => n + r.end - r.start, 0);
  const chunks = async function* () {
    for (const r of ranges) yield* createReadStream(file, { start: r.start, end: r.end - 1 }) as AsyncIterable<Buffer>;
  };
  return { length, open: () => Readable.from(chunks(), { objectMode: false }) };
}

/**
 * Checks a design image in the order SPEC §5 gives (signature, declared dimensions, chunk structure,
 * full decode) and returns what to store plus a thumbnail. Nothing is stored before this succeeds.
 *
 * The stored PNG is the upload's own pixel data with the metadata chunks left out, streamed from the
 * spooled file: re-encoding a 10 MB image cost a second of CPU and three copies of it in memory, and
 * SPEC §5 asks only for a clean PNG. The whole image is still decoded (for the thumbnail), which is what
 * refuses truncated, corrupt and decompression-bomb files.
 */
export async function processDesignImage(file: string): Promise<ProcessedImage> {
  const head = Buffer.alloc(33);
  const handle = await open(file, 'r');
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  const { width, height } = pngHeader(head);
  if (width < MIN_SIDE || height < MIN_SIDE || width > MAX_SIDE || height > MAX_SIDE) {
    throw badRequest(
      'INVALID_IMAGE_DIMENSIONS',
      `The image is ${width}×${height} pixels; each side must be between ${MIN_SIDE} and ${MAX_SIDE} pixels. Resize it and try again.`,
      { width, height, min: MIN_SIDE, max: MAX_SIDE },
    );
  }
  const ranges = await keptRanges(file, (await stat(file)).size);
  return decoding.run(async () => {
    try {
      const thumbnail = await sharp(file, { limitInputPixels: MAX_SIDE * MAX_SIDE, failOn: 'error', sequentialRead: true })
        .resize({ width: Math.min(THUMBNAIL_WIDTH, width), withoutEnlargement: true })
        .webp({ quality: 80 })
        .toBuffer();
      return { png: streamOf(file, ranges), thumbnail, width, height };
    } catch {
      throw damaged();
    }
  });
}

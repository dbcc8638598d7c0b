import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { crc32, createInflate } from 'node:zlib';
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
type Problem = 'truncated' | 'corrupt' | 'decompression_bomb';

const MESSAGES: Record<Problem, string> = {
  truncated: 'The PNG is incomplete: the file ends before the image does. Upload the whole file again, or export it again.',
  corrupt: 'The PNG is damaged: part of it fails its checksum or cannot be unpacked. Export it again and upload the new file.',
  decompression_bomb:
    'The PNG unpacks to far more data than its size in pixels needs (a "decompression bomb"). Export the design again as a plain PNG.',
};

const invalidImage = (problem: Problem) => badRequest('INVALID_IMAGE', MESSAGES[problem], { problem });

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

/** Unpacks a zlib stream only to count it: true when it holds more than `limit` bytes. 'corrupt' when it cannot be read. */
async function inflatesBeyond(parts: Buffer[], limit: number): Promise<boolean | 'corrupt'> {
  const source = Readable.from(parts);
  const inflate = createInflate({ chunkSize: 256 * 1024 });
  source.pipe(inflate);
  let total = 0;
  try {
    for await (const chunk of inflate) {
      total += (chunk as Buffer).length;
      if (total > limit) return true;
    }
    return false;
  } catch {
    return 'corrupt';
  } finally {
    source.destroy();
    inflate.destroy();
  }
}

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

type Range = { start: number; end: number };

/**
 * Walks every chunk before anything is decoded and returns the byte ranges of the metadata-free PNG to
 * store (the signature and the kept chunks, copied as they are, so their CRCs stay valid). Each chunk
 * must be complete, of a known kind if critical, with a valid CRC; IEND must be there; and no compressed
 * data may unpack beyond what the image can use. libpng tolerates most of these (it stops reading once
 * it has the pixels), but a file that breaks them is corrupt, truncated or a decompression bomb, and
 * SPEC §5 refuses those. Bytes after IEND (another file glued on: a PNG/ZIP or PNG/HTML polyglot) are
 * not part of the image and are simply not stored, like the metadata chunks.
 */
export async function checkPngStructure(data: Buffer): Promise<Range[]> {
  const ihdr = { width: 0, height: 0, bitDepth: 0, colorType: 0, interlace: 0 };
  const idat: Buffer[] = [];
  const ranges: Range[] = [{ start: 0, end: PNG_SIGNATURE.length }];
  let offset = PNG_SIGNATURE.length;
  let ended = false;
  while (offset < data.length) {
    if (offset + 12 > data.length) throw invalidImage('truncated');
    const length = data.readUInt32BE(offset);
    const end = offset + 12 + length;
    if (length > 0x7fffffff || end > data.length) throw invalidImage('truncated');
    const type = data.toString('latin1', offset + 4, offset + 8);
    if (!CHUNK_TYPE.test(type)) throw invalidImage('corrupt');
    const body = data.subarray(offset + 8, offset + 8 + length);
    if ((crc32(data.subarray(offset + 4, offset + 8 + length)) >>> 0) !== data.readUInt32BE(offset + 8 + length)) {
      throw invalidImage('corrupt');
    }
    if (KEPT_CHUNKS.has(type)) {
      const last = ranges[ranges.length - 1]!;
      if (last.end === offset) last.end = end;
      else ranges.push({ start: offset, end });
    } else if (type[0]! >= 'A' && type[0]! <= 'Z') {
      // An unknown critical chunk: a decoder must refuse the file.
      throw invalidImage('corrupt');
    }
    offset = end;
    if (type === 'IHDR') {
      if (length !== 13) throw invalidImage('corrupt');
      Object.assign(ihdr, { width: body.readUInt32BE(0), height: body.readUInt32BE(4), bitDepth: body[8], colorType: body[9], interlace: body[12] });
    } else if (type === 'IDAT') {
      idat.push(body);
    } else if (type === 'IEND') {
      ended = true;
      break;
    } else {
      const start = compressedPayloadOffset(type, body);
      if (start >= 0 && (await inflatesBeyond([body.subarray(start)], MAX_ANCILLARY_INFLATED)) === true) {
        throw invalidImage('decompression_bomb');
      }
    }
  }
  if (!ended) throw invalidImage('truncated');
  if (idat.length === 0) throw invalidImage('truncated');
  const verdict = await inflatesBeyond(idat, expectedImageDataSize(ihdr));
  if (verdict === 'corrupt') throw invalidImage('corrupt');
  if (verdict) throw invalidImage('decompression_bomb');
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
 * SPEC §5 asks only for a clean PNG. checkPngStructure refuses truncated, corrupt and decompression-bomb
 * files first; the whole image is then decoded for the thumbnail.
 */
export async function processDesignImage(file: string): Promise<ProcessedImage> {
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
    throw badRequest(
      'INVALID_IMAGE_DIMENSIONS',
      `The image is ${width}×${height} pixels; each side must be between ${MIN_SIDE} and ${MAX_SIDE} pixels. Resize it and try again.`,
      { width, height, min: MIN_SIDE, max: MAX_SIDE },
    );
  }
  return decoding.run(async () => {
    // The whole file (at most MAX_UPLOAD_SIZE_MB) for the chunk walk; the decode below needs far more.
    const ranges = await checkPngStructure(await readFile(file));
    try {
      const thumbnail = await sharp(file, { limitInputPixels: MAX_SIDE * MAX_SIDE, failOn: 'error', sequentialRead: true })
        .resize({ width: Math.min(THUMBNAIL_WIDTH, width), withoutEnlargement: true })
        .webp({ quality: 80 })
        .toBuffer();
      return { png: streamOf(file, ranges), thumbnail, width, height };
    } catch {
      throw badRequest(
        'INVALID_IMAGE',
        'The PNG could not be read: it is truncated, corrupt or too complex to decode. Export it again and upload the new file.',
      );
    }
  });
}

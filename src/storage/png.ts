import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { badRequest } from '../errors.js';

// libvips' cache holds decoded images between calls; uploads are never processed twice, so it only costs memory.
sharp.cache(false);
sharp.concurrency(1);

export const MIN_SIDE = 100;
export const MAX_SIDE = 4096;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const THUMBNAIL_WIDTH = 320;

export interface ProcessedImage {
  /** Re-encoded PNG without metadata chunks (text, EXIF, …). */
  png: Buffer;
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

/** Width and height as the IHDR chunk declares them, read before anything is decoded. */
export function pngHeader(head: Buffer): { width: number; height: number } {
  if (head.length < 24 || !head.subarray(0, 8).equals(PNG_SIGNATURE)) throw invalidFormat();
  if (head.toString('latin1', 12, 16) !== 'IHDR') {
    throw badRequest('INVALID_IMAGE', 'The PNG is damaged (its header chunk is missing). Export it again.');
  }
  return { width: head.readUInt32BE(16), height: head.readUInt32BE(20) };
}

/**
 * Checks a design image in the order SPEC §5 gives (signature, declared dimensions, full decode) and
 * returns a clean re-encoded copy plus a thumbnail. Nothing is stored before this succeeds.
 */
export async function processDesignImage(input: string | Buffer): Promise<ProcessedImage> {
  const data = typeof input === 'string' ? await readFile(input) : input;
  const { width, height } = pngHeader(data);
  if (width < MIN_SIDE || height < MIN_SIDE || width > MAX_SIDE || height > MAX_SIDE) {
    throw badRequest(
      'INVALID_IMAGE_DIMENSIONS',
      `The image is ${width}×${height} pixels; each side must be between ${MIN_SIDE} and ${MAX_SIDE} pixels. Resize it and try again.`,
      { width, height, min: MIN_SIDE, max: MAX_SIDE },
    );
  }
  return decoding.run(async () => {
    try {
      const options = { limitInputPixels: MAX_SIDE * MAX_SIDE, failOn: 'error' as const, sequentialRead: true };
      // sharp drops every metadata chunk unless asked to keep it.
      const png = await sharp(data, options).png({ compressionLevel: 6, adaptiveFiltering: true }).toBuffer();
      const thumbnail = await sharp(png, options)
        .resize({ width: Math.min(THUMBNAIL_WIDTH, width), withoutEnlargement: true })
        .webp({ quality: 80 })
        .toBuffer();
      return { png, thumbnail, width, height };
    } catch {
      throw badRequest(
        'INVALID_IMAGE',
        'The PNG could not be read: it is truncated, corrupt or too complex to decode. Export it again and upload the new file.',
      );
    }
  });
}

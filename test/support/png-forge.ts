import { crc32, deflateSync } from 'node:zlib';

/**
 * Builds PNG files chunk by chunk, so tests can forge what an editor never writes: bad checksums,
 * missing chunks, lying headers, compressed bombs, other files glued on. No binary fixtures.
 */
export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function chunk(type: string, data: Buffer, opts: { badCrc?: boolean } = {}): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE((crc32(typed) ^ (opts.badCrc ? 0xdeadbeef : 0)) >>> 0);
  return Buffer.concat([length, typed, crc]);
}

export interface Header {
  width: number;
  height: number;
  /** 1, 2, 4, 8 or 16 */
  bitDepth?: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA */
  colorType?: number;
  interlace?: 0 | 1;
}

export function ihdr(h: Header, opts: { badCrc?: boolean } = {}): Buffer {
  const b = Buffer.alloc(13);
  b.writeUInt32BE(h.width >>> 0, 0);
  b.writeUInt32BE(h.height >>> 0, 4);
  b[8] = h.bitDepth ?? 8;
  b[9] = h.colorType ?? 2;
  b[12] = h.interlace ?? 0;
  return chunk('IHDR', b, opts);
}

/** The unfiltered scanlines of a non-interlaced image: a zero filter byte and zero pixels per row. */
export function blankScanlines(h: Header): Buffer {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[h.colorType ?? 2] ?? 3;
  return Buffer.alloc(h.height * (1 + Math.ceil((h.width * channels * (h.bitDepth ?? 8)) / 8)));
}

export interface ForgeOptions extends Header {
  /** What IDAT unpacks to; defaults to a blank image of the declared size. */
  pixels?: Buffer;
  /** Raw IDAT payload instead of deflating `pixels`. */
  idat?: Buffer;
  /** Chunks between IHDR and IDAT. */
  before?: Buffer[];
  badIhdrCrc?: boolean;
  badIdatCrc?: boolean;
  omitIend?: boolean;
  /** Bytes after IEND. */
  trailer?: Buffer;
}

export function forgePng(o: ForgeOptions): Buffer {
  const idat = o.idat ?? deflateSync(o.pixels ?? blankScanlines(o), { level: 9 });
  return Buffer.concat([
    PNG_SIGNATURE,
    ihdr(o, { badCrc: o.badIhdrCrc }),
    ...(o.before ?? []),
    chunk('IDAT', idat, { badCrc: o.badIdatCrc }),
    o.omitIend ? Buffer.alloc(0) : chunk('IEND', Buffer.alloc(0)),
    o.trailer ?? Buffer.alloc(0),
  ]);
}

/** `png` with `chunks` inserted right after its IHDR chunk (which ends at byte 33). */
export function withChunks(png: Buffer, ...chunks: Buffer[]): Buffer {
  return Buffer.concat([png.subarray(0, 33), ...chunks, png.subarray(33)]);
}

/** A text chunk (tEXt, or zTXt with `compressed`) whose text is `text`. */
export function textChunk(keyword: string, text: Buffer | string, compressed = false): Buffer {
  const body = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1');
  if (!compressed) return chunk('tEXt', Buffer.concat([Buffer.from(`${keyword}\0`, 'latin1'), body]));
  return chunk('zTXt', Buffer.concat([Buffer.from(`${keyword}\0\0`, 'latin1'), deflateSync(body, { level: 9 })]));
}

/** An international text chunk with compressed text. */
export function compressedITXt(keyword: string, text: Buffer): Buffer {
  return chunk('iTXt', Buffer.concat([Buffer.from(`${keyword}\0\x01\0en\0\0`, 'latin1'), deflateSync(text, { level: 9 })]));
}

/** An embedded colour profile chunk whose profile unpacks to `profile`. */
export function iccpChunk(profile: Buffer): Buffer {
  return chunk('iCCP', Buffer.concat([Buffer.from('icc\0\0', 'latin1'), deflateSync(profile, { level: 9 })]));
}

/**
 * A real ZIP archive (one stored file) meant to follow `prefixLength` bytes of something else, so that
 * the whole is a PNG/ZIP polyglot that unzip tools open.
 */
export function zipArchive(name: string, content: Buffer, prefixLength = 0): Buffer {
  const fileName = Buffer.from(name);
  const crc = crc32(content) >>> 0;
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(content.length, 18);
  local.writeUInt32LE(content.length, 22);
  local.writeUInt16LE(fileName.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(content.length, 20);
  central.writeUInt32LE(content.length, 24);
  central.writeUInt16LE(fileName.length, 28);
  central.writeUInt32LE(prefixLength, 42);
  const localPart = Buffer.concat([local, fileName, content]);
  const centralPart = Buffer.concat([central, fileName]);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(centralPart.length, 12);
  end.writeUInt32LE(prefixLength + localPart.length, 16);
  return Buffer.concat([localPart, centralPart, end]);
}

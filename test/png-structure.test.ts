import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { PngStructureCheck, type Range } from '../src/storage/png.js';
import { chunk, forgePng, iccpChunk, textChunk, withChunks } from './support/png-forge.js';

/** The structure check over a whole file in memory, in one piece. */
async function checkPngStructure(data: Buffer): Promise<Range[]> {
  const check = new PngStructureCheck();
  await check.write(data);
  return check.result();
}

/**
 * The chunk walk runs on an upload as it is received (design-upload.ts), in whatever pieces the network
 * delivers: a chunk header, body or CRC may be split anywhere. Fed in pieces, it must come to exactly the
 * verdict it reaches on the whole file. test/hostile-uploads.test.ts covers each refusal over HTTP.
 */

const MB = 1024 * 1024;

async function inPieces(data: Buffer, size: (i: number) => number) {
  const check = new PngStructureCheck();
  for (let at = 0, i = 0; at < data.length; i++) {
    const end = Math.min(data.length, at + size(i));
    await check.write(data.subarray(at, end));
    at = end;
  }
  return check.result();
}

const outcome = (p: Promise<unknown>) =>
  p.then(
    (ranges) => ({ ranges }),
    (err: { code?: string; details?: unknown }) => ({ code: err.code, details: err.details }),
  );

/** Noise does not compress: its IDAT spans many chunks, as a real photo-like design does. */
const noisy = (side: number) =>
  sharp(randomBytes(side * side * 3), { raw: { width: side, height: side, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toBuffer();

describe('PNG structure check fed in pieces', () => {
  it('reaches the verdict of the whole file whatever the piece size', async () => {
    const valid = withChunks(await noisy(300), textChunk('Comment', 'hello'), iccpChunk(Buffer.alloc(3000, 1)));
    const files: Record<string, Buffer> = {
      valid,
      'valid, then a ZIP glued on': Buffer.concat([valid, Buffer.from('PK\x03\x04 not part of the image')]),
      truncated: valid.subarray(0, valid.length - 5000),
      'cut inside a chunk header': valid.subarray(0, 33 + 4),
      'bad CRC on a text chunk': forgePng({ width: 200, height: 200, before: [chunk('tEXt', Buffer.from('Comment\0hi'), { badCrc: true })] }),
      'IDAT bomb': forgePng({ width: 200, height: 200, pixels: Buffer.alloc(16 * MB) }),
      'zTXt bomb': forgePng({ width: 200, height: 200, before: [textChunk('Comment', Buffer.alloc(16 * MB), true)] }),
      'IDAT not zlib data': forgePng({ width: 200, height: 200, idat: Buffer.from('this is not deflate data at all') }),
      'misnamed chunk, then cut short': Buffer.concat([forgePng({ width: 200, height: 200, omitIend: true }), Buffer.from([0, 0, 1, 0, 0x31, 0x32, 0x33, 0x34, 1, 2])]),
    };
    const sizes: Record<string, (i: number) => number> = {
      'one byte': () => 1,
      'seven bytes': () => 7,
      'varying sizes': (i) => [1, 13, 4096, 3, 65536, 12][i % 6]!,
      'one piece': () => Infinity,
    };
    for (const [name, file] of Object.entries(files)) {
      const whole = await outcome(checkPngStructure(file));
      for (const [how, size] of Object.entries(sizes)) {
        if (how === 'one byte' && file.length > 200_000) continue;
        assert.deepEqual(await outcome(inPieces(file, size)), whole, `${name}, in pieces of ${how}`);
      }
    }
    assert.deepEqual(Object.keys(await outcome(checkPngStructure(valid))), ['ranges']);
    assert.deepEqual(await outcome(checkPngStructure(files['IDAT bomb']!)), { code: 'INVALID_IMAGE', details: { problem: 'decompression_bomb' } });
    assert.deepEqual(await outcome(checkPngStructure(files['misnamed chunk, then cut short']!)), { code: 'INVALID_IMAGE', details: { problem: 'truncated' } });
  });

  it('keeps the image and colour chunks and drops the metadata', async () => {
    const image = await noisy(300);
    const file = withChunks(image, textChunk('Comment', 'secret'), iccpChunk(Buffer.alloc(3000, 1)));
    const ranges = await inPieces(file, () => 4099);
    const stored = Buffer.concat(ranges.map((r) => file.subarray(r.start, r.end)));
    assert.equal(stored.includes('secret'), false);
    assert.equal(stored.includes('iCCP'), true);
    const imageAlone = (await checkPngStructure(image)).reduce((n, r) => n + r.end - r.start, 0);
    assert.equal(stored.length, imageAlone + iccpChunk(Buffer.alloc(3000, 1)).length);
  });
});

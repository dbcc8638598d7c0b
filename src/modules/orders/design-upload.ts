import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, fail } from '../../errors.js';
import { PngStructureCheck, type Range } from '../../storage/png.js';

export interface SpooledFile {
  /** Temporary file holding the upload; removed by cleanup(). */
  path: string;
  filename: string;
  mimetype: string;
  bytes: number;
  /** Digest of the file, for Idempotency-Key fingerprints; empty unless `digest` was asked for. */
  sha256: string;
  /** The PNG chunk walk, done as the file arrived: the ranges to store, or the refusal (see processDesignImage). */
  structure: Promise<Range[]>;
}

export interface DesignForm {
  fields: Record<string, string>;
  file?: SpooledFile;
  cleanup(): Promise<void>;
}

let spoolDir: Promise<string> | undefined;

/**
 * This process's private spool directory (mode 0700, made once, removed on exit): other local users can
 * neither list nor read uploads in flight. Files in it are created 0600.
 */
export function spoolDirectory(): Promise<string> {
  spoolDir ??= mkdtemp(path.join(os.tmpdir(), 'kn-uploads-')).then((dir) => {
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  });
  return spoolDir;
}

/** Why a form stopped arriving before it was read to the end (see readDesignForm). */
class FormAbandoned extends Error {}

// Control characters (NUL included) and path separators never belong in a design's file name.
// eslint-disable-next-line no-control-regex
const SAFE_FILENAME = /^[^/\\\x00-\x1f\x7f]{1,255}$/;

/**
 * Reads a multipart design form: the one file (field `image`) is streamed to a temporary file,
 * so a 10 MB upload is never held in memory, and refused early on its name and declared type.
 * Its PNG chunks are walked (CRCs, image data unpacked and counted) as they pass, while the rest of
 * the upload is still arriving; the verdict waits in `file.structure` for processDesignImage.
 *
 * Resolves to null when the request ends while the form is still arriving: the client hung up, or the
 * handler timeout answered 503 (the reply's 'close'). The spooled file is then closed and removed at once
 * instead of waiting for a body that may never come, and there is nothing left to answer: the caller
 * hijacks the reply and returns. A client abort is logged at info, not as a server error.
 */
export async function readDesignForm(
  request: FastifyRequest,
  reply: FastifyReply,
  opts: { maxBytes: number; allowedFields: readonly string[]; digest?: boolean },
): Promise<DesignForm | null> {
  const fields: Record<string, string> = {};
  let file: SpooledFile | undefined;
  let check: PngStructureCheck | undefined;
  const cleanup = async () => {
    check?.destroy();
    if (file) await rm(file.path, { force: true });
  };
  const maxMb = Math.round(opts.maxBytes / 1024 / 1024);
  const dir = await spoolDirectory();
  // The response ends before the form only when the request is over: stop reading, let go of the file.
  const abandon = new AbortController();
  let abandoned: (err: FormAbandoned) => void = () => undefined;
  const ended = new Promise<never>((_, reject) => {
    abandoned = reject;
  });
  ended.catch(() => undefined);
  const onClose = () => {
    const err = new FormAbandoned('the request ended before its form was read');
    abandon.abort(err);
    abandoned(err);
  };
  reply.raw.once('close', onClose);
  try {
    const parts = request.parts({
      limits: { fileSize: opts.maxBytes, files: 1, fields: 12, parts: 14, fieldSize: 16 * 1024, headerPairs: 50 },
    })[Symbol.asyncIterator]();
    for (;;) {
      const next = await Promise.race([parts.next(), ended]);
      if (next.done) break;
      const part = next.value;
      if (part.type === 'field') {
        if (!opts.allowedFields.includes(part.fieldname)) {
          throw fail('VALIDATION_ERROR', `The form field "${part.fieldname}" is not accepted.`, { [part.fieldname]: 'is not an accepted field' });
        }
        if (part.fieldname in fields) {
          throw fail('VALIDATION_ERROR', `The form field "${part.fieldname}" was sent twice.`, { [part.fieldname]: 'was sent more than once' });
        }
        if (String(part.value).includes('\u0000')) {
          throw fail('VALIDATION_ERROR', `The form field "${part.fieldname}" contains a NUL character.`, { [part.fieldname]: 'must not contain NUL (\\u0000) characters' });
        }
        if (part.valueTruncated) {
          throw fail('VALIDATION_ERROR', `The form field "${part.fieldname}" is too long.`, { [part.fieldname]: 'is too long' });
        }
        fields[part.fieldname] = String(part.value);
        continue;
      }
      if (part.fieldname !== 'image') {
        part.file.resume();
        throw fail('UNEXPECTED_FILE_FIELD', `Send the design in the "image" field (got a file in "${part.fieldname}").`);
      }
      if (!SAFE_FILENAME.test(part.filename ?? '')) {
        part.file.resume();
        throw fail('INVALID_FILE_NAME', 'The file name is missing or contains path separators or control characters. Rename the file, e.g. design.png.');
      }
      if (!/\.png$/i.test(part.filename)) {
        part.file.resume();
        throw fail('INVALID_FILE_FORMAT', 'Only PNG images are accepted: the file name must end in .png.');
      }
      if (part.mimetype !== 'image/png') {
        part.file.resume();
        throw fail('INVALID_FILE_FORMAT', `Only PNG images are accepted: the file was sent as ${part.mimetype || 'an unknown type'}, not image/png.`);
      }
      const target = path.join(dir, `${randomUUID()}.png`);
      // Only a request with an Idempotency-Key needs the digest: a pass over 10 MB otherwise spent for nothing.
      const hash = opts.digest ? createHash('sha256') : undefined;
      let bytes = 0;
      // The chunk walk runs on the bytes as they pass, so the file is never read back for it.
      const walk = (check = new PngStructureCheck());
      // Known before the copy so that cleanup() removes a partly written file; its walk's verdict is set once the copy is done.
      file = { path: target, filename: part.filename, mimetype: part.mimetype, bytes: 0, sha256: '', structure: Promise.resolve([]) };
      await pipeline(
        part.file,
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash?.update(chunk);
            bytes += chunk.length;
            const wait = walk.write(chunk);
            if (wait) void wait.then(() => cb(null, chunk));
            else cb(null, chunk);
          },
        }),
        createWriteStream(target, { flags: 'wx', mode: 0o600 }),
        { signal: abandon.signal },
      );
      file.bytes = bytes;
      file.sha256 = hash?.digest('hex') ?? '';
      file.structure = walk.result();
      // Awaited by processDesignImage, unless the request fails before (then the refusal has nobody to go to).
      file.structure.catch(() => undefined);
    }
    return { fields, file, cleanup };
  } catch (err) {
    await cleanup();
    // The reply's 'close' may come just after the part stream failed for the same reason (the socket went away).
    if (abandon.signal.aborted || reply.raw.writableEnded || request.raw.socket?.destroyed) {
      if (reply.raw.writableEnded) request.log.info('upload abandoned: the request was already answered (handler timeout)');
      else request.log.info({ clientAbort: true }, 'upload abandoned: the client closed the connection');
      return null;
    }
    if (err instanceof AppError) throw err;
    const code = (err as { code?: string }).code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') {
      throw fail('FILE_TOO_LARGE', `The image is larger than ${maxMb} MB. Export it smaller (e.g. fewer pixels or more compression) and try again.`, {
        max_bytes: opts.maxBytes,
      });
    }
    if (code === 'FST_FILES_LIMIT') throw fail('TOO_MANY_FILES', 'Send exactly one image, in the "image" field.');
    if (code === 'FST_PARTS_LIMIT' || code === 'FST_FIELDS_LIMIT') {
      throw fail('TOO_MANY_PARTS', 'The form has too many fields. Send the image and the documented fields only.');
    }
    if (code === 'FST_INVALID_MULTIPART_CONTENT_TYPE') {
      throw fail('UNSUPPORTED_MEDIA_TYPE', 'Send the design as multipart/form-data.');
    }
    if (code === 'FST_PROTO_VIOLATION') throw fail('VALIDATION_ERROR', 'A form field name is not allowed.');
    if (err instanceof Error && /unexpected end of (form|multipart data)|Malformed part header|Multipart: Boundary not found/i.test(err.message)) {
      throw fail('MALFORMED_MULTIPART', 'The multipart body is incomplete or malformed. Send it again.');
    }
    throw err;
  } finally {
    reply.raw.off('close', onClose);
  }
}

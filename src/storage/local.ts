import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { access, copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type ObjectBody, SIGNED_URL_TTL_SECONDS, type PutOptions, type Storage, StorageUnavailableError } from './storage.js';

export interface LocalStorage extends Storage {
  readonly kind: 'local';
  /** The file behind a key, or undefined when the key is not a safe relative path. */
  resolve(key: string): string | undefined;
  /** 'ok', 'expired' or 'invalid' for a key with the query parameters of a signed link. */
  verify(key: string, expires: string | undefined, signature: string | undefined): 'ok' | 'expired' | 'invalid';
}

const SAFE_KEY = /^[0-9a-f-]{36}\/[0-9a-f-]{36}(\.thumb)?\.(png|webp)$/;

/** The signing secret is kept on disk so links survive restarts; it is never served or logged. */
async function loadSecret(file: string): Promise<Buffer> {
  try {
    return Buffer.from(await readFile(file, 'utf8'), 'base64');
  } catch {
    const secret = randomBytes(32);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, secret.toString('base64'), { mode: 0o600, flag: 'wx' }).catch(() => undefined);
    return Buffer.from(await readFile(file, 'utf8'), 'base64');
  }
}

/**
 * Images on local disk for the embedded default. Links are HMAC-signed with an expiry and served by
 * GET /api/v1/files/…, with the same one-hour semantics as S3 presigned URLs.
 */
export async function createLocalStorage(opts: { dir: string; secretFile: string; publicUrl: string }): Promise<LocalStorage> {
  await mkdir(opts.dir, { recursive: true });
  const secret = await loadSecret(opts.secretFile);
  const sign = (key: string, expires: number) => createHmac('sha256', secret).update(`${key}\n${expires}`).digest('base64url');

  const resolve = (key: string) => (SAFE_KEY.test(key) ? path.join(opts.dir, key) : undefined);
  const fileFor = (key: string) => {
    const file = resolve(key);
    if (!file) throw new Error(`unsafe storage key: ${key}`);
    return file;
  };
  const unavailable = (err: unknown) => new StorageUnavailableError('the image folder cannot be written', { cause: err });

  return {
    kind: 'local',
    resolve,
    async put(key: string, body: ObjectBody, _opts: PutOptions) {
      const file = fileFor(key);
      const temp = `${file}.${randomUUID()}.tmp`;
      try {
        await mkdir(path.dirname(file), { recursive: true });
        // Written aside then renamed, so a reader never sees half a file.
        if (Buffer.isBuffer(body)) await writeFile(temp, body, { mode: 0o600 });
        else await pipeline(body.open(), createWriteStream(temp, { mode: 0o600 }));
        await rename(temp, file);
      } catch (err) {
        await rm(temp, { force: true });
        throw unavailable(err);
      }
    },
    async copy(fromKey: string, toKey: string) {
      const target = fileFor(toKey);
      try {
        await mkdir(path.dirname(target), { recursive: true });
        await copyFile(fileFor(fromKey), target, constants.COPYFILE_EXCL);
      } catch (err) {
        throw unavailable(err);
      }
    },
    async delete(key: string) {
      const file = resolve(key);
      if (file) await rm(file, { force: true });
    },
    async signedUrl(key: string, expiresInSeconds = SIGNED_URL_TTL_SECONDS) {
      const expires = Math.floor(Date.now() / 1000) + expiresInSeconds;
      return `${opts.publicUrl}/api/v1/files/${key}?expires=${expires}&signature=${sign(key, expires)}`;
    },
    verify(key, expires, signature) {
      if (!expires || !signature || !/^\d{1,12}$/.test(expires) || !resolve(key)) return 'invalid';
      const expected = Buffer.from(sign(key, Number(expires)));
      const given = Buffer.from(signature);
      if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'invalid';
      return Number(expires) < Date.now() / 1000 ? 'expired' : 'ok';
    },
    async check() {
      await access(opts.dir, constants.W_OK);
    },
  };
}

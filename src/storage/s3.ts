import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Config } from '../config.js';
import { getSignedUrl } from './presign.js';
import { SIGNED_URL_TTL_SECONDS, type PutOptions, type Storage, StorageUnavailableError } from './storage.js';

type S3Config = NonNullable<Config['s3']>;

/**
 * A store that accepts connections but never answers (a network partition) must not hold an upload
 * for long: 5 s without a byte moving fails an attempt, and every operation, retries included, ends
 * after 8 s, well inside Heroku's 30 s router timeout.
 */
const IDLE_TIMEOUT_MS = 5000;
const OPERATION_DEADLINE_MS = 8000;

/**
 * Links are signed as of the start of a five-minute window and last the hour plus the window, so each
 * is valid for at least an hour from when it is handed out (at most 65 min). Within a window the same
 * object gets the same link: browsers and CDNs cache the image across page views instead of seeing a new
 * URL each time, and a gallery page (40 links) is not re-signed on every request. A link not yet made in the
 * window is signed by presign.ts, the SDK's getSignedUrl without its middleware stack (bench figure 3a).
 */
const LINK_WINDOW_S = 300;
/** Bounds the links remembered within one window (~600 bytes each). */
const LINK_CACHE_MAX = 20_000;

function createLinkCache() {
  let window = 0;
  const links = new Map<string, string>();
  return {
    /** The current window's start in seconds; moving into a new window forgets the old links. */
    windowStart() {
      const now = Math.floor(Date.now() / 1000);
      const start = now - (now % LINK_WINDOW_S);
      if (start !== window) {
        window = start;
        links.clear();
      }
      return start;
    },
    get: (key: string, ttl: number) => links.get(`${ttl}:${key}`),
    set(key: string, ttl: number, url: string) {
      if (links.size >= LINK_CACHE_MAX) links.clear();
      links.set(`${ttl}:${key}`, url);
    },
  };
}

const tagging = (opts: PutOptions) => `order-id=${encodeURIComponent(opts.orderId)}`;

/** Objects are private and encrypted at rest; readers only ever get presigned GET links. */
export function createS3Storage(cfg: S3Config): Storage & { client: S3Client } {
  const client = new S3Client({
    region: cfg.region,
    endpoint: cfg.endpoint,
    forcePathStyle: cfg.forcePathStyle,
    credentials: cfg.accessKeyId && cfg.secretAccessKey ? { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey } : undefined,
    // A dead store must fail fast: the request waits on it while the customer watches a spinner.
    maxAttempts: 2,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 2000, requestTimeout: IDLE_TIMEOUT_MS, throwOnRequestTimeout: true }),
    // Checksums on streamed bodies are optional for S3 and break S3-compatible stores that do not implement them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const bucket = cfg.bucket;
  const links = createLinkCache();
  const guard = async <T>(what: string, op: (options: { abortSignal: AbortSignal }) => Promise<T>): Promise<T> => {
    try {
      return await op({ abortSignal: AbortSignal.timeout(OPERATION_DEADLINE_MS) });
    } catch (err) {
      throw new StorageUnavailableError(`S3 ${what} failed: ${(err as Error).name}`, { cause: err });
    }
  };

  return {
    kind: 's3',
    client,
    async put(key, body, opts) {
      const send = (options: { abortSignal: AbortSignal }) =>
        client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: Buffer.isBuffer(body) ? body : body.open(),
            ContentType: opts.contentType,
            ContentLength: body.length,
            ServerSideEncryption: 'AES256',
            Tagging: tagging(opts),
          }),
          options,
        );
      // The SDK retries a Buffer itself but cannot rewind a stream: a streamed put gets its one retry here, from a fresh
      // stream, within the same deadline.
      await guard('put', (options) => (Buffer.isBuffer(body) ? send(options) : send(options).catch(() => send(options))));
    },
    async copy(fromKey, toKey, opts) {
      await guard('copy', (options) =>
        client.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key: toKey,
            CopySource: `${bucket}/${fromKey}`,
            ContentType: opts.contentType,
            MetadataDirective: 'REPLACE',
            ServerSideEncryption: 'AES256',
            Tagging: tagging(opts),
            TaggingDirective: 'REPLACE',
          }),
          options,
        ),
      );
    },
    async delete(key) {
      await guard('delete', (options) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), options));
    },
    async signedUrl(key, expiresInSeconds = SIGNED_URL_TTL_SECONDS) {
      const window = links.windowStart();
      const cached = links.get(key, expiresInSeconds);
      if (cached) return cached;
      const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), {
        expiresIn: expiresInSeconds + LINK_WINDOW_S,
        signingDate: new Date(window * 1000),
      });
      // A window that turned during the await would hand this link out for less than the hour.
      if (links.windowStart() === window) links.set(key, expiresInSeconds, url);
      return url;
    },
    async check(signal) {
      await client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal });
    },
  };
}

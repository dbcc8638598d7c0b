import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Config } from '../config.js';
import { type ObjectLocation, locationOf, presignGet } from './presign.js';
import { SIGNED_URL_TTL_SECONDS, type PutOptions, type Storage, StorageUnavailableError } from './storage.js';

type S3Config = NonNullable<Config['s3']>;

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
    requestHandler: new NodeHttpHandler({ connectionTimeout: 2000, requestTimeout: 15000 }),
    // Checksums on streamed bodies are optional for S3 and break S3-compatible stores that do not implement them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const bucket = cfg.bucket;
  // The SDK decides where the bucket's objects live (path or virtual-host style, custom endpoints);
  // it is asked once, and links are then signed without it (see presign.ts).
  const PROBE_KEY = 'location-probe.png';
  let location: Promise<ObjectLocation> | undefined;
  const locate = () =>
    (location ??= getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: PROBE_KEY }), { expiresIn: 60 }).then(
      (url) => locationOf(url, PROBE_KEY),
      (err: unknown) => {
        location = undefined;
        throw err;
      },
    ));
  const guard = async <T>(what: string, op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      throw new StorageUnavailableError(`S3 ${what} failed: ${(err as Error).name}`, { cause: err });
    }
  };

  return {
    kind: 's3',
    client,
    async put(key, body, opts) {
      const send = () =>
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
        );
      // The SDK retries a Buffer itself but cannot rewind a stream: a streamed put gets its one retry here, from a fresh stream.
      await guard('put', () => (Buffer.isBuffer(body) ? send() : send().catch(() => send())));
    },
    async copy(fromKey, toKey, opts) {
      await guard('copy', () =>
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
        ),
      );
    },
    async delete(key) {
      await guard('delete', () => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })));
    },
    async signedUrl(key, expiresInSeconds = SIGNED_URL_TTL_SECONDS) {
      const [where, credentials] = await Promise.all([locate(), client.config.credentials()]);
      return presignGet(where, { key, region: cfg.region, credentials, expiresIn: expiresInSeconds });
    },
    async check(signal) {
      await client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal });
    },
  };
}

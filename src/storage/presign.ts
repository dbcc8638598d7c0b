/**
 * `getSignedUrl` of `@aws-sdk/s3-request-presigner`, same signature, for GetObject links: SigV4 in the query
 * string with an unsigned payload, byte for byte what the SDK writes (test/presign.test.ts holds the two side by
 * side), without the SDK's middleware stack: a few microseconds a link instead of about 300. Any other command
 * goes to the SDK. To drop it, import `getSignedUrl` from the SDK in storage/s3.ts instead.
 *
 * Kept for bench figure 3a: a status change answers with the order's two links, signed fresh (the five-minute
 * reuse in storage/s3.ts helps lists that are read again, not orders that each change once). Node 24, three
 * alternating builds of `--only=3a` on 3 December 2026: 3a 0.49 / 0.54 / 0.48 with the SDK against
 * 0.79 / 0.78 / 0.81 with this (×1.6), the API's CPU per status change 5.3–6.7 ms against 3.2–4.5 ms.
 * On figure 2a, whose gallery pages re-read the same links, it made no difference (1.03).
 */
import { createHash, createHmac } from 'node:crypto';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl as sdkGetSignedUrl } from '@aws-sdk/s3-request-presigner';

type Options = { expiresIn?: number; signingDate?: Date };

/** Where a bucket's objects live: `origin` + `prefix` + the encoded key (the prefix holds the bucket in path style). */
interface ObjectLocation {
  origin: string;
  host: string;
  prefix: string;
}

/** RFC 3986 encoding, as SigV4 wants it: encodeURIComponent leaves !'()* alone. */
const encode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const encodeKey = (key: string) => key.split('/').map(encode).join('/');

const PROBE_KEY = 'location-probe.png';

/**
 * The SDK decides where a bucket's objects live (path or virtual-host style, custom endpoints, dotted buckets);
 * it is asked once per client and bucket, and links are then signed without it.
 */
const locations = new WeakMap<S3Client, Map<string, Promise<ObjectLocation>>>();

function locate(client: S3Client, bucket: string): Promise<ObjectLocation> {
  let byBucket = locations.get(client);
  if (!byBucket) locations.set(client, (byBucket = new Map()));
  let location = byBucket.get(bucket);
  if (!location) {
    location = sdkGetSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: PROBE_KEY }), { expiresIn: 60 }).then((probe) => {
      const url = new URL(probe);
      if (!url.pathname.endsWith(encodeKey(PROBE_KEY))) throw new Error(`cannot find the key in ${url.origin}${url.pathname}`);
      return { origin: url.origin, host: url.host, prefix: url.pathname.slice(0, -encodeKey(PROBE_KEY).length) };
    });
    // A failed probe (credentials not there yet) is asked again next time.
    location.catch(() => byBucket.delete(bucket));
    byBucket.set(bucket, location);
  }
  return location;
}

let cachedKey: { secret: string; scope: string; key: Buffer } | undefined;

function signingKey(secret: string, day: string, region: string): Buffer {
  const scope = `${day}/${region}`;
  if (cachedKey?.secret === secret && cachedKey.scope === scope) return cachedKey.key;
  const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), 's3'), 'aws4_request');
  cachedKey = { secret, scope, key };
  return key;
}

export async function getSignedUrl(client: S3Client, command: object, options: Options = {}): Promise<string> {
  const input = command instanceof GetObjectCommand ? command.input : undefined;
  // Only a plain GetObject (bucket and key, nothing that becomes a signed query parameter) is signed here.
  if (!input || Object.keys(input).some((k) => k !== 'Bucket' && k !== 'Key') || !input.Bucket || !input.Key) {
    return sdkGetSignedUrl(client, command as GetObjectCommand, options);
  }
  const [location, credentials, region] = await Promise.all([locate(client, input.Bucket), client.config.credentials(), client.config.region()]);
  const amzDate = (options.signingDate ?? new Date()).toISOString().replace(/[-:]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${region}/s3/aws4_request`;
  const path = `${location.prefix}${encodeKey(input.Key)}`;
  // Sorted by name, as the canonical request wants; the signature slots in between (…Security-Token, Signature, SignedHeaders…).
  const before =
    'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD' +
    `&X-Amz-Credential=${encode(`${credentials.accessKeyId}/${scope}`)}&X-Amz-Date=${amzDate}&X-Amz-Expires=${options.expiresIn ?? 900}` +
    (credentials.sessionToken ? `&X-Amz-Security-Token=${encode(credentials.sessionToken)}` : '');
  const after = 'X-Amz-SignedHeaders=host&x-id=GetObject';
  const canonicalRequest = `GET\n${path}\n${before}&${after}\nhost:${location.host}\n\nhost\nUNSIGNED-PAYLOAD`;
  const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonicalRequest).digest('hex')}`;
  const signature = createHmac('sha256', signingKey(credentials.secretAccessKey, day, region)).update(stringToSign).digest('hex');
  return `${location.origin}${path}?${before}&X-Amz-Signature=${signature}&${after}`;
}

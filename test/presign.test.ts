import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { getSignedUrl as ours } from '../src/storage/presign.js';
import { createS3Storage } from '../src/storage/s3.js';
import { linkLifetimeS } from './support/links.js';

const KEYS = ['0b6a3f9e-2f1c-4c56-9a8e-3d2b1c0a9f8e/7d9c1b2a-3e4f-4a5b-8c6d-7e8f9a0b1c2d.png', "a b/c+d~e!'()*ü.thumb.webp"];
const CONFIGS = [
  { name: 'S3-compatible endpoint, path style', region: 'us-east-1', bucket: 'kendalls', endpoint: 'http://127.0.0.1:4569', forcePathStyle: true },
  { name: 'AWS, virtual-hosted', region: 'eu-west-1', bucket: 'kendalls-images' },
  { name: 'AWS, dotted bucket, temporary credentials', region: 'us-east-1', bucket: 'images.kendalls.example', sessionToken: 'FwoG+/token==' },
  { name: 'S3-compatible endpoint, virtual-hosted', region: 'auto', bucket: 'kendalls', endpoint: 'https://minio.example.com:9000' },
];

describe('presigned GET links', () => {
  for (const cfg of CONFIGS) {
    it(`are byte for byte the SDK's: ${cfg.name}`, async () => {
      const credentials = { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: cfg.sessionToken };
      const client = new S3Client({
        region: cfg.region,
        endpoint: cfg.endpoint,
        forcePathStyle: cfg.forcePathStyle,
        credentials,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      const sdk = (key: string, signingDate: Date) =>
        getSignedUrl(client, new GetObjectCommand({ Bucket: cfg.bucket, Key: key }), { expiresIn: 3600, signingDate });
      for (const key of KEYS) {
        for (const now of [new Date('2025-03-01T23:59:59Z'), new Date('2031-12-31T00:00:00.999Z')]) {
          const command = new GetObjectCommand({ Bucket: cfg.bucket, Key: key });
          assert.equal(await ours(client, command, { expiresIn: 3600, signingDate: now }), await sdk(key, now));
        }
      }
      // What it does not sign itself (here a query parameter of the command) it leaves to the SDK.
      const disposition = new GetObjectCommand({ Bucket: cfg.bucket, Key: KEYS[0], ResponseContentDisposition: 'attachment' });
      const when = new Date('2030-01-01T00:00:00Z');
      assert.equal(
        await ours(client, disposition, { expiresIn: 60, signingDate: when }),
        await getSignedUrl(client, disposition, { expiresIn: 60, signingDate: when }),
      );
      client.destroy();
    });
  }

  it('come out of the S3 store for its bucket, valid for at least an hour, the same link within a window', async () => {
    const storage = createS3Storage({
      bucket: 'kendalls',
      region: 'us-east-1',
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      endpoint: 'http://127.0.0.1:4569',
      forcePathStyle: true,
    });
    const url = new URL(await storage.signedUrl(KEYS[0]!));
    assert.equal(`${url.origin}${url.pathname}`, `http://127.0.0.1:4569/kendalls/${KEYS[0]}`);
    const lifetime = linkLifetimeS(url.href);
    assert.ok(lifetime >= 3600 - 1 && lifetime <= 3900, `valid for an hour to 65 min from now (${lifetime} s)`);
    assert.equal(await storage.signedUrl(KEYS[0]!), url.href, 'the same object gets the same link within the window');
    assert.notEqual(await storage.signedUrl(KEYS[1]!), url.href);
    const short = await storage.signedUrl(KEYS[0]!, 60);
    assert.notEqual(short, url.href, 'a different lifetime is a different link');
    assert.ok(linkLifetimeS(short) >= 59 && linkLifetimeS(short) <= 360);
    assert.match(url.searchParams.get('X-Amz-Credential')!, /^S3RVER\/\d{8}\/us-east-1\/s3\/aws4_request$/);
    assert.match(url.searchParams.get('X-Amz-Signature')!, /^[0-9a-f]{64}$/);
    storage.client.destroy();
  });
});

import { readdirSync } from 'node:fs';
import path from 'node:path';
import { ListObjectsCommand, S3Client } from '@aws-sdk/client-s3';
import { sql } from '../../src/db/orm.js';
import type { Database } from '../../src/db/client.js';
import type { S3rverHandle } from './s3rver.js';

/** Every object the local image store under `dataDir` holds, as keys. */
export function localKeys(dataDir: string): string[] {
  const root = path.join(dataDir, 'images');
  try {
    return readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.relative(root, path.join(e.parentPath, e.name)));
  } catch {
    return [];
  }
}

/**
 * Every object in the s3rver bucket, as keys. Listed with ListObjects (v1), paged by Marker (the last key
 * seen): s3rver answers any truncated ListObjectsV2 page with a 500, because it makes the continuation
 * token with DES, which OpenSSL 3 refuses (jamhall/s3rver#818; the package is no longer maintained).
 */
export async function s3Keys(s3: Pick<S3rverHandle, 'endpoint' | 'bucket'>, pageSize = 1000): Promise<string[]> {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  try {
    const keys: string[] = [];
    for (let truncated = true; truncated; ) {
      const out = await client.send(new ListObjectsCommand({ Bucket: s3.bucket, Marker: keys.at(-1), MaxKeys: pageSize }));
      keys.push(...(out.Contents ?? []).map((o) => o.Key!));
      truncated = Boolean(out.IsTruncated) && Boolean(out.Contents?.length);
    }
    return keys;
  } finally {
    client.destroy();
  }
}

/** `select count(*) from <from>`: a table, optionally with a where clause written by the test. */
export async function countRows(db: Database, from: string): Promise<number> {
  const result = await db.execute(sql.raw(`select count(*)::int as n from ${from}`));
  return (result as unknown as { rows: Array<{ n: number }> }).rows[0]!.n;
}

/** Rows of a query written by the test. */
export async function rows<T>(db: Database, query: string): Promise<T[]> {
  return ((await db.execute(sql.raw(query))) as unknown as { rows: T[] }).rows;
}

import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
// s3rver ships no types; this is the part of its API the tests use.
// @ts-expect-error untyped module
import S3rver from 's3rver';

export interface S3rverHandle {
  endpoint: string;
  bucket: string;
  env: Record<string, string>;
  /** Stops answering (connections refused) but keeps the stored objects. */
  pause(): Promise<void>;
  /** Serves the same objects again, on the same port. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/** A real S3-compatible server on a free loopback port, with its own folder and bucket. */
export async function startS3rver(bucket = 'kendalls-test'): Promise<S3rverHandle> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'kn-s3rver-'));
  const run = async (port: number) => {
    const server = new S3rver({ address: '127.0.0.1', port, silent: true, directory, configureBuckets: [{ name: bucket }] });
    const address = (await server.run()) as { port: number };
    return { server, port: address.port };
  };
  let { server, port } = await run(0);
  let running = true;
  const close = async () => {
    if (!running) return;
    running = false;
    (server.httpServer as Server).closeAllConnections();
    await server.close();
  };
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    env: {
      S3_BUCKET_NAME: bucket,
      S3_ENDPOINT: endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
    },
    pause: close,
    async resume() {
      if (running) return;
      ({ server, port } = await run(port));
      running = true;
    },
    async stop() {
      await close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

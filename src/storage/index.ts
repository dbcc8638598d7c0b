import path from 'node:path';
import type { Config } from '../config.js';
import type { DependencyCheck } from '../plugins/health.js';
import { type LocalStorage, createLocalStorage } from './local.js';
import { createS3Storage } from './s3.js';
import type { Storage } from './storage.js';

/** S3 when a bucket is configured (required in staging and production), else local disk under DATA_DIR. */
export async function createStorage(config: Config): Promise<Storage> {
  if (config.s3) return createS3Storage(config.s3);
  return createLocalStorage({
    dir: path.join(config.dataDir, 'images'),
    secretFile: path.join(config.dataDir, 'local-storage-signing-key'),
    publicUrl: config.publicUrl,
  });
}

export const isLocal = (storage: Storage): storage is LocalStorage => storage.kind === 'local';

export const storageCheck = (storage: Storage): DependencyCheck => ({ name: 'storage', run: (signal) => storage.check(signal) });

import type { Readable } from 'node:stream';

/**
 * Where design images live. Two implementations: S3 (any S3-compatible store) and local disk under
 * DATA_DIR for the embedded default. Objects are private; readers get expiring signed links.
 */
export interface PutOptions {
  contentType: string;
  /** Tagged on the object (S3 tag `order-id`) so objects can be traced back to their order. */
  orderId: string;
}

/** What put() stores: bytes in memory, or bytes streamed from disk (their length known up front, as S3 needs it). */
export type ObjectBody = Buffer | { length: number; open(): Readable };

export interface Storage {
  readonly kind: 's3' | 'local';
  /** Stores bytes under `key` (server-side encrypted on S3). Throws StorageUnavailableError when the store is unreachable. */
  put(key: string, body: ObjectBody, opts: PutOptions): Promise<void>;
  /** Server-side copy to a new key (reorder and reuse get an independent copy). */
  copy(fromKey: string, toKey: string, opts: PutOptions): Promise<void>;
  /** Removes an object; used only to undo an upload whose database write failed. Missing keys are fine. */
  delete(key: string): Promise<void>;
  /** A link that fetches the object for `expiresInSeconds` (default 3600), then is refused. */
  signedUrl(key: string, expiresInSeconds?: number): Promise<string>;
  /** Resolves when the store answers (HeadBucket / the folder is writable); for the health check. */
  check(signal?: AbortSignal): Promise<void>;
}

export const SIGNED_URL_TTL_SECONDS = 3600;

/** The store could not be reached or refused the operation; the API answers 503. */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}

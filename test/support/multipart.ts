import { randomBytes } from 'node:crypto';

export interface FilePart {
  field?: string;
  filename: string;
  /** Omitted (null) sends the part without a Content-Type header. */
  contentType: string | null;
  data: Buffer;
}

export type Fields = Record<string, string | number> | Array<[string, string | number]>;

/** Builds a multipart/form-data body by hand, so tests control every byte (names, types, extra parts). */
export function multipart(fields: Fields, files: FilePart[] = [], opts: { filesFirst?: boolean } = {}) {
  const boundary = `----kn${randomBytes(12).toString('hex')}`;
  const fieldChunks = (Array.isArray(fields) ? fields : Object.entries(fields)).map(([name, value]) =>
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`),
  );
  const fileChunks = files.map((file) =>
    Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${file.field ?? 'image'}"; filename="${file.filename}"\r\n` +
          (file.contentType === null ? '' : `Content-Type: ${file.contentType}\r\n`) +
          '\r\n',
      ),
      file.data,
      Buffer.from('\r\n'),
    ]),
  );
  const parts = opts.filesFirst ? [...fileChunks, ...fieldChunks] : [...fieldChunks, ...fileChunks];
  return {
    payload: Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  };
}

export const pngPart = (data: Buffer, filename = 'design.png'): FilePart => ({ filename, contentType: 'image/png', data });

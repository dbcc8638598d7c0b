// Informational ceiling for figure 4b (figure 4i): the least a server can do with an upload and still
// store it. node:http takes the multipart body whole, finds the file part, and streams it to s3rver
// with the same S3 client settings as the API (streamed body, so unsigned payload; checksums only when
// required). No check, no decode, no thumbnail, no database, no auth, no spool file: what is left is
// receiving 10 MB over HTTP and sending it on, the two transfers every submission needs.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

const s3 = new S3Client({
  endpoint: process.env.S3_ENDPOINT,
  region: process.env.AWS_REGION ?? 'us-east-1',
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const bucket = process.env.S3_BUCKET_NAME;

/** The body of the multipart part whose headers name `field`. */
function filePart(body, boundary, field) {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const header = body.indexOf(`name="${field}"`);
  const start = body.indexOf('\r\n\r\n', header) + 4;
  return body.subarray(start, body.indexOf(delimiter, start));
}

const server = createServer((req, res) => {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(req.headers['content-type'] ?? '');
  if (req.method !== 'POST' || req.url !== '/api/v1/orders' || !boundary) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', async () => {
    try {
      const png = filePart(Buffer.concat(chunks), boundary[1] ?? boundary[2], 'image');
      const key = `forward/${randomUUID()}.png`;
      await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: Readable.from([png]), ContentLength: png.length, ContentType: 'image/png' }),
      );
      const body = JSON.stringify({ success: true, data: { key } });
      res.writeHead(201, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.on('SIGTERM', () => server.close(() => process.exit(0)));

// The physical limit for GET /api/v1/health/live (figure 1): node:http writing the API's response byte for
// byte (status, every header in the API's order, the request id kept from a well-formed X-Request-ID or a
// fresh UUID, keep-alive as the API sets it, the same body), and nothing else. The bench checks the two
// answers are identical before it measures.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

// The API's security headers for a JSON route (src/plugins/security-headers.ts) and its CORS Vary.
const FIXED = {
  vary: 'Origin',
  'content-security-policy': "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'DENY',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
};
const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{8,200}$/;

const server = createServer((req, res) => {
  if (req.url !== '/api/v1/health/live') {
    res.writeHead(404).end();
    return;
  }
  const given = req.headers['x-request-id'];
  const body = JSON.stringify({ success: true, data: { status: 'ok' } });
  res.writeHead(200, {
    'x-request-id': given && VALID_REQUEST_ID.test(given) ? given : randomUUID(),
    ...FIXED,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
});
server.keepAliveTimeout = 95_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.on('SIGTERM', () => server.close(() => process.exit(0)));

// The physical limit for GET /api/v1/health/live: node:http answering the same JSON, nothing else.
import { createServer } from 'node:http';

const server = createServer((req, res) => {
  if (req.url !== '/api/v1/health/live') {
    res.writeHead(404).end();
    return;
  }
  const body = JSON.stringify({ success: true, data: { status: 'ok' } });
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.on('SIGTERM', () => server.close(() => process.exit(0)));

import { hostname } from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import { ConfigError, loadConfig } from './config.js';
import { explainDatabaseError } from './db/errors.js';
import { exitOnSignals } from './lib/shutdown.js';

// Every line this process writes is one JSON object (Heroku's router, the log drain and `heroku logs` tools read
// them as such), also before the app's logger exists and for what Node itself prints: its process warnings
// (deprecations, a dependency's notices) are multi-line text on stderr unless taken over here, before app.js
// and its dependencies load.
const PINO_LEVELS = { warn: 40, error: 50, fatal: 60 } as const;
let logger: FastifyBaseLogger | undefined;
function logLine(level: keyof typeof PINO_LEVELS, fields: object, msg: string) {
  if (logger) return logger[level](fields, msg);
  process.stderr.write(`${JSON.stringify({ level: PINO_LEVELS[level], time: Date.now(), pid: process.pid, hostname: hostname(), ...fields, msg })}\n`);
}
process.removeAllListeners('warning');
process.on('warning', (warning: Error & { code?: string }) => {
  logLine('warn', { warning: { name: warning.name, code: warning.code, message: warning.message } }, 'process warning');
});
const { buildApp } = await import('./app.js');

async function main() {
  let config;
  try {
    config = loadConfig(process.env, 'web');
  } catch (err) {
    if (err instanceof ConfigError) {
      logLine('fatal', { problems: err.problems }, `Cannot start: ${err.problems.join('; ')}`);
      process.exit(1);
    }
    throw err;
  }
  const app = await buildApp(config);
  logger = app.log;
  await app.listen({ port: config.port, host: config.host });
  if (config.devIssuer) {
    app.log.info(
      `Development token issuer active. Get a token: curl -s -X POST ${config.publicUrl}/dev/token -H 'content-type: application/json' -d '{"role":"customer","email":"ana@example.com","name":"Ana"}'`,
    );
  }

  // Stop accepting, let in-flight requests finish, then exit.
  exitOnSignals(app.log, { timeoutMs: config.shutdownTimeoutMs }, () => app.close());
}

main().catch((err: unknown) => {
  // A TLS mismatch with the database (development migrates at start-up) names DATABASE_SSL.
  const hint = explainDatabaseError(err);
  const error = err instanceof Error ? { type: err.name, message: err.message, stack: err.stack } : { message: String(err) };
  logLine('fatal', { err: error, ...(hint ? { hint } : {}) }, hint ? `Cannot start: ${hint}` : 'Cannot start');
  process.exit(1);
});

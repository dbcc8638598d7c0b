import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { explainDatabaseError } from './db/errors.js';

async function main() {
  let config;
  try {
    config = loadConfig(process.env, 'web');
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Cannot start: ${err.problems.join('; ')}`);
      process.exit(1);
    }
    throw err;
  }
  const app = await buildApp(config);
  await app.listen({ port: config.port, host: config.host });
  if (config.devIssuer) {
    app.log.info(
      `Development token issuer active. Get a token: curl -s -X POST ${config.publicUrl}/dev/token -H 'content-type: application/json' -d '{"role":"customer","email":"ana@example.com","name":"Ana"}'`,
    );
  }

  // Heroku sends SIGTERM and kills after 30 s: stop accepting, let in-flight requests finish, then exit.
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      app.log.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    try {
      await app.close();
      process.exit(0);
    } catch (err) {
      app.log.error({ err }, 'error during shutdown');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  // A TLS mismatch with the database (development migrates at start-up) names DATABASE_SSL.
  const hint = explainDatabaseError(err);
  if (hint) console.error(`Cannot start: ${hint}`);
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});

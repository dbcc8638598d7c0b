import pino from 'pino';
import { ConfigError, loadConfig } from './config.js';
import { createDatabase } from './db/client.js';
import { explainDatabaseError } from './db/errors.js';
import { runMigrationsDirect } from './db/migrate.js';
import { createLiveBus } from './modules/live/bus.js';
import { exitOnSignals } from './lib/shutdown.js';
import { LOG_OPTIONS } from './plugins/request-log.js';
import { wireDelivery, wireIdentity, wireNotifications, wireOrders, wireWebhooks, wireWorker } from './wiring.js';
import { createStorageCleanup } from './storage/cleanup.js';
import { createStorage } from './storage/index.js';

/**
 * The notification worker dyno (Procfile `worker: node dist/worker.js`): delivers the outbox through pg-boss
 * with the same wiring as the API (wiring.ts), and runs pg-boss's maintenance. In development the web process
 * runs the same worker itself (WORKER_IN_PROCESS). On SIGTERM it stops fetching, lets the jobs in hand finish
 * within SHUTDOWN_TIMEOUT_MS, and exits; a job still active then is retried after WORKER_JOB_TIMEOUT_S.
 */

async function main() {
  let config;
  try {
    config = loadConfig(process.env, 'worker');
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(JSON.stringify({ level: 60, time: Date.now(), problems: err.problems, msg: `Cannot start: ${err.problems.join('; ')}` }));
      process.exit(1);
    }
    throw err;
  }
  const log = pino({ level: config.logLevel, ...LOG_OPTIONS, base: { process: 'worker' } });
  const database = await createDatabase(config, log);
  if (config.environment === 'development') await runMigrationsDirect(config, database);
  const db = database.db;
  const notifications = wireNotifications(config, database, { log, supervise: true });
  await notifications.ready();
  const identity = wireIdentity(config, db, { log, notify: notifications.notify });
  const storage = await createStorage(config);
  const cleanup = createStorageCleanup({ db, storage, log, intervalMs: config.storageCleanupIntervalMs });
  const orders = wireOrders(config, db, { storage, cleanup, users: identity.usersRepository, log: log as never, notify: notifications.notify });
  // The worker only publishes to the live bus (web processes subscribe), and sends the webhooks it enqueued.
  const live = await createLiveBus({ config, database, log: log as never });
  const delivery = wireDelivery(config, db, { live, webhooks: wireWebhooks(config, db, { log, notify: notifications.notify }), notifications, orders, identity, log });
  const worker = wireWorker(config, db, { notifications, identity, orders, channels: delivery.channels, log });
  await worker.start();
  delivery.start();

  // The jobs in hand get SHUTDOWN_TIMEOUT_MS to finish (notifications.stop), closing the rest 2 s more.
  exitOnSignals(log, { timeoutMs: config.shutdownTimeoutMs + 2000, name: 'worker', lateHint: 'active jobs are retried after their timeout' }, async () => {
    await worker.stop();
    await delivery.stop();
    await notifications.stop(config.shutdownTimeoutMs);
    await live.close();
    await database.close();
  });
}

main().catch((err: unknown) => {
  const hint = explainDatabaseError(err);
  const error = err instanceof Error ? { type: err.name, message: err.message, stack: err.stack } : { message: String(err) };
  console.error(JSON.stringify({ level: 60, time: Date.now(), err: error, ...(hint ? { hint } : {}), msg: hint ? `Cannot start: ${hint}` : 'Cannot start the worker' }));
  process.exit(1);
});

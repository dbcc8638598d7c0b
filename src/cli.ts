import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { createDatabase } from './db/client.js';
import { explainDatabaseError } from './db/errors.js';
import { runMigrationsDirect } from './db/migrate.js';
import { AppError } from './errors.js';
import { wireIdentity, wireNotifications } from './wiring.js';

const USAGE = `Usage:
  node dist/cli.js migrate                                   apply pending database migrations
  node dist/cli.js invite-technician --email E --name N      invite a nail technician through Auth0 (the first one;
                                                             later ones are invited by a technician through the API)`;

type Command = (args: string[]) => Promise<void>;

class UsageError extends Error {}

/** JSON lines on stderr, so stdout carries only the command's result. */
const log = {
  info: (obj: object, msg: string) => console.error(JSON.stringify({ level: 'info', msg, ...obj })),
  warn: (obj: object, msg: string) => console.error(JSON.stringify({ level: 'warn', msg, ...obj })),
  error: (obj: object, msg: string) => console.error(JSON.stringify({ level: 'error', msg, ...obj })),
};

function options(args: string[], names: string[]): Record<string, string | undefined> {
  try {
    const { values } = parseArgs({ args, options: Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])), strict: true });
    return values as Record<string, string | undefined>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

const commands: Record<string, Command> = {
  /** Heroku's release phase: needs only DATABASE_URL (and ENVIRONMENT), never PORT or what the web alone uses. */
  async migrate() {
    const config = loadConfig(process.env, 'release');
    const database = await createDatabase(config);
    try {
      await runMigrationsDirect(config, database);
      console.log(JSON.stringify({ level: 'info', msg: 'migrations applied', database: database.kind }));
    } finally {
      await database.close();
    }
  },

  /** The same service as POST /auth/technicians/invite, with no inviter: it creates the very first technician. */
  async 'invite-technician'(args) {
    const { email, name } = options(args, ['email', 'name']);
    if (!email || !name) throw new UsageError('invite-technician needs --email and --name');
    const config = loadConfig(process.env, 'cli');
    const database = await createDatabase(config);
    try {
      // Like the server: development databases are migrated on first use; deployed ones by the release phase.
      if (config.environment === 'development') await runMigrationsDirect(config, database);
      // The invitation's technician.invited event goes to the outbox like the API's, for the worker to email.
      const notifications = wireNotifications(config, database, { log, supervise: false });
      const { invitations } = wireIdentity(config, database.db, { log, notify: notifications.notify });
      const { invitation } = await invitations.invite({ email, name }, null);
      console.log(JSON.stringify({ level: 'info', msg: 'technician invited: send them ticket_url to set a password', invitation }));
    } finally {
      await database.close();
    }
  },
};

async function main() {
  const [name, ...args] = process.argv.slice(2);
  const command = name ? commands[name] : undefined;
  if (!command) throw new UsageError(name ? `unknown command "${name}"` : 'no command given');
  await command(args);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof UsageError) console.error(`${err.message}\n\n${USAGE}`);
    else if (err instanceof ConfigError) console.error(`Cannot run: ${err.problems.join('; ')}`);
    else if (err instanceof AppError) console.error(`Failed (${err.code}): ${err.message}`);
    else {
      const hint = explainDatabaseError(err);
      console.error(`Failed: ${err instanceof Error ? err.message : String(err)}${hint ? ` (${hint})` : ''}`);
    }
    process.exit(1);
  },
);

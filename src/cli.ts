import { ConfigError, loadConfig } from './config.js';
import { createDatabase } from './db/client.js';
import { runMigrations } from './db/migrate.js';

const USAGE = `Usage:
  node dist/cli.js migrate                                   apply pending database migrations`;

type Command = (args: string[]) => Promise<void>;

const commands: Record<string, Command> = {
  async migrate() {
    const config = loadConfig();
    const database = await createDatabase(config);
    try {
      await runMigrations(database);
      console.log(JSON.stringify({ level: 'info', msg: 'migrations applied', database: database.kind }));
    } finally {
      await database.close();
    }
  },
};

class UsageError extends Error {}

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
    else console.error(`Failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);

// The compiled migrate command reads SQL files next to dist/db/migrate.js.
import { cpSync } from 'node:fs';

cpSync('src/db/migrations', 'dist/db/migrations', { recursive: true });

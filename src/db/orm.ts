import { createRequire } from 'node:module';
import type * as Core from 'drizzle-orm';
import type * as NodePostgres from 'drizzle-orm/node-postgres';
import type * as NodePostgresMigrator from 'drizzle-orm/node-postgres/migrator';
import type * as PgCore from 'drizzle-orm/pg-core';
import type * as Pglite from 'drizzle-orm/pglite';
import type * as PgliteMigrator from 'drizzle-orm/pglite/migrator';

/*
 * drizzle-orm, loaded through its CommonJS build: everything the app uses from drizzle comes from here.
 *
 * Its package.json carries a 179 KB `exports` map, and Node 24's ES module loader copies that map out
 * of its native cache again for each of the ~100 files it loads from the package (package_json_reader:
 * a fresh 179 KB string per lookup, then garbage). `import 'drizzle-orm/node-postgres'` took 1.25 s on
 * Node 24 against 0.17 s on Node 20, half of the API's start-up (bench figure 6); through require() it
 * takes 0.12 s, because CommonJS resolves the exports map once per entry point and loads the package's
 * own files by relative path. Only the values go through require; the types are the package's.
 *
 * Kept against the stock ESM import (issue 15, bench/README.md "Stock pieces"): bench figure 6 on Node 24,
 * same run, 3 starts each on a machine under load average ~20: 13.2 s with this loader, 19.3 s with the
 * ESM import (1.47x).
 */
const require = createRequire(import.meta.url);

export const { and, asc, desc, eq, getTableName, gt, ilike, inArray, isNull, lt, lte, ne, notExists, or, sql } = require('drizzle-orm') as typeof Core;
export type { ExtractTablesWithRelations, Placeholder, SQL } from 'drizzle-orm';

export const { PgDialect, alias, boolean, check, customType, date, index, integer, jsonb, numeric, pgTable, primaryKey, text, timestamp, unionAll, uniqueIndex, uuid } =
  require('drizzle-orm/pg-core') as typeof PgCore;
export type { AnyPgColumn, PgDatabase, PgQueryResultHKT, PgTable, PgTransaction } from 'drizzle-orm/pg-core';

export const { drizzle: drizzlePg } = require('drizzle-orm/node-postgres') as typeof NodePostgres;
export const { migrate: migratePg } = require('drizzle-orm/node-postgres/migrator') as typeof NodePostgresMigrator;

/** The embedded database's driver and migrator, loaded only by a process that uses PGlite. */
export const pgliteDrizzle = () => require('drizzle-orm/pglite') as typeof Pglite;
export const pgliteMigrator = () => require('drizzle-orm/pglite/migrator') as typeof PgliteMigrator;

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

/**
 * Every migration is backward compatible with the release before it (README, "Deploying": expand, then contract).
 * Heroku's release phase migrates while the previous release's dynos still serve, and `heroku releases:rollback`
 * puts that code back on the migrated database; so a migration must never remove or rename a table or column
 * the previous release reads, nor add a NOT NULL column without a default that its inserts do not fill.
 *
 * Each migration's drizzle snapshot is compared with the one before it (they are generated with the SQL by
 * `npm run db:generate`), and its SQL is scanned for DROP TABLE / DROP COLUMN / RENAME, in case it was edited by
 * hand. A removal is allowed only when listed in CONTRACTED below: the contract step of an expand/contract change,
 * shipped one release after the release that stopped reading the item.
 */

interface Contracted {
  /** The migration tag (its file name without .sql) that removes the item. */
  migration: string;
  /** `table` or `table.column`. */
  item: string;
  /** Which release stopped reading it. */
  reason: string;
}

/** Tables and columns removed on purpose, each after a release in which no code read them. */
const CONTRACTED: readonly Contracted[] = [];

const MIGRATIONS = path.resolve(import.meta.dirname, '../src/db/migrations');

interface Column {
  name: string;
  type: string;
  notNull?: boolean;
  default?: unknown;
  identity?: unknown;
  generated?: unknown;
}
interface Snapshot {
  id: string;
  prevId: string;
  tables: Record<string, { name: string; schema: string; columns: Record<string, Column> }>;
  enums: Record<string, { name: string; schema: string; values: string[] }>;
}

interface Journal {
  entries: Array<{ idx: number; tag: string }>;
}

function journal(): Journal {
  return JSON.parse(readFileSync(path.join(MIGRATIONS, 'meta/_journal.json'), 'utf8')) as Journal;
}

function snapshot(idx: number): Snapshot {
  return JSON.parse(readFileSync(path.join(MIGRATIONS, `meta/${String(idx).padStart(4, '0')}_snapshot.json`), 'utf8')) as Snapshot;
}

const tableName = (t: { name: string; schema: string }) => (t.schema && t.schema !== 'public' ? `${t.schema}.${t.name}` : t.name);

/**
 * What `next` breaks for code written against `prev`: tables, columns and enum values that are gone (a rename
 * is a removal and an addition), columns whose type changed, and new NOT NULL columns without a default on
 * tables that existed (the old code's inserts do not fill them).
 */
export function breakingChanges(prev: Snapshot, next: Snapshot): string[] {
  const problems: string[] = [];
  const nextTables = new Map(Object.values(next.tables).map((t) => [tableName(t), t]));
  for (const table of Object.values(prev.tables)) {
    const name = tableName(table);
    const after = nextTables.get(name);
    if (!after) {
      problems.push(`removed table ${name}`);
      continue;
    }
    for (const column of Object.values(table.columns)) {
      const now = after.columns[column.name];
      if (!now) problems.push(`removed column ${name}.${column.name}`);
      else if (now.type !== column.type) problems.push(`changed type of ${name}.${column.name} from ${column.type} to ${now.type}`);
    }
    for (const column of Object.values(after.columns)) {
      const added = !table.columns[column.name];
      const filled = column.default !== undefined || column.identity !== undefined || column.generated !== undefined;
      if (added && column.notNull && !filled) problems.push(`added NOT NULL column ${name}.${column.name} without a default`);
    }
  }
  const nextEnums = new Map(Object.values(next.enums ?? {}).map((e) => [tableName(e), e]));
  for (const type of Object.values(prev.enums ?? {})) {
    const after = nextEnums.get(tableName(type));
    if (!after) problems.push(`removed enum ${tableName(type)}`);
    else for (const value of type.values) if (!after.values.includes(value)) problems.push(`removed value ${value} of enum ${tableName(type)}`);
  }
  return problems;
}

const IDENT = String.raw`"?([\w$]+)"?(?:\."?([\w$]+)"?)?`;

/** DROP TABLE, DROP COLUMN and RENAME statements in a migration's SQL, with the item each touches. */
export function destructiveStatements(sql: string): string[] {
  const found: string[] = [];
  const bare = sql.replace(/--[^\n]*/g, '');
  const qualified = (a: string, b?: string) => (b ? `${a}.${b}` : a);
  for (const m of bare.matchAll(new RegExp(String.raw`\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?${IDENT}`, 'gi'))) {
    found.push(`removed table ${qualified(m[1]!, m[2]).replace(/^public\./, '')}`);
  }
  for (const m of bare.matchAll(/\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?("?[\w$]+"?(?:\."?[\w$]+"?)?)\s+([^;]*)/gi)) {
    const table = m[1]!.replaceAll('"', '').replace(/^public\./, '');
    const actions = m[2]!;
    for (const c of actions.matchAll(/\bDROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?"?([\w$]+)"?/gi)) {
      if (!/^(constraint|default|not|identity|expression)$/i.test(c[1]!)) found.push(`removed column ${table}.${c[1]}`);
    }
    for (const c of actions.matchAll(/\bRENAME\s+(?:COLUMN\s+)?"?([\w$]+)"?\s+TO\b/gi)) {
      if (!/^(constraint|to)$/i.test(c[1]!)) found.push(`removed column ${table}.${c[1]} (renamed)`);
    }
    if (/\bRENAME\s+TO\b/i.test(actions)) found.push(`removed table ${table} (renamed)`);
  }
  return found;
}

/** `problems` minus the items CONTRACTED lists for `migration`. */
function unlisted(problems: string[], migration: string, contracted: readonly Contracted[] = CONTRACTED): string[] {
  const allowed = contracted.filter((c) => c.migration === migration).map((c) => c.item);
  return problems.filter((p) => {
    const item = /^removed (?:table|column) ([\w$.]+)/.exec(p)?.[1];
    return item === undefined || !allowed.includes(item);
  });
}

function failure(migration: string, problems: string[]): string {
  return (
    `${migration} breaks the release before it, which still serves while the release phase migrates and comes back ` +
    `on rollback:\n  ${problems.join('\n  ')}\nShip it in two releases (expand, then contract: README "Deploying"); ` +
    'a removal whose readers are gone since the previous release goes into CONTRACTED in test/migrations-compat.test.ts.'
  );
}

describe('migrations are backward compatible with the previous release', () => {
  const entries = journal().entries;

  it('has a snapshot for every migration, chained in journal order', () => {
    assert.ok(entries.length >= 2);
    entries.forEach((entry, i) => {
      assert.equal(entry.idx, i);
      readFileSync(path.join(MIGRATIONS, `${entry.tag}.sql`), 'utf8');
      if (i > 0) assert.equal(snapshot(i).prevId, snapshot(i - 1).id, `${entry.tag} follows ${entries[i - 1]!.tag}`);
    });
  });

  it('the newest migration removes, renames or retypes nothing the previous release reads', () => {
    const newest = entries.at(-1)!;
    const problems = [...breakingChanges(snapshot(newest.idx - 1), snapshot(newest.idx)), ...destructiveStatements(readFileSync(path.join(MIGRATIONS, `${newest.tag}.sql`), 'utf8'))];
    const left = [...new Set(unlisted(problems, newest.tag))];
    assert.deepEqual(left, [], failure(newest.tag, left));
  });

  it('and so does every earlier one (a release may ship several)', () => {
    for (const entry of entries.slice(1)) {
      const problems = [...breakingChanges(snapshot(entry.idx - 1), snapshot(entry.idx)), ...destructiveStatements(readFileSync(path.join(MIGRATIONS, `${entry.tag}.sql`), 'utf8'))];
      const left = [...new Set(unlisted(problems, entry.tag))];
      assert.deepEqual(left, [], failure(entry.tag, left));
    }
  });

  it('lists only real removals in CONTRACTED (a stale entry would silently allow a future drop)', () => {
    for (const c of CONTRACTED) {
      const entry = entries.find((e) => e.tag === c.migration);
      assert.ok(entry, `${c.migration} is a migration`);
      const problems = [...breakingChanges(snapshot(entry.idx - 1), snapshot(entry.idx)), ...destructiveStatements(readFileSync(path.join(MIGRATIONS, `${entry.tag}.sql`), 'utf8'))];
      assert.ok(problems.some((p) => p.includes(` ${c.item}`)), `${c.migration} removes ${c.item}`);
      assert.ok(c.reason.length > 10, 'says which release stopped reading it');
    }
  });
});

describe('migrations compatibility check: it catches what it must', () => {
  // A synthetic pair built from the real newest snapshot, so the shapes are drizzle's own.
  const base = (): Snapshot => structuredClone(snapshot(journal().entries.at(-1)!.idx));
  const table = (s: Snapshot, name: string) => Object.values(s.tables).find((t) => t.name === name)!;

  it('a dropped column', () => {
    const next = base();
    delete table(next, 'orders').columns.status;
    assert.deepEqual(breakingChanges(base(), next), ['removed column orders.status']);
    assert.throws(() => assert.deepEqual(unlisted(breakingChanges(base(), next), '0099_drop'), []), /removed column orders\.status/);
  });

  it('a dropped table', () => {
    const next = base();
    const key = Object.keys(next.tables).find((k) => next.tables[k]!.name === 'comments')!;
    delete next.tables[key];
    assert.deepEqual(breakingChanges(base(), next), ['removed table comments']);
  });

  it('a renamed column (a removal and an addition), and a changed type', () => {
    const next = base();
    const orders = table(next, 'orders');
    orders.columns.state = { ...orders.columns.status!, name: 'state' };
    delete orders.columns.status;
    orders.columns.quantity = { ...orders.columns.quantity!, type: 'text' };
    // status is NOT NULL without a default, so the old code's inserts would not fill its new name either.
    assert.deepEqual(breakingChanges(base(), next).sort(), [
      'added NOT NULL column orders.state without a default',
      'changed type of orders.quantity from integer to text',
      'removed column orders.status',
    ]);
  });

  it('a new NOT NULL column without a default, but not one with a default or a new nullable one', () => {
    const next = base();
    const orders = table(next, 'orders');
    orders.columns.channel = { name: 'channel', type: 'text', notNull: true };
    orders.columns.source = { name: 'source', type: 'text', notNull: true, default: "'web'" };
    orders.columns.note = { name: 'note', type: 'text', notNull: false };
    assert.deepEqual(breakingChanges(base(), next), ['added NOT NULL column orders.channel without a default']);
  });

  it('a removed enum value', () => {
    const prev = base();
    prev.enums = { 'public.mood': { name: 'mood', schema: 'public', values: ['calm', 'busy'] } };
    const next = structuredClone(prev);
    next.enums['public.mood']!.values = ['calm'];
    assert.deepEqual(breakingChanges(prev, next), ['removed value busy of enum mood']);
  });

  it('nothing for an additive change (the expand step)', () => {
    const prev = base();
    const next = base();
    table(next, 'orders').columns.note = { name: 'note', type: 'text', notNull: false };
    next.tables['public.audit'] = { name: 'audit', schema: 'public', columns: { id: { name: 'id', type: 'uuid', notNull: true } } };
    assert.deepEqual(breakingChanges(prev, next), []);
  });

  it('DROP COLUMN, DROP TABLE and RENAME in hand-edited SQL, not other DROPs', () => {
    const sql = [
      'ALTER TABLE "orders" DROP COLUMN "status";--> statement-breakpoint',
      'ALTER TABLE orders DROP COLUMN IF EXISTS legacy_note CASCADE;',
      'DROP TABLE "comments" CASCADE;--> statement-breakpoint',
      'DROP TABLE IF EXISTS public.old_things;',
      'ALTER TABLE "users" RENAME COLUMN "name" TO "display_name";',
      'ALTER TABLE "designs" RENAME TO "gallery";',
      'ALTER TABLE "orders" DROP CONSTRAINT "orders_x_fk";',
      'ALTER TABLE "orders" ALTER COLUMN "quantity" DROP DEFAULT;',
      'ALTER TABLE "orders" ALTER COLUMN "quantity" DROP NOT NULL;',
      'DROP INDEX IF EXISTS "orders_status_idx";',
      '-- DROP TABLE "commented_out";',
    ].join('\n');
    assert.deepEqual(destructiveStatements(sql), [
      'removed table comments',
      'removed table old_things',
      'removed column orders.status',
      'removed column orders.legacy_note',
      'removed column users.name (renamed)',
      'removed table designs (renamed)',
    ]);
  });

  it('lets an item listed in CONTRACTED for that migration through, and only for that migration', () => {
    const problems = ['removed column orders.legacy_note', 'removed column orders.status'];
    const contracted = [{ migration: '0099_contract', item: 'orders.legacy_note', reason: 'unread since release v41' }];
    assert.deepEqual(unlisted(problems, '0099_contract', contracted), ['removed column orders.status']);
    assert.deepEqual(unlisted(problems, '0100_other', contracted), problems);
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { desc, gt, integer, lte, type PgTable, pgTable, type SQL, sql } from '../src/db/orm.js';
import type { Executor } from '../src/db/client.js';
import { boundedCount, countCap, estimateQuery, totalFrom } from '../src/db/pagination.js';
import { prepared, preparedSql } from '../src/db/prepared.js';
import { type TestDatabase, createTestDatabase } from './support/database.js';

/** The pieces as the repositories put them together (unprepared): count to the cap, estimate beyond it. */
async function boundedTotal(tx: Executor, table: PgTable, branches: Array<SQL | undefined>, cap: number, order: SQL[] = []) {
  const [counted] = await boundedCount(tx, table, branches, cap, order);
  return totalFrom(counted?.n ?? 0, cap, () => tx.execute(estimateQuery(tx, table, branches)));
}

const numbers = pgTable('pagination_numbers', { n: integer('n').notNull() });

describe('list totals', () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase();
    const db = database.handle.db;
    await db.execute(sql`create table pagination_numbers (n integer not null)`);
    await db.execute(sql`insert into pagination_numbers select generate_series(1, 2500)`);
    await db.execute(sql`analyze pagination_numbers`);
  });
  after(() => database.drop());

  it('are exact while fewer rows than the cap match, over one range or several', async () => {
    const db = database.handle.db;
    assert.equal(await boundedTotal(db, numbers, [lte(numbers.n, 99)], countCap(0, 20)), 99);
    assert.equal(await boundedTotal(db, numbers, [lte(numbers.n, 10), gt(numbers.n, 2490)], countCap(0, 20)), 20);
    assert.equal(await boundedTotal(db, numbers, [gt(numbers.n, 2500)], countCap(0, 20)), 0);
    assert.equal(await boundedTotal(db, numbers, [lte(numbers.n, 99)], countCap(0, 20), [desc(numbers.n)]), 99, 'counted in a list order');
    assert.equal(await boundedTotal(db, numbers, [undefined], countCap(2000, 100)), 2500, 'a deep page counts far enough to be exact');
  });

  it('are the planner estimate, never below the cap, once a list is longer than the cap', async () => {
    const db = database.handle.db;
    const total = await boundedTotal(db, numbers, [undefined], countCap(0, 20));
    assert.ok(total >= countCap(0, 20), `${total} is at least what was counted`);
    assert.ok(total > 2000 && total < 3000, `${total} is close to the 2500 rows`);
    const twoRanges = await boundedTotal(db, numbers, [lte(numbers.n, 1500), gt(numbers.n, 1500)], countCap(0, 20));
    assert.ok(twoRanges > 2000 && twoRanges < 3000, `${twoRanges} estimates both ranges`);
  });

  it('are the same through statements prepared once with placeholders (the order list)', async () => {
    const db = database.handle.db;
    const split = sql.placeholder('split');
    const branches = [lte(numbers.n, split), gt(numbers.n, split)];
    const count = prepared(boundedCount(db, numbers, branches, sql.placeholder('cap'), [desc(numbers.n)]));
    const estimate = preparedSql(db, estimateQuery(db, numbers, branches));
    const total = async (values: { split: number; cap: number }) => {
      const [counted] = await count.execute(values);
      return totalFrom(counted?.n ?? 0, values.cap, () => estimate.execute(values));
    };
    assert.deepEqual(await count.execute({ split: 10, cap: countCap(0, 20) }), [{ n: 10 + 1020 }], 'each range counted up to the cap');
    assert.equal(await total({ split: 2495, cap: countCap(2000, 100) }), 2500, 'exact below the cap');
    const long = await total({ split: 1500, cap: countCap(0, 20) });
    assert.ok(long > 2000 && long < 3000, `${long} is the estimate of both ranges`);
  });
});

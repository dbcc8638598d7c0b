/*
 * Kept against exact count(*) (issue 15, bench/README.md "Stock pieces"): the bounded count plus estimate is
 * what keeps figure 5b within 3x. Node 24 session of 2 December 2026, at 1 000 000 orders / 200 000 public
 * designs, 50 timed runs each: the gallery's total 1.7 ms p95 (exact count(*): 237 ms), a technician's list
 * 9.3 ms p95 (exact: 264 ms), against pages of 5-8 ms p95. totalFrom keeps the stock shape (a number).
 */
import { type PgTable, type Placeholder, type SQL, sql } from './orm.js';
import type { Executor } from './client.js';

/** How many rows past the current page are still counted one by one. */
export const EXACT_COUNT_WINDOW = 1000;

/** The most rows a page's count looks at: enough to know exactly what lies EXACT_COUNT_WINDOW rows past it. */
export const countCap = (offset: number, limit: number) => offset + limit + EXACT_COUNT_WINDOW;

type Rows<T> = { rows: T[] };

/** The planner's row estimate in the result of an `explain (format json)` (nothing is executed). */
function planRows(result: unknown): number {
  const raw = (result as Rows<Record<string, unknown>>).rows[0]?.['QUERY PLAN'];
  const plan = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Array<{ Plan?: { 'Plan Rows'?: number } }> | undefined;
  return Math.round(plan?.[0]?.Plan?.['Plan Rows'] ?? 0);
}

/** What lies at most `cap` rows deep into each branch, counted; a select, so it can be prepared (cap a placeholder). */
export function boundedCount(tx: Executor, table: PgTable, branches: Array<SQL | undefined>, cap: number | Placeholder<string>, order: SQL[] = []) {
  return tx.select({ n: sql<number>`count(*)::int` }).from(sql`(${branchUnion(tx, table, branches, cap, order)}) as bounded`);
}

/** The planner's estimate of the whole list, for when the count reaches the cap. */
export function estimateQuery(tx: Executor, table: PgTable, branches: Array<SQL | undefined>): SQL {
  return sql`explain (format json) ${branchUnion(tx, table, branches)}`;
}

/**
 * The `total` of a long list without counting every matching row, which at a million orders or
 * 200 000 public designs costs more than the page itself. The list is the rows matching any of its
 * branches (conditions that do not overlap: a technician's orders and the unassigned ones). At most
 * `cap` rows of each branch are counted (boundedCount, see countCap); below the cap that is the exact
 * total, so short lists, the last pages and hasNext are always exact. At the cap the list is long, and
 * its total is PostgreSQL's estimate (estimateQuery's result), never less than the rows known to exist.
 */
export async function totalFrom(counted: number, cap: number, estimate: () => Promise<unknown>): Promise<number> {
  if (Number(counted) < cap) return Number(counted);
  return Math.max(cap, planRows(await estimate()));
}

// Branches do not overlap, so the list is their UNION ALL, for the count and for the estimate alike.
// Counted in the list's own order (`order`), the rows come off the list's index: unordered, the planner
// may prefer a sequential scan that stops at the cap, which reads the whole table when rows are rare.
function branchUnion(tx: Executor, table: PgTable, branches: Array<SQL | undefined>, limit?: number | Placeholder<string>, order: SQL[] = []) {
  return sql.join(
    branches.map((where) => {
      const rows = tx.select({ one: sql`1` }).from(table).where(where);
      return sql`(${limit === undefined ? rows : rows.orderBy(...order).limit(limit)})`;
    }),
    sql` union all `,
  );
}

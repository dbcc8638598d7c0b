import { PgDialect, type SQL } from './orm.js';
import { CASING, type Executor } from './client.js';

/**
 * A query built once instead of per request: drizzle's query builder costs about as much CPU as the
 * round trip it prepares for, on the routes every client calls all the time. The statement stays
 * unnamed, so PostgreSQL still parses it per execution and it works through PgBouncer in transaction
 * mode; values go in through sql.placeholder().
 */
export function prepared<T extends { prepare(name: string): unknown }>(query: T): ReturnType<T['prepare']> {
  return query.prepare('') as ReturnType<T['prepare']>;
}

const dialect = new PgDialect({ casing: CASING });

/** The same for a statement drizzle has no builder for (an EXPLAIN): its result is the driver's, rows unmapped. */
export function preparedSql(db: Executor, query: SQL) {
  return db._.session.prepareQuery(dialect.sqlToQuery(query), undefined, '', false);
}

/**
 * Statements that differ only by a request's shape (which filters are set, which sort), each built and
 * prepared on first use and reused after; their values go in through placeholders.
 */
export function byShape<A extends unknown[], T>(key: (...args: A) => string, build: (...args: A) => T): (...args: A) => T {
  const built = new Map<string, T>();
  return (...args) => {
    const k = key(...args);
    let statement = built.get(k);
    if (!statement) built.set(k, (statement = build(...args)));
    return statement;
  };
}

/**
 * A statement built once and run in whichever transaction it is given: one prepared on the pool (`prepared`)
 * would run outside the caller's transaction. Its result is the driver's, rows unmapped.
 */
export function builtOnce(query: SQL) {
  const built = dialect.sqlToQuery(query);
  return async <Row>(tx: Executor, values: Record<string, unknown>): Promise<Row[]> => {
    const result = (await tx._.session.prepareQuery(built, undefined, '', false).execute(values)) as { rows: Row[] };
    return result.rows;
  };
}

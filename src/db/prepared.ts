/**
 * A query built once instead of per request: drizzle's query builder costs about as much CPU as the
 * round trip it prepares for, on the routes every client calls all the time. The statement stays
 * unnamed, so PostgreSQL still parses it per execution and it works through PgBouncer in transaction
 * mode; values go in through sql.placeholder().
 */
export function prepared<T extends { prepare(name: string): unknown }>(query: T): ReturnType<T['prepare']> {
  return query.prepare('') as ReturnType<T['prepare']>;
}

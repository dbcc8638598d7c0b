export interface Pgbouncer {
  port: number;
  /** postgres:// URL of `database` through the pooler. */
  url(database: string): string;
  /** The admin console (SHOW STATS, SHOW CLIENTS, SHOW POOLS). */
  adminUrl: string;
  stop(): Promise<void>;
}
export function startPgbouncer(opts: { upstream: string; poolSize?: number }): Promise<Pgbouncer>;

import type { Database, Executor } from '../../db/client.js';
import { eq, lt, sql } from '../../db/orm.js';
import { streamTickets } from '../../db/schema.js';

export function createLiveRepository(db: Database) {
  return {
    /** Stores a ticket's hash for `ttlS` seconds by the database's clock (the one every dyno shares). */
    async createTicket(tokenHash: string, userId: string, ttlS: number, tx: Executor = db): Promise<Date> {
      // Expired tickets are swept as new ones are made: the table stays as small as the last minute's sign-ins.
      await tx.delete(streamTickets).where(lt(streamTickets.expiresAt, sql`now()`));
      const [row] = await tx
        .insert(streamTickets)
        .values({ tokenHash, userId, expiresAt: sql`now() + make_interval(secs => ${ttlS})` })
        .returning({ expiresAt: streamTickets.expiresAt });
      return row!.expiresAt;
    },

    /**
     * Takes the ticket out in one statement, so two redemptions racing on two dynos cannot both win; the
     * user is returned only while it is fresh.
     */
    async redeemTicket(tokenHash: string, tx: Executor = db): Promise<string | undefined> {
      const [row] = await tx
        .delete(streamTickets)
        .where(eq(streamTickets.tokenHash, tokenHash))
        .returning({ userId: streamTickets.userId, fresh: sql<boolean>`${streamTickets.expiresAt} > now()` });
      return row?.fresh ? row.userId : undefined;
    },
  };
}

export type LiveRepository = ReturnType<typeof createLiveRepository>;

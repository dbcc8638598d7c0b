import { and, eq, sql } from '../../db/orm.js';
import type { Executor } from '../../db/client.js';
import { invitations, users } from '../../db/schema.js';

export type InvitationRow = typeof invitations.$inferSelect;
export type NewInvitation = typeof invitations.$inferInsert;
export type TicketUpdate = Pick<NewInvitation, 'name' | 'auth0UserId' | 'ticketUrl' | 'expiresAt' | 'invitedById'>;

export function createInvitationsRepository(db: Executor) {
  return {
    async findPendingByEmail(email: string, tx: Executor = db): Promise<InvitationRow | undefined> {
      const [row] = await tx
        .select()
        .from(invitations)
        .where(and(eq(invitations.email, email), eq(invitations.status, 'pending')))
        .limit(1);
      return row;
    },
    /** Undefined when a pending invitation for the email already exists (the partial unique index). */
    async insert(values: NewInvitation, tx: Executor = db): Promise<InvitationRow | undefined> {
      const [row] = await tx.insert(invitations).values(values).onConflictDoNothing().returning();
      return row;
    },
    /** A new ticket for a still-pending invitation; undefined when it was accepted meanwhile. */
    async renew(id: string, values: TicketUpdate, tx: Executor = db): Promise<InvitationRow | undefined> {
      const [row] = await tx
        .update(invitations)
        .set(values)
        .where(and(eq(invitations.id, id), eq(invitations.status, 'pending')))
        .returning();
      return row;
    },
    /** The invitation of a technician who just registered, in the registration's transaction. */
    async accept(email: string, tx: Executor = db): Promise<void> {
      await tx
        .update(invitations)
        .set({ status: 'accepted', acceptedAt: sql`now()` })
        .where(and(eq(invitations.email, email.toLowerCase()), eq(invitations.status, 'pending')));
    },
    async findWithInviter(id: string, tx: Executor = db) {
      const [row] = await tx
        .select({ invitation: invitations, inviter: { id: users.id, name: users.name } })
        .from(invitations)
        .leftJoin(users, eq(users.id, invitations.invitedById))
        .where(eq(invitations.id, id))
        .limit(1);
      return row;
    },
  };
}

export type InvitationsRepository = ReturnType<typeof createInvitationsRepository>;

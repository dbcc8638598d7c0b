import { eq, inArray, sql } from '../../db/orm.js';
import type { Executor } from '../../db/client.js';
import { users } from '../../db/schema.js';

export type UserRow = typeof users.$inferSelect;
export type NewUser = typeof users.$inferInsert;
export type ProfileUpdate = Pick<NewUser, 'name' | 'phone' | 'shippingAddress' | 'nailSizes' | 'preferredShape' | 'preferredLength'>;

export function createUsersRepository(db: Executor) {
  return {
    async findByAuth0Id(auth0Id: string, tx: Executor = db): Promise<UserRow | undefined> {
      const [row] = await tx.select().from(users).where(eq(users.auth0Id, auth0Id)).limit(1);
      return row;
    },
    async findByEmail(email: string, tx: Executor = db): Promise<UserRow | undefined> {
      const [row] = await tx.select().from(users).where(eq(users.email, email.toLowerCase())).limit(1);
      return row;
    },
    async findById(id: string, tx: Executor = db): Promise<UserRow | undefined> {
      const [row] = await tx.select().from(users).where(eq(users.id, id)).limit(1);
      return row;
    },
    /** Names and (verified) addresses of `ids`, for notifications. */
    async findPeople(ids: string[], tx: Executor = db): Promise<Array<{ id: string; name: string; email: string | null }>> {
      if (ids.length === 0) return [];
      return tx.select({ id: users.id, name: users.name, email: users.email }).from(users).where(inArray(users.id, ids));
    },
    /** Every technician: who hears of an order nobody has taken yet. */
    async technicianIds(tx: Executor = db): Promise<string[]> {
      const rows = await tx.select({ id: users.id }).from(users).where(eq(users.role, 'nail_technician'));
      return rows.map((r) => r.id);
    },
    /** Inserts unless the Auth0 id or email already exists; returns undefined on such a conflict. */
    async insert(values: NewUser, tx: Executor = db): Promise<UserRow | undefined> {
      const [row] = await tx.insert(users).values(values).onConflictDoNothing().returning();
      return row;
    },
    async updateProfile(id: string, values: ProfileUpdate, tx: Executor = db): Promise<UserRow> {
      const [row] = await tx.update(users).set(values).where(eq(users.id, id)).returning();
      return row!;
    },
    /**
     * Records a sign-in. With `verifiedEmail`, an account without email takes it up unless another account holds it
     * (then the sign-in is recorded and the email stays null).
     */
    async recordLogin(id: string, role: UserRow['role'], tx: Executor = db, verifiedEmail?: string): Promise<UserRow> {
      const email = verifiedEmail
        ? sql`case when ${users.email} is null and not exists (select 1 from ${users} taken where taken.email = ${verifiedEmail}) then ${verifiedEmail} else ${users.email} end`
        : undefined;
      const [row] = await tx
        .update(users)
        .set({ lastLoginAt: sql`now()`, role, ...(email ? { email } : {}) })
        .where(eq(users.id, id))
        .returning();
      return row!;
    },
    /** When a technician was last given an order: auto-assignment's tie-break. In the assignment's transaction. */
    async touchAssigned(technicianId: string, tx: Executor): Promise<void> {
      await tx.update(users).set({ lastAssignedAt: sql`clock_timestamp()` }).where(eq(users.id, technicianId));
    },
  };
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;

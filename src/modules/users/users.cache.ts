/*
 * Kept (issue 15, bench/README.md "Stock pieces"): the stock alternative is no cache, the plain
 * UsersRepository this wraps and returns. Bench figure 2b (a technician's order list) on Node 24, same
 * run, 7 rounds: without the cache 0.91 of the throughput (per-round 0.73-1.34) and 0.84 in CPU per
 * request (server and database). Dropping it is one line in wiring.ts.
 */
import type { UserRow, UsersRepository } from './users.repository.js';

export interface ProfileCacheOptions {
  /** How long a loaded profile is served from memory (default 5 s). */
  ttlMs?: number;
  maxEntries?: number;
}

/**
 * Every authenticated request loads its caller's profile, and a signed-in client makes many requests a
 * minute: a database round trip each, which on the list and write paths was a quarter to half of all
 * of them. Profiles are therefore kept in memory for a few seconds per process. A change made through
 * this process is seen at once (the repository's writes go through here and drop the entry); one made
 * through another process is seen within `ttlMs`. The role is the token's anyway (SPEC §2), so what may
 * lag is the display name and the submission defaults (sizes, shape, length) — for a few seconds.
 * A new repository method that changes a profile must be wrapped here like the three below.
 */
export function cacheProfiles(repo: UsersRepository, opts: ProfileCacheOptions = {}): UsersRepository {
  const ttlMs = opts.ttlMs ?? 5000;
  const maxEntries = opts.maxEntries ?? 10_000;
  const entries = new Map<string, { row: Promise<UserRow | undefined>; until: number }>();
  // A write drops the entry, and with it any load still in flight that may have read the row before the write.
  const forget = <T extends UserRow | undefined>(row: T): T => {
    if (row) entries.delete(row.auth0Id);
    return row;
  };

  return {
    ...repo,
    findByAuth0Id(auth0Id, tx) {
      if (tx) return repo.findByAuth0Id(auth0Id, tx);
      const hit = entries.get(auth0Id);
      if (hit && hit.until > Date.now()) return hit.row;
      const row = repo.findByAuth0Id(auth0Id);
      const entry = { row, until: Date.now() + ttlMs };
      if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
      entries.set(auth0Id, entry);
      const drop = () => {
        if (entries.get(auth0Id) === entry) entries.delete(auth0Id);
      };
      // Only profiles that exist are kept (registration must see its own insert); kept rows are shared
      // by concurrent requests, so they are frozen.
      row.then((found) => (found ? Object.freeze(found) : drop()), drop);
      return row;
    },
    insert: async (values, tx) => forget(await repo.insert(values, tx)),
    updateProfile: async (id, values, tx) => forget(await repo.updateProfile(id, values, tx)),
    recordLogin: async (id, role, tx, verifiedEmail) => forget(await repo.recordLogin(id, role, tx, verifiedEmail)),
  };
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cacheProfiles } from '../src/modules/users/users.cache.js';
import type { UserRow, UsersRepository } from '../src/modules/users/users.repository.js';

/** An in-memory repository that counts reads and can hold one read back until told to answer. */
function fakeRepository() {
  const rows = new Map<string, UserRow>();
  let reads = 0;
  let held: (() => void) | undefined;
  const row = (auth0Id: string, name: string) =>
    ({ id: `id-${auth0Id}`, auth0Id, name, role: 'customer', email: `${auth0Id}@example.com` }) as UserRow;
  const repo = {
    async findByAuth0Id(auth0Id: string) {
      reads++;
      const found = rows.get(auth0Id);
      if (held) await new Promise<void>((resolve) => (held = resolve));
      return found && { ...found };
    },
    async insert(values: { auth0Id: string; name: string }) {
      rows.set(values.auth0Id, row(values.auth0Id, values.name));
      return rows.get(values.auth0Id);
    },
    async updateProfile(id: string, values: { name: string }) {
      const current = [...rows.values()].find((r) => r.id === id)!;
      rows.set(current.auth0Id, { ...current, name: values.name });
      return rows.get(current.auth0Id)!;
    },
  } as unknown as UsersRepository;
  return {
    repo,
    rows,
    row,
    reads: () => reads,
    hold: () => (held = () => undefined),
    release: () => {
      const resume = held;
      held = undefined;
      resume?.();
    },
  };
}

describe('profile cache', () => {
  it('serves a profile from memory for the time it is kept, then reads it again', async () => {
    const fake = fakeRepository();
    fake.rows.set('a', fake.row('a', 'Ana'));
    const cached = cacheProfiles(fake.repo, { ttlMs: 50 });
    assert.equal((await cached.findByAuth0Id('a'))?.name, 'Ana');
    fake.rows.set('a', fake.row('a', 'Ana changed elsewhere'));
    assert.equal((await cached.findByAuth0Id('a'))?.name, 'Ana', 'another process’s change is not seen yet');
    assert.equal(fake.reads(), 1);
    await sleep(60);
    assert.equal((await cached.findByAuth0Id('a'))?.name, 'Ana changed elsewhere', 'but within the time it is kept');
    assert.equal(fake.reads(), 2);
  });

  it('sees changes made through it at once', async () => {
    const fake = fakeRepository();
    const cached = cacheProfiles(fake.repo, { ttlMs: 60_000 });
    assert.equal(await cached.findByAuth0Id('b'), undefined, 'not registered yet');
    await cached.insert({ auth0Id: 'b', name: 'Bea', email: 'b@example.com', role: 'customer' });
    const registered = await cached.findByAuth0Id('b');
    assert.equal(registered?.name, 'Bea', 'a missing profile is never kept');
    await cached.updateProfile(registered!.id, { name: 'Beatriz' } as never);
    assert.equal((await cached.findByAuth0Id('b'))?.name, 'Beatriz');
    assert.ok(Object.isFrozen(await cached.findByAuth0Id('b')), 'shared rows cannot be changed by a request');
  });

  it('does not keep a read that overlapped a write', async () => {
    const fake = fakeRepository();
    fake.rows.set('c', fake.row('c', 'Cai'));
    const cached = cacheProfiles(fake.repo, { ttlMs: 60_000 });
    fake.hold();
    const slowRead = cached.findByAuth0Id('c');
    await cached.updateProfile('id-c', { name: 'Cai updated' } as never);
    fake.release();
    assert.equal((await slowRead)?.name, 'Cai', 'the overlapping read answers what it read');
    assert.equal((await cached.findByAuth0Id('c'))?.name, 'Cai updated', 'but is not served again');
  });
});

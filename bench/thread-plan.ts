/**
 * The order list's unread_count, measured on PostgreSQL (issue 16): seeds a throwaway database like the
 * bench (bench/seed.ts) plus a thread per order (three status events each, five messages on every tenth,
 * read markers for half of them), then prints the plan of a technician's order page with the unread
 * subquery and its server-side execution time with and without it. Usage:
 *   npx tsx bench/thread-plan.ts [postgres://postgres@127.0.0.1:5432] [orders=100000]
 */
import { readFileSync, readdirSync } from 'node:fs';
import pg from 'pg';
import { MIGRATIONS_FOLDER } from '../src/db/migrate.js';
import { seed } from './seed.js';

const server = process.argv[2] ?? 'postgres://postgres@127.0.0.1:5432';
const orders = Number(process.argv[3] ?? 100_000);
const name = `kn_thread_plan_${process.pid}`;

// The technician's page as the API sends it (bench/baselines/minimal-pg.mjs ordersPage), with the unread
// subquery of threads.repository.ts written out.
const UNREAD = `(select ((select count(*) from order_events ue where ue.order_id = o.id and ue.created_at > m.at and ue.actor_id is distinct from $1::uuid)
      + case when o.customer_id = $1::uuid or o.technician_id = $1::uuid
        then (select count(*) from messages um where um.order_id = o.id and um.created_at > m.at and um.sender_id <> $1::uuid) else 0 end)::int
    from (select coalesce(max(tr.read_at), '-infinity'::timestamptz) as at from thread_reads tr where tr.order_id = o.id and tr.user_id = $1::uuid) m) as unread_count`;
const page = (extra: string) => `select o.*, c.name as customer_name, t.name as technician_name, d.id as design_id${extra}
    from orders o join users c on c.id = o.customer_id left join users t on t.id = o.technician_id left join designs d on d.order_id = o.id
    join ((select id, created_at as sort_key from orders where technician_id = $1 order by created_at desc, id desc limit $2)
          union all (select id, created_at as sort_key from orders where technician_id is null order by created_at desc, id desc limit $2)
          order by sort_key desc, id desc limit $3 offset $4) page on page.id = o.id
    order by o.created_at desc, o.id desc`;

const admin = new pg.Client({ connectionString: `${server}/postgres` });
await admin.connect();
await admin.query(`create database ${name}`);
const url = `${server}/${name}`;
const client = new pg.Client({ connectionString: url });
try {
  await client.connect();
  for (const file of readdirSync(MIGRATIONS_FOLDER).filter((f) => f.endsWith('.sql')).sort()) {
    for (const statement of readFileSync(`${MIGRATIONS_FOLDER}/${file}`, 'utf8').split('--> statement-breakpoint')) {
      if (statement.trim()) await client.query(statement);
    }
  }
  await seed(url, { orders, publicDesigns: Math.min(orders, 10_000) });
  await client.query(`insert into order_events (order_id, actor_id, from_status, to_status, kind, created_at)
    select o.id, a.actor, a.f, a.t, a.k, o.created_at + a.n * interval '1 minute'
    from orders o cross join lateral (values (0, o.customer_id, null, 'submitted', 'submit'), (1, null, 'submitted', 'under_review', 'auto_assign'),
      (2, o.technician_id, 'under_review', 'accepted', 'accept')) a(n, actor, f, t, k)`);
  await client.query(`insert into messages (order_id, sender_id, text, created_at)
    select o.id, case when g % 2 = 0 then o.customer_id else coalesce(o.technician_id, o.customer_id) end, 'message ' || g, o.created_at + g * interval '1 hour'
    from (select * from orders where abs(hashtext(id::text)) % 10 = 0) o cross join generate_series(1, 5) g`);
  await client.query(`insert into thread_reads (order_id, user_id, read_at)
    select id, technician_id, created_at + interval '90 minutes' from orders where technician_id is not null and abs(hashtext(id::text)) % 2 = 0`);
  await client.query('vacuum analyze');
  const { rows: [tech] } = await client.query(`select technician_id as id from orders where technician_id is not null group by 1 order by count(*) desc limit 1`);
  const params = [tech.id, 20, 20, 0];
  const plan = await client.query(`explain (analyze, buffers, costs off) ${page(`, ${UNREAD}`)}`, params);
  console.log(plan.rows.map((r) => r['QUERY PLAN']).join('\n'));
  // Server-side execution time (EXPLAIN ANALYZE, without per-node timing), interleaved, median of 51 each:
  // round trips on a loaded 2-CPU machine vary more than the difference being measured.
  const executed = async (sql: string) => {
    const { rows } = await client.query(`explain (analyze, timing off, format json) ${sql}`, params);
    return (rows[0]['QUERY PLAN'] as Array<{ 'Execution Time': number }>)[0]!['Execution Time'];
  };
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const without: number[] = [];
  const withUnread: number[] = [];
  for (let i = 0; i < 51; i++) {
    without.push(await executed(page('')));
    withUnread.push(await executed(page(`, ${UNREAD}`)));
  }
  const [a, b] = [median(without), median(withUnread)];
  console.log(`\n${orders} orders; a technician's page of 20, server execution time, median of 51:`);
  console.log(`  without unread_count ${a.toFixed(3)} ms, with ${b.toFixed(3)} ms (+${(b - a).toFixed(3)} ms, ${(((b - a) / a) * 100).toFixed(0)} %)`);
} finally {
  await client.end().catch(() => undefined);
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.end();
}

import pg from 'pg';

export interface SeedCounts {
  /** Seeded orders wanted in total; a second call with a larger number adds the difference. */
  orders: number;
  /** Public designs wanted in total; those added by a call are spread evenly over the orders it adds. */
  publicDesigns: number;
  customers?: number;
  technicians?: number;
}

/** Seeded people are found by these Auth0 ids, so a benchmark can sign tokens for them. */
export const seedTechnicianSub = (n: number) => `seed|tech${n}`;
export const seedCustomerSub = (n: number) => `seed|cust${n}`;

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('set statement_timeout = 0');
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function inTransaction(client: pg.Client, fn: () => Promise<void>) {
  await client.query('begin');
  try {
    await fn();
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}

/**
 * Seeds a migrated database: orders (each with its design, as the API creates them), spread over
 * customers and technicians, the newest `publicDesigns` of them in the gallery. Rows are made inside
 * PostgreSQL with generate_series, far faster than sending them. Calling it again with larger counts
 * grows the same data set (older orders are added), so one database serves the 10 000-row and the
 * 1 000 000-row measurements. Ends with VACUUM ANALYZE, as autovacuum would on a live database.
 */
export async function seed(url: string, counts: SeedCounts): Promise<{ orders: number; publicDesigns: number }> {
  const customers = counts.customers ?? 1000;
  const technicians = counts.technicians ?? 50;
  return withClient(url, async (client) => {
    await inTransaction(client, async () => {
      for (const [role, count, sub, label] of [
        ['nail_technician', technicians, 'tech', 'Technician'],
        ['customer', customers, 'cust', 'Customer'],
      ] as const) {
        await client.query(
          `insert into users (auth0_id, email, name, role, created_at)
           select 'seed|${sub}' || g, 'seed-${sub}' || g || '@example.com', '${label} ' || g, $2, now() - interval '400 days'
           from generate_series(1, $1::int) g
           on conflict (auth0_id) do nothing`,
          [count, role],
        );
      }
      await client.query(`create temporary table seed_people on commit drop as
        select array_agg(id order by email) filter (where role = 'customer') as cust,
               array_agg(id order by email) filter (where role = 'nail_technician') as tech
        from users where auth0_id like 'seed|%'`);
      const { rows } = await client.query<{ n: number; public: number }>(
        `select count(*)::int as n, count(*) filter (where d.is_public)::int as public
         from orders o join designs d on d.order_id = o.id where o.image_key like 'seed/%'`,
      );
      const from = rows[0]!.n + 1;
      if (from > counts.orders) return;
      // The new public designs are spread evenly over the new orders (every `stride`-th one), as shared
      // designs would be, not packed together at one end of the table.
      const added = counts.orders - from + 1;
      const publicToAdd = Math.max(0, Math.min(added, counts.publicDesigns - rows[0]!.public));
      const stride = publicToAdd ? Math.floor(added / publicToAdd) : 0;
      // Order g was created g seconds ago: every tenth is unassigned (and so still submitted, as the
      // schema demands), the others go to a technician picked by a hash of g; word lists make
      // descriptions varied enough for full-text search to be selective.
      await client.query(
        `with src as materialized (
           select g, gen_random_uuid() as id,
                  p.cust[1 + (g % array_length(p.cust, 1))] as customer_id,
                  case when g % 10 = 0 then null else p.tech[1 + abs(hashint4(g)) % array_length(p.tech, 1)] end as technician_id,
                  (array['pastel','chrome','glitter','matte','neon','ombre','marble','holographic','french','velvet'])[1 + g % 10] || ' ' ||
                  (array['daisies','stars','hearts','leopard','flames','swirls','cherries','butterflies','pearls','waves'])[1 + (g / 10) % 10] || ' ' ||
                  (array['almond','coffin','stiletto','square','oval'])[1 + (g / 100) % 5] || ' set number ' || g as description,
                  now() - (g || ' seconds')::interval as at,
                  $3::int > 0 and (g - $1) % $3 = 0 and (g - $1) / $3 < $4 as shared
           from generate_series($1::int, $2::int) g, seed_people p
         ), placed as (
           insert into orders (id, customer_id, technician_id, description, quantity, status, image_key, thumbnail_key,
                               currency, payment_status, created_at, updated_at, status_changed_at)
           select id, customer_id, technician_id, description, 1 + g % 5,
                  case when technician_id is null then 'submitted'
                       else (array['under_review','accepted','rejected','in_production','shipped','delivered'])[1 + (g / 10) % 6] end,
                  'seed/' || g || '.png', 'seed/' || g || '.thumb.webp', 'USD', 'unpaid', at, at, at
           from src
         )
         insert into designs (order_id, owner_id, description, is_public, published_at, created_at, updated_at, reuse_count, comment_count,
                              favourite_count, ordered_count, shape, length, tags)
         select id, customer_id, description, shared, case when shared then at end, at, at,
                case when shared then (g::bigint * 7919) % 50 else 0 end, case when shared then (g::bigint * 104729) % 30 else 0 end,
                case when shared then (g::bigint * 31337) % 40 else 0 end, case when shared then (g::bigint * 65537) % 25 else 0 end,
                (array['square','squoval','round','oval','almond','coffin','stiletto'])[1 + g % 7],
                (array['short','medium','long','extra_long'])[1 + (g / 7) % 4],
                -- Two tags from the description's words: each of the ten first words tags a tenth of all designs. The gallery
                -- takes every stride-th design, so at 1 000 000 rows (stride 5) two first words share it: a tag on half the gallery.
                array[(array['pastel','chrome','glitter','matte','neon','ombre','marble','holographic','french','velvet'])[1 + g % 10],
                      (array['daisies','stars','hearts','leopard','flames','swirls','cherries','butterflies','pearls','waves'])[1 + (g / 10) % 10]]
         from src`,
        [from, counts.orders, stride, publicToAdd],
      );
    });
    await client.query('vacuum analyze users, orders, designs, design_tags');
    const { rows } = await client.query<{ orders: number; public: number }>(
      `select (select count(*)::int from orders) as orders,
              (select count(*)::int from designs where is_public and removed_at is null) as public`,
    );
    return { orders: rows[0]!.orders, publicDesigns: rows[0]!.public };
  });
}

/**
 * Orders for the write benchmark: accepted and paid, assigned round-robin to the seeded technicians,
 * newer than everything else, so each can be moved to in_production exactly once.
 * Returns each order id with the Auth0 id of its technician.
 */
export async function seedAcceptedOrders(url: string, count: number): Promise<Array<{ id: string; sub: string }>> {
  return withClient(url, async (client) => {
    let out: Array<{ id: string; sub: string }> = [];
    await inTransaction(client, async () => {
      const { rows } = await client.query<{ id: string; sub: string }>(
        `with people as (
           select array_agg(id order by auth0_id) filter (where role = 'customer') as cust,
                  array_agg(id order by auth0_id) filter (where role = 'nail_technician') as tech,
                  array_agg(auth0_id order by auth0_id) filter (where role = 'nail_technician') as tech_sub
           from users where auth0_id like 'seed|%'
         ), src as materialized (
           select g, gen_random_uuid() as id, p.cust[1 + g % array_length(p.cust, 1)] as customer_id,
                  p.tech[1 + g % array_length(p.tech, 1)] as technician_id, p.tech_sub[1 + g % array_length(p.tech, 1)] as sub
           from generate_series(1, $1::int) g, people p
         ), placed as (
           insert into orders (id, customer_id, technician_id, description, quantity, status, image_key, thumbnail_key,
                               complexity_multiplier, unit_price_cents, total_price_cents, currency, payment_status,
                               created_at, updated_at, status_changed_at)
           select id, customer_id, technician_id, 'benchmark order ' || g, 1, 'accepted', 'work/' || id || '.png',
                  'work/' || id || '.thumb.webp', 1.5, 3750, 3750, 'USD', 'paid', now(), now(), now()
           from src
         ), designed as (
           insert into designs (order_id, owner_id, description) select id, customer_id, 'benchmark order ' || g from src
         )
         select id, sub from src order by g`,
        [count],
      );
      out = rows;
    });
    return out;
  });
}

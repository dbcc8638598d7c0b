import { ORDER_STATUSES } from '../../src/modules/orders/orders.domain.js';
import type { Database } from '../../src/db/client.js';
import { rows } from './store.js';

/**
 * What must hold in the database whatever traffic it saw (SPEC §3–§5): each check is a query that
 * returns the rows breaking it, so a failure names them. `storedKeys` lists the image store's objects.
 */
const CHECKS: Array<[string, string]> = [
  ['an order without exactly one design', `select o.id from orders o left join designs d on d.order_id = o.id group by o.id having count(d.id) <> 1`],
  [
    'a design whose reuse_count is not its number of uses',
    `select d.id, d.reuse_count, (select count(*) from design_usages u where u.design_id = d.id) as real from designs d
     where d.reuse_count <> (select count(*) from design_usages u where u.design_id = d.id)`,
  ],
  [
    'a design whose comment_count is not its number of shown comments (neither deleted nor hidden)',
    `select d.id, d.comment_count from designs d where d.comment_count <>
       (select count(*) from comments c where c.design_id = d.id and c.deleted_at is null and c.hidden_at is null)`,
  ],
  [
    'a design whose favourite_count is not its number of favourites',
    `select d.id, d.favourite_count from designs d
     where d.favourite_count <> (select count(*) from design_favourites f where f.design_id = d.id)`,
  ],
  [
    'a design whose shape or length is not its order’s',
    `select d.id from designs d join orders o on o.id = d.order_id where d.shape is distinct from o.shape or d.length is distinct from o.length`,
  ],
  [
    'an item hidden by three open reports that is shown',
    `select x.design_id, x.comment_id from
       (select design_id, comment_id from reports where status = 'open' group by design_id, comment_id having count(*) >= 3) x
       join designs d on d.id = x.design_id left join comments c on c.id = x.comment_id
     where case when x.comment_id is null then d.hidden_at is null and d.removed_at is null else c.hidden_at is null and c.deleted_at is null end`,
  ],
  [
    'design_tags out of step with the tags of gallery designs (the trigger of migration 0016)',
    `(select t, d.id from designs d, unnest(d.tags) t where d.is_public and d.removed_at is null and d.hidden_at is null
       except select tag, design_id from design_tags)
     union all
     (select tag, design_id from design_tags
       except select t, d.id from designs d, unnest(d.tags) t where d.is_public and d.removed_at is null and d.hidden_at is null)`,
  ],
  ['an order in an unknown status', `select id, status from orders where status not in (${ORDER_STATUSES.map((s) => `'${s}'`).join(', ')})`],
  [
    'an order whose first event is not its submission',
    `select o.id from orders o where (select e.to_status || ':' || coalesce(e.from_status, '') from order_events e
       where e.order_id = o.id order by e.created_at, e.id limit 1) is distinct from 'submitted:'`,
  ],
  [
    'an order whose status is not where its last event led',
    `select o.id, o.status from orders o where o.status is distinct from
       (select e.to_status from order_events e where e.order_id = o.id order by e.created_at desc, e.id desc limit 1)`,
  ],
  ['an order with a technician exactly when it is submitted', `select id from orders where (status = 'submitted') = (technician_id is not null)`],
  [
    'an order whose revision_count is not its number of kept versions',
    `select o.id from orders o where o.revision_count <> (select count(*) from order_revisions r where r.order_id = o.id)`,
  ],
  [
    'a priced order whose total is not unit price × quantity, or an unpriced one past review',
    `select id from orders where (status in ('accepted', 'in_production', 'shipped', 'delivered')) <> (unit_price_cents is not null)
       or total_price_cents is distinct from unit_price_cents * quantity`,
  ],
  ['an order in production or later that is not paid', `select id from orders where status in ('in_production', 'shipped', 'delivered') and payment_status <> 'paid'`],
  [
    'a message from someone other than the customer or the assigned technician',
    `select m.id from messages m join orders o on o.id = m.order_id where m.sender_id <> o.customer_id and m.sender_id is distinct from o.technician_id`,
  ],
  ['a design use recorded for the design owner', `select u.id from design_usages u join designs d on d.id = u.design_id where u.user_id = d.owner_id`],
  ['an idempotency key stuck in progress', `select id, key from idempotency_keys where state = 'in_progress'`],
];

export async function invariantViolations(db: Database, storedKeys?: () => Promise<string[]>): Promise<string[]> {
  const problems: string[] = [];
  for (const [what, query] of CHECKS) {
    const found = await rows<Record<string, unknown>>(db, query);
    if (found.length) problems.push(`${what}: ${JSON.stringify(found.slice(0, 5))}${found.length > 5 ? ` (+${found.length - 5} more)` : ''}`);
  }
  if (storedKeys) {
    const referenced = await rows<{ key: string }>(
      db,
      `select image_key as key from orders union all select thumbnail_key from orders
       union all select image_key from order_revisions union all select thumbnail_key from order_revisions`,
    );
    const stored = new Set(await storedKeys());
    const wanted = new Set(referenced.map((r) => r.key));
    const missing = [...wanted].filter((k) => !stored.has(k));
    const stray = [...stored].filter((k) => !wanted.has(k));
    if (missing.length) problems.push(`image objects missing from the store: ${missing.slice(0, 5).join(', ')} (${missing.length})`);
    if (stray.length) problems.push(`objects in the store that no order references: ${stray.slice(0, 5).join(', ')} (${stray.length})`);
  }
  return problems;
}

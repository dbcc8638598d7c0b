// The physical limit for the API's database-backed routes: node:http + pg, no framework, no auth
// (the caller names itself in x-user-id), the same SQL statements the API needs for each answer and
// the same JSON out, image links presigned per item with a minimal SigV4 implementation.
import { createHash, createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import pg from 'pg';

// A calendar date (ship_by) stays the text PostgreSQL sends, as drizzle's `mode: 'string'` keeps it.
pg.types.setTypeParser(pg.types.builtins.DATE, (text) => text);
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DB_POOL_MAX ?? 10) });

// ---- presigned GET links, as the S3 SDK writes them (path style, UNSIGNED-PAYLOAD, 1 hour) ----
const endpoint = new URL(process.env.S3_ENDPOINT);
const bucket = process.env.S3_BUCKET_NAME;
const region = process.env.AWS_REGION ?? 'us-east-1';
const accessKey = process.env.AWS_ACCESS_KEY_ID;
const secret = process.env.AWS_SECRET_ACCESS_KEY;
const hmac = (key, data) => createHmac('sha256', key).update(data).digest();
const encode = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
let signingDay = '';
let signingKey;
// Every link signed afresh per request; the API hands out one link per object per five-minute window,
// signed as of the window start for 3600 + 300 s (src/storage/s3.ts), hence the same X-Amz-Expires.
function presign(key) {
  const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  if (day !== signingDay) {
    signingKey = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), 's3'), 'aws4_request');
    signingDay = day;
  }
  const scope = `${day}/${region}/s3/aws4_request`;
  const path = `/${bucket}/${key.split('/').map(encode).join('/')}`;
  const query =
    `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD&X-Amz-Credential=${encode(`${accessKey}/${scope}`)}` +
    `&X-Amz-Date=${amzDate}&X-Amz-Expires=3900&X-Amz-SignedHeaders=host&x-id=GetObject`;
  const request = `GET\n${path}\n${query}\nhost:${endpoint.host}\n\nhost\nUNSIGNED-PAYLOAD`;
  const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(request).digest('hex')}`;
  const signature = createHmac('sha256', signingKey).update(toSign).digest('hex');
  const [before, after] = [query.slice(0, query.indexOf('&X-Amz-SignedHeaders')), query.slice(query.indexOf('&X-Amz-SignedHeaders'))];
  return `${endpoint.origin}${path}?${before}&X-Amz-Signature=${signature}${after}`;
}

// ---- the SQL: the API's statements as its query log shows them (BENCH_PG_LOG_STATEMENTS=1) ----
const inGallery = `("designs"."is_public" = $1 and "designs"."removed_at" is null and "designs"."hidden_at" is null)`;
const galleryOrder = `order by "designs"."published_at" desc, "designs"."id" desc`;
const orderColumns = `"orders"."id", "orders"."customer_id", "orders"."technician_id", "orders"."description", "orders"."quantity", "orders"."shape",
  "orders"."length", "orders"."nail_sizes", "orders"."status", "orders"."image_key", "orders"."thumbnail_key", "orders"."complexity_multiplier",
  "orders"."unit_price_cents", "orders"."total_price_cents", "orders"."currency", "orders"."payment_status", "orders"."payment_method",
  "orders"."payment_reference", "orders"."paid_at", "orders"."feedback", "orders"."revision_count", "orders"."carrier", "orders"."tracking_number",
  "orders"."original_order_id", "orders"."source_design_id", "orders"."ship_by", "orders"."status_changed_at", "orders"."created_at",
  "orders"."updated_at", "customer"."name" as customer_name, "technician"."name" as technician_name, "designs"."id" as design_id`;
const orderJoins = `from "orders" inner join "users" "customer" on "customer"."id" = "orders"."customer_id"
  left join "users" "technician" on "technician"."id" = "orders"."technician_id" left join "designs" on "designs"."order_id" = "orders"."id"`;
const techOrders = (columns, limit) => `(select ${columns} from "orders" where "orders"."technician_id" = $1 order by "orders"."created_at" desc, "orders"."id" desc limit ${limit[0]})
  union all (select ${columns} from "orders" where "orders"."technician_id" is null order by "orders"."created_at" desc, "orders"."id" desc limit ${limit[1]})`;
const moved = (set, n, where = '') => `with "moved" as (update "orders" set "status" = $1, ${set} where ("orders"."id" = $${n} and "orders"."technician_id" = $${n + 1}
  and "orders"."customer_id" <> $${n + 2} and "orders"."status" = $${n + 3}${where}) returning "id")`;
const eventInsert = (n) => `insert into "order_events" ("id", "order_id", "actor_id", "from_status", "to_status", "note", "kind", "changes", "created_at", "updated_at")
  select gen_random_uuid() as "id", "id", $${n}::uuid as "actor_id", $${n + 1}::text as "from_status", $${n + 2}::text as "to_status", $${n + 3}::text as "note",
  $${n + 4}::text as "kind", $${n + 5}::jsonb as "changes", clock_timestamp() as "created_at", now() as "updated_at" from "moved"
  returning "id", "order_id", "actor_id", "note", "created_at"`;
// MINIMAL_OUTBOX=1 (figures 3c, 3d): the move's outbox row written by the same statement, as the API's transition writes it.
const told = (n) =>
  process.env.MINIMAL_OUTBOX === '1'
    ? `, "told" as (insert into "outbox_events" ("type", "actor_id", "order_id", "data") select $${n}::text, $${n + 1}::uuid, "moved"."id", $${n + 2}::jsonb from "moved" returning "id")`
    : '';
// The caller's unread thread items, as src/modules/threads/threads.repository.ts unreadCount writes them (`viewer`: its parameter).
const unread = (viewer) => `(select ((select count(*) from order_events ue where ue.order_id = "orders"."id" and ue.created_at > m.at and ue.actor_id is distinct from ${viewer}::uuid)
      + case when "orders"."customer_id" = ${viewer}::uuid or "orders"."technician_id" = ${viewer}::uuid
        then (select count(*) from messages um where um.order_id = "orders"."id" and um.created_at > m.at and um.sender_id <> ${viewer}::uuid) else 0 end)::int
    from (select coalesce(max(tr.read_at), '-infinity'::timestamptz) as at from thread_reads tr where tr.order_id = "orders"."id" and tr.user_id = ${viewer}::uuid) m) as unread_count`;
const SQL = {
  galleryPage: `select "designs"."id", "designs"."order_id", "designs"."owner_id", "designs"."description", "designs"."is_public", "designs"."published_at",
      "designs"."removed_at", "designs"."hidden_at", "designs"."reuse_count", "designs"."comment_count", "designs"."favourite_count", "designs"."ordered_count",
      "designs"."ancestor_ids", "designs"."shape", "designs"."length", "designs"."tags", "designs"."created_at", "users"."name" as owner_name,
      (select json_build_object('average', avg(r.stars), 'count', count(*)) from "order_ratings" r where r.order_id = "designs"."order_id"
        or r.order_id in (select dd.order_id from "designs" dd where dd.ancestor_ids @> array["designs"."id"])) as rating,
      "orders"."image_key", "orders"."thumbnail_key"
    from "designs" inner join "users" on "users"."id" = "designs"."owner_id" inner join "orders" on "orders"."id" = "designs"."order_id"
    inner join (select "id" from "designs" where ${inGallery} ${galleryOrder} limit $2 offset $3) "page" on "page"."id" = "designs"."id" ${galleryOrder}`,
  galleryCount: `select count(*)::int as n from (((select 1 from "designs" where ${inGallery} ${galleryOrder} limit $2))) as bounded`,
  galleryEstimate: `explain (format json) ((select 1 from "designs" where ${inGallery}))`,
  ordersPage: `select ${orderColumns}, ${unread('$1')} ${orderJoins}
    inner join (${techOrders('"id", "created_at" as "sort_key"', ['$2', '$3'])} order by "sort_key" desc, "id" desc limit $4 offset $5) "page" on "page"."id" = "orders"."id"
    order by "orders"."created_at" desc, "orders"."id" desc`,
  ordersCount: `select count(*)::int as n from (${techOrders('1', ['$2', '$3'])}) as bounded`,
  ordersEstimate: `explain (format json) ((select 1 from "orders" where "orders"."technician_id" = $1)) union all ((select 1 from "orders" where "orders"."technician_id" is null))`,
  // Each step is one statement, the conditional update feeding the event insert: production needs payment; shipping sets carrier and tracking.
  advance: {
    in_production: `${moved('"status_changed_at" = $2::timestamptz, "updated_at" = $3::timestamptz', 4, ' and "orders"."payment_status" = $8')}${told(15)} ${eventInsert(9)}`,
    shipped: `${moved('"carrier" = $2, "tracking_number" = $3, "status_changed_at" = $4::timestamptz, "updated_at" = $5::timestamptz', 6)}${told(16)} ${eventInsert(10)}`,
    delivered: `${moved('"status_changed_at" = $2::timestamptz, "updated_at" = $3::timestamptz', 4)}${told(14)} ${eventInsert(8)}`,
  },

  // An order with its timeline and revisions in one round trip, as the API reads every write's answer.
  orderDetail: `select ${orderColumns}, ${unread('$3')},
      (select coalesce(json_agg(json_build_object('fromStatus', e.from_status, 'toStatus', e.to_status, 'actorId', e.actor_id, 'actorName', u.name,
        'note', e.note, 'createdAt', e.created_at) order by e.created_at, e.id), '[]'::json)
        from "order_events" e left join "users" u on u.id = e.actor_id where e.order_id = "orders"."id") as "events",
      (select coalesce(json_agg(json_build_object('revision', r.revision, 'description', r.description, 'imageKey', r.image_key,
        'thumbnailKey', r.thumbnail_key, 'feedback', r.feedback, 'createdAt', r.created_at) order by r.revision), '[]'::json)
        from "order_revisions" r where r.order_id = "orders"."id") as "revisions"
    ${orderJoins} where "orders"."id" = $1 limit $2`,
  // The API knows the sender's name from its cached profile; without auth the baseline reads it here.
  message: `insert into "messages" ("id", "order_id", "sender_id", "text", "created_at", "updated_at")
    select gen_random_uuid() as "id", "id", $1::uuid as "sender_id", $2::text as "text", now() as "created_at", now() as "updated_at"
    from "orders" where ("orders"."id" = $3 and "orders"."technician_id" = $4)
    returning "id", "order_id", "sender_id", "text", "created_at", "updated_at", (select name from users where id = $1) as sender_name`,
  // MINIMAL_OUTBOX=1 (figure 3c): the same insert writing the message's outbox row in the same statement, as the API does.
  messageTold: `with "message" as (insert into "messages" ("id", "order_id", "sender_id", "text", "created_at", "updated_at")
    select gen_random_uuid() as "id", "id", $1::uuid as "sender_id", $2::text as "text", now() as "created_at", now() as "updated_at"
    from "orders" where ("orders"."id" = $3 and "orders"."technician_id" = $4)
    returning "id", "order_id", "sender_id", "text", "created_at", "updated_at"),
    "sender" as (select name from users where id = $1),
    "told" as (insert into "outbox_events" ("type", "actor_id", "order_id", "data")
      select 'message.created', "message"."sender_id", "message"."order_id",
        jsonb_build_object('sender_name', (select name from "sender"), 'text', "message"."text", 'message_id', "message"."id") from "message")
    select "message".*, (select name from "sender") as sender_name from "message"`,
};

// ---- rendering, field for field as the API ----
const iso = (d) => (d === null ? null : d.toISOString());
const isoText = (text) => new Date(text).toISOString();
const pageInfo = (page, limit, total) => {
  const totalPages = Math.ceil(total / limit);
  return { page, limit, total, totalPages, hasNext: page < totalPages, hasPrev: page > 1 };
};
const design = (r) => ({
  id: r.id,
  order_id: r.order_id,
  owner: { id: r.owner_id, name: r.owner_name },
  description: r.description,
  is_public: r.is_public,
  image_url: presign(r.image_key),
  thumbnail_url: presign(r.thumbnail_key),
  reuse_count: r.reuse_count,
  comment_count: r.comment_count,
  favourite_count: r.favourite_count,
  ordered_count: r.ordered_count,
  root_design_id: r.ancestor_ids[0] ?? null,
  parent_design_id: r.ancestor_ids.at(-1) ?? null,
  shape: r.shape,
  length: r.length,
  tags: r.tags,
  rating_average: r.rating.average === null ? null : Math.round(Number(r.rating.average) * 100) / 100,
  rating_count: Number(r.rating.count),
  published_at: iso(r.published_at),
  created_at: iso(r.created_at),
});
const UNSHIPPED = ['accepted', 'in_production'];
const order = (r) => ({
  id: r.id,
  status: r.status,
  description: r.description,
  quantity: r.quantity,
  shape: r.shape,
  length: r.length,
  nail_sizes: r.nail_sizes,
  customer_id: r.customer_id,
  customer: { id: r.customer_id, name: r.customer_name },
  technician_id: r.technician_id,
  technician: r.technician_id ? { id: r.technician_id, name: r.technician_name ?? '' } : null,
  design_id: r.design_id,
  image_url: presign(r.image_key),
  thumbnail_url: presign(r.thumbnail_key),
  complexity_multiplier: r.complexity_multiplier === null ? null : Number(r.complexity_multiplier),
  unit_price_cents: r.unit_price_cents,
  total_price_cents: r.total_price_cents,
  currency: r.currency,
  payment_status: r.payment_status,
  payment_method: r.payment_method,
  payment_reference: r.payment_reference,
  paid_at: iso(r.paid_at),
  feedback: r.feedback,
  revision_count: r.revision_count,
  carrier: r.carrier,
  tracking_number: r.tracking_number,
  ship_by: r.ship_by,
  overdue: r.ship_by !== null && r.ship_by < new Date().toISOString().slice(0, 10) && UNSHIPPED.includes(r.status),
  original_order_id: r.original_order_id,
  source_design_id: r.source_design_id,
  status_changed_at: iso(r.status_changed_at),
  created_at: iso(r.created_at),
  updated_at: iso(r.updated_at),
  // Last, as the API's schema lists it (the thread module adds it to the orders' list item).
  unread_count: r.unread_count,
});

// ---- routes ----
// The API's list totals: counted up to 1 000 rows past the page, the planner's estimate beyond.
async function total(countSql, estimateSql, params, cap, branches = 1) {
  const counted = (await pool.query(countSql, [...params, ...Array(branches).fill(cap)])).rows[0].n;
  if (counted < cap) return counted;
  const plan = (await pool.query(estimateSql, params)).rows[0]['QUERY PLAN'];
  return Math.max(cap, Math.round(plan[0].Plan['Plan Rows']));
}

function paging(url) {
  const page = Number(url.searchParams.get('page') ?? 1);
  const limit = Number(url.searchParams.get('limit') ?? 20);
  return { page, limit, offset: (page - 1) * limit, cap: page * limit + 1000 };
}

async function gallery(url) {
  const { page, limit, offset, cap } = paging(url);
  const [rows, count] = await Promise.all([
    pool.query(SQL.galleryPage, [true, limit, offset]),
    total(SQL.galleryCount, SQL.galleryEstimate, [true], cap),
  ]);
  return [200, { success: true, data: rows.rows.map(design), pagination: pageInfo(page, limit, count) }];
}

async function orders(url, userId) {
  const { page, limit, offset, cap } = paging(url);
  const [rows, count] = await Promise.all([
    pool.query(SQL.ordersPage, [userId, offset + limit, offset + limit, limit, offset]),
    total(SQL.ordersCount, SQL.ordersEstimate, [userId], cap, 2),
  ]);
  return [200, { success: true, data: rows.rows.map(order), pagination: pageInfo(page, limit, count) }];
}

async function detail(id, viewerId) {
  const { rows } = await pool.query(SQL.orderDetail, [id, 1, viewerId]);
  const o = rows[0];
  return {
    ...order(o),
    events: o.events.map((e) => ({
      from_status: e.fromStatus,
      to_status: e.toStatus,
      actor: e.actorId ? { id: e.actorId, name: e.actorName ?? '' } : null,
      note: e.note,
      created_at: isoText(e.createdAt),
    })),
    revisions: o.revisions.map((r) => ({
      revision: r.revision,
      description: r.description,
      image_url: presign(r.imageKey),
      thumbnail_url: presign(r.thumbnailKey),
      feedback: r.feedback,
      created_at: isoText(r.createdAt),
    })),
  };
}

const FROM = { in_production: 'accepted', shipped: 'in_production', delivered: 'shipped' };

const KIND = { in_production: 'start_production', shipped: 'ship', delivered: 'deliver' };

async function advance(id, userId, to) {
  const now = new Date();
  const from = FROM[to];
  const event = [userId, from, to, null, KIND[to]];
  const values = {
    in_production: [to, now, now, id, userId, userId, from, 'paid', ...event, '{}'],
    shipped: [to, null, null, now, now, id, userId, userId, from, ...event, '{"carrier":null,"tracking_number":null}'],
    delivered: [to, now, now, id, userId, userId, from, ...event, '{}'],
  }[to];
  const toldType = { in_production: 'order.in_production', shipped: 'order.shipped', delivered: 'order.delivered' }[to];
  const toldData = JSON.stringify({ move: KIND[to], from_status: from, to_status: to, ...JSON.parse(values.at(-1)) });
  const moved = await pool.query(SQL.advance[to], process.env.MINIMAL_OUTBOX === '1' ? [...values, toldType, userId, toldData] : values);
  if (moved.rowCount !== 1) return [422, { success: false, error: { code: 'INVALID_STATE', message: 'not accepted and paid' } }];
  return [200, { success: true, data: await detail(id, userId) }];
}

async function postMessage(id, userId, text) {
  const { rows } = await pool.query(process.env.MINIMAL_OUTBOX === '1' ? SQL.messageTold : SQL.message, [userId, text.trim(), id, userId]);
  if (!rows[0]) return [404, { success: false, error: { code: 'ORDER_NOT_FOUND', message: 'no such order' } }];
  const m = rows[0];
  return [201, { success: true, data: { id: m.id, order_id: m.order_id, sender: { id: m.sender_id, name: m.sender_name }, text: m.text, created_at: iso(m.created_at) } }];
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function route(req) {
  const url = new URL(req.url, 'http://x');
  const userId = req.headers['x-user-id'];
  const parts = url.pathname.split('/');
  if (req.method === 'GET' && url.pathname === '/api/v1/designs') return gallery(url);
  if (req.method === 'GET' && url.pathname === '/api/v1/orders') return orders(url, userId);
  if (req.method === 'PUT' && parts[4] && parts[5] === 'status') return advance(parts[4], userId, (await readJson(req)).status);
  if (req.method === 'POST' && parts[4] && parts[5] === 'messages') return postMessage(parts[4], userId, (await readJson(req)).text);
  return [404, { success: false, error: { code: 'NOT_FOUND', message: 'no such route' } }];
}

const server = createServer((req, res) => {
  route(req).then(
    ([status, body]) => {
      const json = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
      res.end(json);
    },
    (err) => {
      console.error(err);
      res.writeHead(500).end();
    },
  );
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.on('SIGTERM', () => server.close(() => pool.end().then(() => process.exit(0))));

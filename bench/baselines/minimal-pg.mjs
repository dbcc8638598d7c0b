// The physical limit for the API's database-backed routes: node:http + pg, no framework, no auth
// (the caller names itself in x-user-id), the same SQL statements the API needs for each answer and
// the same JSON out, image links presigned per item with a minimal SigV4 implementation.
import { createHash, createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import pg from 'pg';

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

// ---- the SQL ----
// The caller's unread thread items, as src/modules/threads/threads.repository.ts unreadCount writes them (`viewer`: the parameter).
const unread = (viewer) => `(select ((select count(*) from order_events ue where ue.order_id = o."id" and ue.created_at > m.at and ue.actor_id is distinct from ${viewer}::uuid)
      + case when o."customer_id" = ${viewer}::uuid or o."technician_id" = ${viewer}::uuid
        then (select count(*) from messages um where um.order_id = o."id" and um.created_at > m.at and um.sender_id <> ${viewer}::uuid) else 0 end)::int
    from (select coalesce(max(tr.read_at), '-infinity'::timestamptz) as at from thread_reads tr where tr.order_id = o."id" and tr.user_id = ${viewer}::uuid) m) as unread_count`;

const SQL = {
  galleryPage: `select d.id, d.order_id, d.owner_id, d.description, d.is_public, d.published_at, d.reuse_count, d.comment_count, d.created_at,
      u.name as owner_name, o.image_key, o.thumbnail_key
    from designs d join users u on u.id = d.owner_id join orders o on o.id = d.order_id
    join (select id from designs where is_public = $1 and removed_at is null order by published_at desc, id desc limit $2 offset $3) page on page.id = d.id
    order by d.published_at desc, d.id desc`,
  galleryCount: `select count(*)::int as n from ((select 1 from designs where is_public = $1 and removed_at is null
    order by published_at desc, id desc limit $2)) as bounded`,
  galleryEstimate: `explain (format json) (select 1 from designs where is_public = $1 and removed_at is null)`,
  ordersPage: `select o.*, c.name as customer_name, t.name as technician_name, d.id as design_id, ${unread('$1')}
    from orders o join users c on c.id = o.customer_id left join users t on t.id = o.technician_id left join designs d on d.order_id = o.id
    join ((select id, created_at as sort_key from orders where technician_id = $1 order by created_at desc, id desc limit $2)
          union all (select id, created_at as sort_key from orders where technician_id is null order by created_at desc, id desc limit $2)
          order by sort_key desc, id desc limit $3 offset $4) page on page.id = o.id
    order by o.created_at desc, o.id desc`,
  ordersCount: `select count(*)::int as n from ((select 1 from orders where technician_id = $1 order by created_at desc, id desc limit $2)
    union all (select 1 from orders where technician_id is null order by created_at desc, id desc limit $2)) as bounded`,
  ordersEstimate: `explain (format json) (select 1 from orders where technician_id = $1) union all (select 1 from orders where technician_id is null)`,
  // The API's statements for each step: production needs payment; shipping sets carrier and tracking.
  advance: {
    in_production: `update orders set status = $1, status_changed_at = $2, updated_at = $3
      where id = $4 and status = $5 and technician_id = $6 and payment_status = 'paid' returning id`,
    shipped: `update orders set status = $1, status_changed_at = $2, carrier = null, tracking_number = null, updated_at = $3
      where id = $4 and status = $5 and technician_id = $6 returning id`,
    delivered: `update orders set status = $1, status_changed_at = $2, updated_at = $3
      where id = $4 and status = $5 and technician_id = $6 returning id`,
  },
  event: `insert into order_events (order_id, actor_id, from_status, to_status, note, created_at) values ($1, $2, $3, $4, $5, clock_timestamp())`,
  orderDetail: `select o.*, c.name as customer_name, t.name as technician_name, d.id as design_id, ${unread('$2')}
    from orders o join users c on c.id = o.customer_id left join users t on t.id = o.technician_id left join designs d on d.order_id = o.id
    where o.id = $1 limit 1`,
  events: `select e.*, u.name as actor_name from order_events e left join users u on u.id = e.actor_id where e.order_id = $1 order by e.created_at, e.id`,
  revisions: `select * from order_revisions where order_id = $1 order by revision`,
  message: `insert into messages (order_id, sender_id, text) select o.id, $2, $3 from orders o
    where o.id = $1 and (o.customer_id = $2 or o.technician_id = $2)
    returning id, order_id, sender_id, text, created_at, (select name from users where id = $2) as sender_name`,
};

// ---- rendering, field for field as the API ----
const iso = (d) => (d === null ? null : d.toISOString());
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
  published_at: iso(r.published_at),
  created_at: iso(r.created_at),
});
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
  feedback: r.feedback,
  revision_count: r.revision_count,
  carrier: r.carrier,
  tracking_number: r.tracking_number,
  original_order_id: r.original_order_id,
  source_design_id: r.source_design_id,
  status_changed_at: iso(r.status_changed_at),
  created_at: iso(r.created_at),
  updated_at: iso(r.updated_at),
  unread_count: r.unread_count,
});

// ---- routes ----
// The API's list totals: counted up to 1 000 rows past the page, the planner's estimate beyond.
async function total(countSql, estimateSql, params, cap) {
  const counted = (await pool.query(countSql, [...params, cap])).rows[0].n;
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
    pool.query(SQL.ordersPage, [userId, offset + limit, limit, offset]),
    total(SQL.ordersCount, SQL.ordersEstimate, [userId], cap),
  ]);
  return [200, { success: true, data: rows.rows.map(order), pagination: pageInfo(page, limit, count) }];
}

async function detail(id, viewer) {
  const [o, events, revisions] = await Promise.all([pool.query(SQL.orderDetail, [id, viewer]), pool.query(SQL.events, [id]), pool.query(SQL.revisions, [id])]);
  return {
    ...order(o.rows[0]),
    events: events.rows.map((e) => ({
      from_status: e.from_status,
      to_status: e.to_status,
      actor: e.actor_id ? { id: e.actor_id, name: e.actor_name ?? '' } : null,
      note: e.note,
      created_at: iso(e.created_at),
    })),
    revisions: revisions.rows.map((r) => ({
      revision: r.revision,
      description: r.description,
      image_url: presign(r.image_key),
      thumbnail_url: presign(r.thumbnail_key),
      feedback: r.feedback,
      created_at: iso(r.created_at),
    })),
  };
}

const FROM = { in_production: 'accepted', shipped: 'in_production', delivered: 'shipped' };

async function advance(id, userId, to) {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const now = new Date();
    const moved = await client.query(SQL.advance[to], [to, now, now, id, FROM[to], userId]);
    if (moved.rowCount !== 1) {
      await client.query('rollback');
      return [422, { success: false, error: { code: 'INVALID_STATE', message: 'not accepted and paid' } }];
    }
    await client.query(SQL.event, [id, userId, FROM[to], to, null]);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  return [200, { success: true, data: await detail(id, userId) }];
}

async function postMessage(id, userId, text) {
  const { rows } = await pool.query(SQL.message, [id, userId, text.trim()]);
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

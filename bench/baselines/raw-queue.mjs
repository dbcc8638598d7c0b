// Figure 8b's baseline: pg-boss on its own, on the API's database and through the same kind of pool the
// worker uses (src/modules/notifications/queue.ts: pg.Pool of DB_POOL_MAX, polling, no LISTEN/NOTIFY). It
// inserts JOBS jobs into a queue made with the worker's queue options (ensureQueues), then works them with
// an empty handler and the worker's work() options (notifications.worker.ts: batchSize, pollingIntervalSeconds,
// includeMetadata, perJobResults), and prints {"jobs", "seconds", "jobsPerSecond"} as one JSON line once every
// job is completed in the database. BURST=1 adds pg-boss's burstWhenBatchFull (fetch again at once after a full
// batch), which the worker does not set: what the queue itself can do, for figure 8i.
import { PgBoss } from 'pg-boss';
import pg from 'pg';

const JOBS = Number(process.env.JOBS ?? 1000);
const BATCH_SIZE = Number(process.env.WORKER_BATCH_SIZE ?? 20);
const POLL_S = Number(process.env.WORKER_POLL_INTERVAL_MS ?? 1000) / 1000;
const BURST = process.env.BURST === '1';
const QUEUE = `bench-raw-${process.pid}`;

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DB_POOL_MAX ?? 10) });
const db = {
  async executeSql(text, values) {
    const result = await pool.query(text, values?.length ? values : undefined);
    if (Array.isArray(result)) return { rows: result.flatMap((r) => r.rows ?? []) };
    return result;
  },
};
const boss = new PgBoss({ db, backend: 'postgres', schema: 'pgboss', supervise: false, schedule: false, registerInstance: false, useListenNotify: false });
boss.on('error', (err) => console.error(err.message));
await boss.start();
await boss.createQueue(QUEUE, { retryLimit: 8, retryDelay: 5, retryBackoff: true, retryDelayMax: 3600, expireInSeconds: 120 });
for (let i = 0; i < JOBS; i += 1000) {
  await boss.insert(QUEUE, Array.from({ length: Math.min(1000, JOBS - i) }, (_, k) => ({ data: { n: i + k } })));
}

const open = async () => Number((await pool.query(`select count(*)::int as n from pgboss.job where name = $1 and state < 'completed'`, [QUEUE])).rows[0].n);
let worked = 0;
const started = performance.now();
await boss.work(
  QUEUE,
  { batchSize: BATCH_SIZE, pollingIntervalSeconds: POLL_S, includeMetadata: true, perJobResults: true, ...(BURST ? { burstWhenBatchFull: true } : {}) },
  async (jobs) => {
    worked += jobs.length;
    return jobs.map((job) => ({ id: job.id, status: 'completed' }));
  },
);
while (worked < JOBS || (await open()) > 0) await new Promise((resolve) => setTimeout(resolve, 20));
const seconds = (performance.now() - started) / 1000;
await boss.offWork(QUEUE, { wait: true });
await boss.deleteQueue(QUEUE);
await boss.stop({ close: false, graceful: false });
await pool.end();
console.log(JSON.stringify({ jobs: JOBS, seconds, jobsPerSecond: JOBS / seconds, batchSize: BATCH_SIZE, pollIntervalS: POLL_S, burst: BURST }));

// Figure 8 (issue 16, "Measured"): status changes through the API → emails accepted by a real SMTP server and
// webhooks delivered to a local receiver, through the built worker process (`node dist/worker.js`, as the
// Procfile's `worker` dyno runs it); and pg-boss's own throughput on the same database beside it. See
// bench/README.md, "Figure 8".
import { readFileSync } from 'node:fs';
import { Agent, type IncomingMessage, type Server, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer } from 'smtp-server';
import { load } from './lib/load.js';
import { type Child, announced, cpuSeconds, startNode, treeCpuSeconds } from './lib/processes.js';
import { query } from './lib/postgres.js';
import type { Figure } from './lib/report.js';
import { seedAcceptedOrders } from './seed.js';

export interface NotificationBench {
  root: string;
  dbUrl: string;
  /** The postmaster, whose children are the backends (the worker's database CPU). */
  dbServerPid?: number;
  /** The API's environment (database, storage, issuer): the worker gets the same. */
  env: Record<string, string>;
  quick: boolean;
  log: (line: string) => void;
  startApi: (extra?: Record<string, string>) => Promise<{ child: Child; url: string }>;
  techs: Array<{ sub: string; id: string; auth: Record<string, string> }>;
  cleanups: Array<() => Promise<void>>;
}

/** Status changes in all (the issue's 10 000); the burst takes what the steady phase leaves. */
const CHANGES = { full: 10_000, quick: 1_000 };
/** Changes sent at a steady rate (half the burst's measured worker throughput) for figure 8a's latency. */
const STEADY = { full: 1_500, quick: 300 };
/** Jobs of the raw queue run with the worker's settings (enough batches to time), and of the burst one. */
// The worker fetches again at once after a full batch (burstWhenBatchFull), so the raw queue does too: thousands of jobs.
const RAW_JOBS = { full: 10_000, quick: 2_000 };
/** Waiting for deliveries ends when nothing new arrived for this long, or after the cap. */
const STALL_MS = 60_000;
const MAX_WAIT_MS = 20 * 60_000;
const MAIL_FROM = "Kendall's Nails <notifications@bench.example>";
const NEXT = { in_production: 'shipped', shipped: 'delivered', delivered: undefined } as const;
type Step = { id: string; sub: string; to: keyof typeof NEXT };

interface Arrival {
  at: number;
  key: string;
  eventId: string;
}

/** The Procfile's `worker:` line: variables set before `node`, and the script's Node.js flags. */
function workerProcess(root: string): { env: Record<string, string>; nodeFlags: string[] } {
  const procfile = readFileSync(path.join(root, 'Procfile'), 'utf8');
  const line = /^worker:\s*((?:\w+=\S+\s+)*)node\s+((?:--\S+\s+)*)dist\/worker\.js/m.exec(procfile);
  if (!line) throw new Error('Procfile: expected `worker: [NAME=value …] node [--flag …] dist/worker.js`');
  const words = (s: string | undefined) => (s ?? '').trim().split(/\s+/).filter(Boolean);
  return { env: Object.fromEntries(words(line[1]).map((pair) => pair.split('=', 2) as [string, string])), nodeFlags: words(line[2]) };
}

/** A real SMTP server (smtp-server, no TLS, no auth) that records when it accepted each message, by Message-ID and event. */
async function startSmtp(): Promise<{ port: number; arrivals: Arrival[]; stop(): Promise<void> }> {
  const arrivals: Arrival[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        // Accepted now: the moment the worker's sendMail resolves is when this answers 250.
        const at = Date.now();
        const raw = Buffer.concat(chunks).toString('latin1');
        const end = raw.indexOf('\r\n\r\n');
        // Unfolded: nodemailer folds a header line past 76 characters (X-Kendalls-Event of order.in_production is 77).
        const head = (end < 0 ? raw : raw.slice(0, end)).replace(/\r\n[ \t]+/g, ' ');
        const key = /^Message-ID:\s*(<[^>]+>)/im.exec(head)?.[1] ?? '';
        const eventId = /^X-Kendalls-Event:[^\r\n]*id=([0-9a-f-]{36})/im.exec(head)?.[1] ?? '';
        arrivals.push({ at, key, eventId });
        cb();
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.server.address() as AddressInfo).port,
    arrivals,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A webhook receiver that answers 200 to everything and records each `webhook-id` with its arrival time. */
async function startReceiver(): Promise<{ url: string; arrivals: Arrival[]; stop(): Promise<void> }> {
  const arrivals: Arrival[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    req.resume();
    req.on('end', () => {
      const id = String(req.headers['webhook-id'] ?? '');
      arrivals.push({ at: Date.now(), key: id, eventId: id });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrivals,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)]! : NaN);
const round = (n: number, digits = 1) => Number(n.toFixed(digits));

/** Waits until `done()`, or until no new arrival for STALL_MS, or MAX_WAIT_MS in all; returns whether it got there. */
async function drain(done: () => boolean, progress: () => number, log: (line: string) => void, what: string): Promise<boolean> {
  const started = Date.now();
  let last = progress();
  let lastChange = Date.now();
  let lastLog = Date.now();
  while (!done()) {
    if (Date.now() - lastChange > STALL_MS || Date.now() - started > MAX_WAIT_MS) return false;
    await sleep(50);
    const now = progress();
    if (now !== last) {
      last = now;
      lastChange = Date.now();
    }
    if (Date.now() - lastLog > 15_000) {
      log(`8a: ${what}: ${now} arrivals so far`);
      lastLog = Date.now();
    }
  }
  return true;
}

export async function notificationFigures(ctx: NotificationBench): Promise<Figure[]> {
  const { log } = ctx;
  const total = ctx.quick ? CHANGES.quick : CHANGES.full;
  const steadyCount = ctx.quick ? STEADY.quick : STEADY.full;
  const burstCount = total - steadyCount;

  // Earlier figures' changes (3a's status changes and 3b's messages, tens of thousands in a full run) are not this
  // figure's to deliver: their outbox rows, not yet relayed since no worker ran, would be relayed and worked before
  // its own, and the figure would count their mail instead (a full run once found all 10 000 of its own "lost").
  // They are marked relayed, and any job already queued for them dropped.
  const { rowCount: setAside } = await query(ctx.dbUrl, `update outbox_events set relayed_at = now() where relayed_at is null`);
  await query(ctx.dbUrl, `delete from pgboss.job where name like 'notify-%'`);
  if (setAside) log(`8: ${setAside} outbox events of earlier figures set aside`);

  const smtp = await startSmtp();
  ctx.cleanups.push(() => smtp.stop());
  const receiver = await startReceiver();
  ctx.cleanups.push(() => receiver.stop());

  // The web process without the worker in it (as deployed: WORKER_IN_PROCESS=false); the worker is its own process.
  const api = await ctx.startApi({ WORKER_IN_PROCESS: 'false' });

  // Each technician subscribes to the three status events at the receiver (development allows http://127.0.0.1).
  await Promise.all(
    ctx.techs.map(async (tech, i) => {
      const res = await fetch(`${api.url}/api/v1/webhooks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...tech.auth },
        body: JSON.stringify({ url: `${receiver.url}/hooks/${i + 1}`, event_types: ['order.in_production', 'order.shipped', 'order.delivered'] }),
      });
      if (res.status !== 201) throw new Error(`POST /webhooks answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    }),
  );

  // Accepted, paid orders (SQL, as figure 3a's); each takes its three steps through the API.
  const techBySub = new Map(ctx.techs.map((t) => [t.sub, t]));
  const burstOrders = await seedAcceptedOrders(ctx.dbUrl, Math.ceil(burstCount / 3));
  const steadyOrders = await seedAcceptedOrders(ctx.dbUrl, Math.ceil(steadyCount / 3));
  const unknown = [...burstOrders, ...steadyOrders].find((o) => !techBySub.has(o.sub));
  if (unknown) throw new Error(`order ${unknown.id} belongs to ${unknown.sub}, who has no token`);

  const worker = workerProcess(ctx.root);
  const workerExtra = Object.fromEntries((process.env.BENCH_WORKER_ENV ?? '').split(',').filter(Boolean).map((pair) => pair.split('=', 2) as [string, string]));
  const workerEnv = {
    ...ctx.env,
    ...worker.env,
    SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
    MAIL_FROM,
    APP_URL: 'https://app.bench.example',
    ...workerExtra,
  };
  const startWorker = () => {
    const child = startNode([...worker.nodeFlags, path.join(ctx.root, 'dist/worker.js')], workerEnv, { cwd: ctx.root });
    ctx.cleanups.push(() => child.stop());
    return child;
  };
  const dbCpu = () => (ctx.dbServerPid ? treeCpuSeconds(ctx.dbServerPid) : 0);

  // ---- burst: every change committed first, with no worker running; then the worker drains the backlog ----
  log(`8a: ${burstCount} status changes through the API (16 connections), no worker running`);
  const queue: Step[] = burstOrders.map((o) => ({ ...o, to: 'in_production' }));
  const burstStarted = Date.now();
  const apiRun = await load(
    {
      url: api.url,
      requests: [
        {
          method: 'PUT',
          setupRequest: (req) => {
            const step = queue.shift();
            if (!step) throw new Error('the burst ran out of prepared orders');
            const next = NEXT[step.to];
            if (next) queue.push({ ...step, to: next });
            return {
              ...req,
              path: `/api/v1/orders/${step.id}/status`,
              headers: { 'content-type': 'application/json', ...techBySub.get(step.sub)!.auth },
              body: JSON.stringify({ status: step.to }),
            };
          },
        },
      ],
    },
    { connections: 16, amount: burstCount },
  );
  const burstSent = Date.now();
  log(`8a: ${apiRun.requests} changes in ${((burstSent - burstStarted) / 1000).toFixed(1)} s (${apiRun.rps.toFixed(0)}/s); starting the worker`);

  const emailsSoFar = () => smtp.arrivals.length;
  const hooksSoFar = () => receiver.arrivals.length;
  const workerStarted = Date.now();
  const drainWorker = startWorker();
  const cpu0 = { worker: 0, db: dbCpu() };
  const burstDone = await drain(
    () => emailsSoFar() >= burstCount && hooksSoFar() >= burstCount,
    () => emailsSoFar() + hooksSoFar(),
    log,
    `burst drain (${burstCount} emails and webhooks expected)`,
  );
  const drainEnded = Date.now();
  const cpu1 = { worker: cpuSeconds(drainWorker.pid), db: dbCpu() };
  const burstArrivals = [...smtp.arrivals, ...receiver.arrivals].map((a) => a.at).sort((a, b) => a - b);
  const burstLast = { emails: smtp.arrivals.length, hooks: receiver.arrivals.length };
  // Events per second over the drain: from the worker's start to the last email or webhook of the burst.
  const drainSeconds = ((burstArrivals.at(-1) ?? drainEnded) - workerStarted) / 1000;
  const fullyDelivered = Math.min(burstLast.emails, burstLast.hooks);
  const eventsPerSecond = fullyDelivered / drainSeconds;
  // Between the first and the last arrival: the same without the worker's start-up.
  const steadyDrainSeconds = ((burstArrivals.at(-1) ?? 0) - (burstArrivals[0] ?? 0)) / 1000;
  log(`8a: drained ${fullyDelivered} events in ${drainSeconds.toFixed(1)} s: ${eventsPerSecond.toFixed(1)} events/s${burstDone ? '' : ' (INCOMPLETE)'}`);

  // ---- steady: changes at half the drain rate, the worker running, for the latency commit → SMTP acceptance ----
  if (api.child.child.exitCode !== null || drainWorker.child.exitCode !== null) {
    throw new Error(`a process exited during the drain:\nAPI ${api.child.output().slice(-3000)}\nworker ${drainWorker.output().slice(-3000)}`);
  }
  const rate = Math.max(1, Math.min(200, eventsPerSecond / 2));
  const steps: Step[] = (['in_production', 'shipped', 'delivered'] as const).flatMap((to) => steadyOrders.map((o) => ({ ...o, to }))).slice(0, steadyCount);
  log(`8a: ${steps.length} status changes at ${rate.toFixed(1)}/s with the worker running`);
  // Its own connections (node:http, kept alive), not fetch's global pool, whose sockets have idled through the drain.
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const put = (url: string, body: object, headers: Record<string, string>) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(url, { method: 'PUT', agent, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  const steadyStarted = performance.now();
  const responded: number[] = [];
  const failures: string[] = [];
  await Promise.all(
    steps.map(async (step, i) => {
      const due = steadyStarted + (i * 1000) / rate - performance.now();
      if (due > 0) await sleep(due);
      try {
        const res = await put(`${api.url}/api/v1/orders/${step.id}/status`, { status: step.to }, techBySub.get(step.sub)!.auth);
        responded.push(Date.now());
        if (res.status !== 200) failures.push(`${res.status} ${res.body.slice(0, 200)}`);
      } catch (err) {
        // Whether it committed is read back from the outbox below; what was sent is counted here.
        const cause = (err as Error & { cause?: Error }).cause;
        failures.push(`${(err as Error).message}${cause ? ` (${cause.message})` : ''}`);
      }
    }),
  );
  agent.destroy();
  if (failures.length) log(`8a: ${failures.length} steady status changes failed, first: ${failures[0]}`);
  if (failures.length === steps.length) throw new Error(`every steady status change failed, first: ${failures[0]}\nAPI ${api.child.output().slice(-3000)}`);
  const steadyDone = await drain(
    () => emailsSoFar() >= total && hooksSoFar() >= total,
    () => emailsSoFar() + hooksSoFar(),
    log,
    `steady phase (${total} emails and webhooks expected in all)`,
  );
  // A late duplicate shows only if we wait a little past the last expected arrival.
  await sleep(ctx.quick ? 2000 : 5000);
  const workerPeakRssMb = drainWorker.memory().peakRssMb;
  await drainWorker.stop();
  await api.child.stop();

  // ---- what arrived, against the outbox (commit times) ----
  const burstIds = new Set(burstOrders.map((o) => o.id));
  const { rows: events } = await query<{ id: string; order_id: string; occurred_at: Date }>(
    ctx.dbUrl,
    `select id, order_id, occurred_at from outbox_events where order_id = any($1::uuid[]) and type in ('order.in_production', 'order.shipped', 'order.delivered')`,
    [[...burstOrders, ...steadyOrders].map((o) => o.id)],
  );
  const eventById = new Map(events.map((e) => [e.id, e]));
  const tally = (arrivals: Arrival[]) => {
    const byKey = new Map<string, number>();
    for (const a of arrivals) byKey.set(a.key, (byKey.get(a.key) ?? 0) + 1);
    const events = new Set(arrivals.map((a) => a.eventId).filter((id) => eventById.has(id)));
    return {
      expected: eventById.size,
      received: arrivals.length,
      distinct: byKey.size,
      duplicated: [...byKey.values()].reduce((n, c) => n + c - 1, 0),
      lost: eventById.size - events.size,
      unexpected: arrivals.filter((a) => !eventById.has(a.eventId)).length,
    };
  };
  const emails = tally(smtp.arrivals);
  const hooks = tally(receiver.arrivals);
  /** Milliseconds from each event's commit (outbox occurred_at: the transaction's start, so a little early) to its first arrival. */
  const latencies = (arrivals: Arrival[], burst: boolean) => {
    const first = new Map<string, number>();
    for (const a of arrivals) if (!first.has(a.eventId) || first.get(a.eventId)! > a.at) first.set(a.eventId, a.at);
    const ms = [...first].flatMap(([id, at]) => {
      const e = eventById.get(id);
      return e && burstIds.has(e.order_id) === burst ? [at - e.occurred_at.getTime()] : [];
    });
    ms.sort((a, b) => a - b);
    return { p50Ms: percentile(ms, 0.5), p95Ms: percentile(ms, 0.95), maxMs: ms.at(-1) ?? NaN, samples: ms.length };
  };
  const steadyMail = latencies(smtp.arrivals, false);
  const steadyHook = latencies(receiver.arrivals, false);
  const burstMail = latencies(smtp.arrivals, true);

  // ---- 8b: the raw queue on the same database, with the worker's work() options ----
  const rawQueue = async (jobs: number, burst: boolean) => {
    const child = startNode(
      [path.join(ctx.root, 'bench/baselines/raw-queue.mjs')],
      { ...ctx.env, ...workerExtra, JOBS: String(jobs), ...(burst ? { BURST: '1' } : {}) },
      { cwd: ctx.root },
    );
    ctx.cleanups.push(() => child.stop());
    const out = await announced<{ jobs: number; seconds: number; jobsPerSecond: number; batchSize: number; pollIntervalS: number }>(child, 15 * 60_000);
    await child.stop();
    return out;
  };
  const rawJobs = ctx.quick ? RAW_JOBS.quick : RAW_JOBS.full;
  log(`8b: raw pg-boss, ${rawJobs} jobs, the worker's batch size, polling and burst fetching`);
  const raw = await rawQueue(rawJobs, true);
  log(`8b: ${raw.jobsPerSecond.toFixed(1)} jobs/s`);

  const workerCpuMsPerEvent = ((cpu1.worker - cpu0.worker) * 1000) / Math.max(1, fullyDelivered);
  const dbCpuMsPerEvent = ((cpu1.db - cpu0.db) * 1000) / Math.max(1, fullyDelivered);
  const common = {
    changes: { total, burst: burstCount, steady: steps.length, events: eventById.size },
    apiBurst: { seconds: round((burstSent - burstStarted) / 1000), changesPerSecond: round(apiRun.rps), p50Ms: apiRun.p50Ms, p97_5Ms: apiRun.p97_5Ms },
    steadyRate: round(rate),
    complete: { burst: burstDone, steady: steadyDone },
    steadyFailures: { count: failures.length, first: failures.slice(0, 3) },
    // Unset means src/config.ts's defaults: WORKER_POLL_INTERVAL_MS 1000, WORKER_BATCH_SIZE 20, DB_POOL_MAX 10.
    workerSettingsSet: Object.fromEntries(Object.entries(workerEnv).filter(([k]) => k.startsWith('WORKER_') || k === 'DB_POOL_MAX')),
  };
  const ratio = eventsPerSecond / raw.jobsPerSecond;
  return [
    {
      id: '8a',
      name: `notifications: ${total.toLocaleString('en')} status changes → emails at the SMTP server: lost + duplicated (by Message-ID)`,
      value: emails.lost + emails.duplicated + emails.unexpected,
      unit: 'count',
      goal: '0',
      pass: emails.lost + emails.duplicated + emails.unexpected === 0,
      detail: { ...emails, ...common },
    },
    {
      id: '8a',
      name: `notifications: the same changes → webhooks at the receiver: webhook-ids lost (duplicates of one webhook-id allowed)`,
      value: hooks.lost + hooks.unexpected,
      unit: 'count',
      goal: '0',
      pass: hooks.lost + hooks.unexpected === 0,
      detail: hooks,
    },
    {
      id: '8a',
      name: `notifications: p95 commit → SMTP acceptance, ${steps.length} changes at ${rate.toFixed(1)}/s (p50 ${steadyMail.p50Ms.toFixed(0)} ms; webhooks p95 ${steadyHook.p95Ms.toFixed(0)} ms)`,
      value: steadyMail.p95Ms,
      unit: 'ms',
      goal: '< 2000 ms',
      pass: steadyMail.p95Ms < 2000,
      detail: { email: steadyMail, webhook: steadyHook, burstEmail: burstMail },
    },
    {
      id: '8a',
      name: `notifications: worker events/s draining ${burstCount.toLocaleString('en')} committed changes (email + webhook each; worker ${workerCpuMsPerEvent.toFixed(1)} ms CPU per event)`,
      value: eventsPerSecond,
      unit: '/s',
      goal: 'info',
      pass: true,
      detail: {
        events: fullyDelivered,
        seconds: round(drainSeconds, 2),
        firstToLastArrivalSeconds: round(steadyDrainSeconds, 2),
        jobsPerEvent: 4,
        workerJobsPerSecond: round(eventsPerSecond * 4),
        workerCpuMsPerEvent: round(workerCpuMsPerEvent, 2),
        databaseCpuMsPerEvent: round(dbCpuMsPerEvent, 2),
        workerPeakRssMb: round(workerPeakRssMb),
      },
    },
    {
      id: '8b',
      name: `notifications: worker events/s ÷ raw pg-boss jobs/s, same batch (${raw.batchSize}), polling (${raw.pollIntervalS} s) and burst fetching, empty handler (${raw.jobsPerSecond.toFixed(1)} jobs/s)`,
      value: ratio,
      unit: 'ratio',
      goal: '≥ 0.50',
      pass: ratio >= 0.5,
      detail: { raw, workerEventsPerSecond: round(eventsPerSecond, 2), workerJobsPerSecond: round(eventsPerSecond * 4, 2) },
    },
  ];
}

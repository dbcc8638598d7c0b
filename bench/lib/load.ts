import { Agent, request } from 'node:http';
import autocannon, { type Options } from 'autocannon';

export type Target = Omit<Options, 'duration' | 'amount' | 'connections'> & {
  /** CPU seconds used so far by the server under test and its database backends. */
  cpu?: () => number;
};

export interface LoadRun {
  rps: number;
  /** Server + database CPU milliseconds per request, when the target can tell. */
  cpuMsPerRequest?: number;
  p50Ms: number;
  p97_5Ms: number;
  requests: number;
}

export interface RunShape {
  connections: number;
  /** Seconds per measured run (duration-based). */
  seconds?: number;
  /** Requests per measured run (for writes that use up prepared rows). */
  amount?: number;
}

/** One autocannon run; any error or non-2xx answer fails the benchmark rather than flattering it. */
export async function load(target: Target, shape: RunShape): Promise<LoadRun> {
  const { cpu, ...options } = target;
  const cpuBefore = cpu?.();
  const started = performance.now();
  const result = await autocannon({
    ...options,
    connections: shape.connections,
    ...(shape.amount ? { amount: shape.amount } : { duration: shape.seconds ?? 3 }),
    timeout: 30,
  });
  if (result.errors || result.non2xx) {
    throw new Error(
      `${target.url}: ${result.errors} errors, ${result.non2xx} non-2xx answers (${JSON.stringify(result.statusCodeStats)})`,
    );
  }
  // autocannon reports whole seconds for runs of a fixed number of requests; the wall clock is finer.
  const seconds = (performance.now() - started) / 1000;
  return {
    rps: result.requests.total / seconds,
    cpuMsPerRequest: cpu ? ((cpu() - cpuBefore!) * 1000) / result.requests.total : undefined,
    p50Ms: result.latency.p50,
    p97_5Ms: result.latency.p97_5,
    requests: result.requests.total,
  };
}

export interface Comparison {
  /** Median over rounds of (API rate / baseline rate), each pair measured back to back. */
  ratio: number;
  ratios: number[];
  /**
   * Median over rounds of (baseline CPU per request / API CPU per request), server and database
   * together: what the throughput ratio would be on a machine with nothing else running. Other
   * tenants' load moves throughput a lot and CPU per request little, so this is the steadier figure.
   */
  cpuRatio?: number;
  baseline: LoadRun[];
  api: LoadRun[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/**
 * Warms both servers up, then alternates baseline and API runs so that both see the same machine
 * (other work on this host comes and goes); the figure is the median of the per-round ratios.
 */
export async function compare(
  targets: { baseline: () => Target; api: () => Target },
  shape: RunShape & { rounds: number; warmup: RunShape },
): Promise<Comparison> {
  await load(targets.baseline(), shape.warmup);
  await load(targets.api(), shape.warmup);
  const baseline: LoadRun[] = [];
  const api: LoadRun[] = [];
  for (let round = 0; round < shape.rounds; round++) {
    // Alternate who goes first, so neither always inherits the other's aftermath (GC, autovacuum).
    if (round % 2 === 0) {
      baseline.push(await load(targets.baseline(), shape));
      api.push(await load(targets.api(), shape));
    } else {
      api.push(await load(targets.api(), shape));
      baseline.push(await load(targets.baseline(), shape));
    }
  }
  const ratios = api.map((a, i) => a.rps / baseline[i]!.rps);
  const cpuRatios = api.flatMap((a, i) => (a.cpuMsPerRequest && baseline[i]!.cpuMsPerRequest ? [baseline[i]!.cpuMsPerRequest! / a.cpuMsPerRequest] : []));
  return { ratio: median(ratios), ratios, cpuRatio: cpuRatios.length ? median(cpuRatios) : undefined, baseline, api };
}

export interface Latency {
  p50Ms: number;
  p95Ms: number;
  samples: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

/** One request at a time over a kept-alive connection: the latency a single user sees. */
export async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export async function latency(url: string, headers: Record<string, string>, samples: number, warmup = 50): Promise<Latency> {
  const times: number[] = [];
  for (let i = 0; i < warmup + samples; i++) {
    const res = await get(url, headers);
    if (res.status !== 200) throw new Error(`${url}: ${res.status} ${res.body.slice(0, 300)}`);
    if (i >= warmup) times.push(res.ms);
  }
  times.sort((a, b) => a - b);
  return { p50Ms: times[Math.floor(samples * 0.5)]!, p95Ms: times[Math.min(samples - 1, Math.ceil(samples * 0.95) - 1)]!, samples };
}

export { median };

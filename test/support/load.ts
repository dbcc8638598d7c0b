/** Steady traffic for the fault and soak tests: weighted actions, each reporting the status it got. */
export interface Action {
  name: string;
  weight: number;
  /** Sends one request (or a short sequence) and returns the final HTTP status. */
  run(): Promise<number>;
}

export interface Outcome {
  action: string;
  /** Date.now() when the request started. */
  started: number;
  ms: number;
  status?: number;
  /** Set when no HTTP answer came back (connection refused, reset, timeout). */
  error?: string;
}

export class Load {
  readonly outcomes: Outcome[] = [];
  /** Ticks of an open-loop run skipped because too many requests were still in flight. */
  skipped = 0;
  private running = false;
  private loops: Array<Promise<void>> = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();
  /** Start times of requests still waiting for an answer. */
  private pending = new Set<number>();
  private readonly total: number;

  constructor(private readonly actions: Action[]) {
    this.total = actions.reduce((sum, a) => sum + a.weight, 0);
  }

  private pick(): Action {
    let r = Math.random() * this.total;
    for (const a of this.actions) if ((r -= a.weight) < 0) return a;
    return this.actions.at(-1)!;
  }

  private async once(): Promise<void> {
    const action = this.pick();
    const started = Date.now();
    const t0 = performance.now();
    const token = started + Math.random() / 2;
    this.pending.add(token);
    try {
      const status = await action.run();
      this.outcomes.push({ action: action.name, started, ms: performance.now() - t0, status });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      this.outcomes.push({ action: action.name, started, ms: performance.now() - t0, error: e.cause?.code ?? e.name ?? e.message });
    } finally {
      this.pending.delete(token);
    }
  }

  /** How many requests started before `time` are still waiting for an answer. */
  waitingSince(time: number): number {
    return [...this.pending].filter((t) => t < time).length;
  }

  /** `workers` loops, each sending its next request as soon as the last one answered (after `pauseMs`). */
  closedLoop(workers: number, pauseMs = 20): this {
    this.running = true;
    for (let i = 0; i < workers; i++) {
      this.loops.push(
        (async () => {
          while (this.running) {
            await this.once();
            await new Promise((r) => setTimeout(r, pauseMs));
          }
        })(),
      );
    }
    return this;
  }

  /** `perSecond` requests a second whatever the answers take, with at most `maxInFlight` outstanding. */
  openLoop(perSecond: number, maxInFlight = 50): this {
    this.running = true;
    this.timer = setInterval(() => {
      if (this.inFlight.size >= maxInFlight) {
        this.skipped++;
        return;
      }
      const p = this.once().finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    }, 1000 / perSecond);
    return this;
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.timer);
    await Promise.all([...this.loops, ...this.inFlight]);
  }

  between(from: number, to = Infinity): Outcome[] {
    return this.outcomes.filter((o) => o.started >= from && o.started < to);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts outcomes by status (or error name), e.g. {"201": 40, "503": 12, "ECONNREFUSED": 1}. */
export function tally(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const key = o.error ?? String(o.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

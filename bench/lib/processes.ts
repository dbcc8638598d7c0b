import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Child {
  child: ChildProcess;
  pid: number;
  output(): string;
  /** Resident set size now, and its high-water mark since the process started (kB → MB). */
  memory(): { rssMb: number; peakRssMb: number };
  stop(): Promise<void>;
}

/** Starts `node <args>` with exactly `env` (plus PATH and HOME); its output is kept for error reports. */
export function startNode(args: string[], env: Record<string, string>, opts: { cwd?: string } = {}): Child {
  const child = spawn(process.execPath, args, {
    cwd: opts.cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + String(d)).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    pid: child.pid!,
    output: () => out,
    memory() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
      return { rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024 };
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killed = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!killed) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** Polls `url` every few milliseconds until it answers 200; returns the milliseconds waited. */
export async function waitFor200(url: string, child: Child, timeoutMs = 60_000): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (child.child.exitCode !== null) throw new Error(`process exited (${child.child.exitCode}) before answering:\n${child.output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - started;
    } catch {
      // not listening yet
    }
    await sleep(5);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms:\n${child.output()}`);
}

/** Reads the first line a child prints that parses as JSON (baselines and s3rver announce their port so). */
export async function announced<T>(child: Child, timeoutMs = 30_000): Promise<T> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    for (const line of child.output().split('\n')) {
      if (line.startsWith('{')) return JSON.parse(line) as T;
    }
    if (child.child.exitCode !== null) throw new Error(`process exited before announcing itself:\n${child.output()}`);
    await sleep(20);
  }
  throw new Error(`no announcement within ${timeoutMs} ms:\n${child.output()}`);
}

const TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system) a process has used so far; 0 once it is gone. With `reaped`, those of its children
 * that have exited and been waited for too (cutime, cstime): a PostgreSQL server's closed backends, whose CPU would
 * otherwise vanish from a sum over the live ones and make a round's database CPU negative.
 */
export function cpuSeconds(pid: number, opts: { reaped?: boolean } = {}): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const reaped = opts.reaped ? Number(fields[13]) + Number(fields[14]) : 0;
    return (Number(fields[11]) + Number(fields[12]) + reaped) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** The processes whose parent is `pid` (a PostgreSQL server's backends, for instance). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * CPU seconds of a server and all its children, live or exited (a PostgreSQL server: the postmaster, its
 * backends, and those that closed meanwhile, e.g. a pool letting idle connections go mid-round).
 */
export function treeCpuSeconds(pid: number): number {
  return cpuSeconds(pid, { reaped: true }) + childrenOf(pid).reduce((n, child) => n + cpuSeconds(child), 0);
}

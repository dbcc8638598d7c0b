import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Spawned, freePort, spawnNode, waitForHttp } from './process.js';
import { webProcess } from './procfile.js';

/** What test/support/heap-probe.ts reports, after a full garbage collection. */
export interface LiveMemory {
  /** Bytes of the V8 heap still in use. */
  heapUsed: number;
}

/** The real server (src/server.ts) in its own process, on a free loopback port. */
export interface RunningServer {
  url: string;
  pid: number;
  proc: Spawned;
  /** Resident memory of the process in KiB, from /proc. */
  rssKb(): number;
  /** Only for a server started with `heapProbe`: collects garbage fully and reports what is left. */
  liveMemory(): Promise<LiveMemory>;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const PROBE = path.resolve(import.meta.dirname, 'heap-probe.ts');

/**
 * Starts src/server.ts with the Procfile's web variables and Node.js flags, so memory and the young
 * generation are sized as on a dyno, not from this machine.
 */
export async function startServer(env: Record<string, string>, opts: { heapProbe?: boolean } = {}): Promise<RunningServer> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kn-server-'));
  const url = `http://127.0.0.1:${port}`;
  const web = webProcess();
  const probe = opts.heapProbe ? ['--expose-gc', '--import', PROBE] : [];
  const proc = spawnNode([...web.nodeFlags, ...probe, 'src/server.ts'], {
    ...web.env,
    ENVIRONMENT: 'development',
    HOST: '127.0.0.1',
    PORT: String(port),
    PUBLIC_URL: url,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_ENABLED: 'false',
    ...env,
  });
  proc.exit.then(() => rmSync(dataDir, { recursive: true, force: true }));
  try {
    await Promise.race([
      waitForHttp(`${url}/api/v1/health/live`, 90_000),
      proc.exit.then((code) => Promise.reject(new Error(`the server exited with ${code} before answering: ${proc.output()}`))),
    ]);
  } catch (err) {
    proc.child.kill('SIGKILL');
    throw err;
  }
  return {
    url,
    pid: proc.child.pid!,
    proc,
    rssKb() {
      const status = readFileSync(`/proc/${proc.child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    },
    liveMemory() {
      if (!opts.heapProbe) return Promise.reject(new Error('liveMemory() needs a server started with heapProbe'));
      return new Promise((resolve, reject) => {
        let line = '';
        const onData = (chunk: Buffer) => {
          line += String(chunk);
          const m = /heap-probe (\{.*\})\n/.exec(line);
          if (!m) return;
          proc.child.stderr!.off('data', onData);
          clearTimeout(timer);
          resolve(JSON.parse(m[1]!) as LiveMemory);
        };
        const timer = setTimeout(() => {
          proc.child.stderr!.off('data', onData);
          reject(new Error('the heap probe did not answer within 10 s'));
        }, 10_000);
        proc.child.stderr!.on('data', onData);
        proc.child.kill('SIGUSR2');
      });
    },
    async stop(signal = 'SIGTERM') {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal);
      return proc.exit;
    },
  };
}

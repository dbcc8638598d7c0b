import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Spawned, freePort, spawnNode, waitForHttp } from './process.js';

/** The real server (src/server.ts) in its own process, on a free loopback port. */
export interface RunningServer {
  url: string;
  pid: number;
  proc: Spawned;
  /** Resident memory of the process in KiB, from /proc. */
  rssKb(): number;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startServer(env: Record<string, string>): Promise<RunningServer> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kn-server-'));
  const url = `http://127.0.0.1:${port}`;
  const proc = spawnNode(['src/server.ts'], {
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
    async stop(signal = 'SIGTERM') {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal);
      return proc.exit;
    },
  };
}

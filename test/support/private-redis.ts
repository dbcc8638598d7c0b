import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForTcp } from './process.js';

/** A Redis of the test's own (redis-server on the PATH), on a free loopback port, nothing saved to disk. */
export interface PrivateRedis {
  /** redis://127.0.0.1:PORT, or rediss:// with `tls` */
  url: string;
  stop(): Promise<void>;
}

/**
 * Heroku Redis is reached over rediss:// and presents a self-signed certificate; this is the same
 * thing on loopback (the machine's redis-server, built with TLS, and a certificate from openssl), with
 * the plain-text port closed so nothing can pass without the handshake.
 */
export async function startTlsRedis(): Promise<PrivateRedis> {
  return startPrivateRedis({ tls: true });
}

/** Several web processes share one Redis (rate limits, live events): the multi-dyno tests start their own. */
export async function startPrivateRedis(opts: { tls?: boolean } = {}): Promise<PrivateRedis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kn-redis-'));
  const port = await freePort();
  let listen = ['--port', String(port)];
  if (opts.tls) {
    const [cert, key] = [path.join(dir, 'redis.crt'), path.join(dir, 'redis.key')];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=redis.test', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    listen = ['--port', '0', '--tls-port', String(port), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no'];
  }
  const child: ChildProcess = spawn('redis-server', [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      spawnError = err;
      resolve();
    });
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([waitForTcp(port), exited.then(() => Promise.reject(new Error(`redis-server did not start${spawnError ? ` (${spawnError.message})` : ''}: these tests need redis-server on the PATH${opts.tls ? ', built with TLS' : ''}`)))]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `${opts.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`, stop };
}

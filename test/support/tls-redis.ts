import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForTcp } from './process.js';

/** A Redis of the test's own that speaks only TLS, on a freshly made self-signed certificate. */
export interface TlsRedis {
  /** rediss://127.0.0.1:PORT */
  url: string;
  stop(): Promise<void>;
}

/**
 * Heroku Redis is reached over rediss:// and presents a self-signed certificate; this is the same
 * thing on loopback (the machine's redis-server, built with TLS, and a certificate from openssl), with
 * the plain-text port closed so nothing can pass without the handshake.
 */
export async function startTlsRedis(): Promise<TlsRedis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kn-redis-tls-'));
  const [cert, key] = [path.join(dir, 'redis.crt'), path.join(dir, 'redis.key')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=redis.test', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
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
    await Promise.race([waitForTcp(port), exited.then(() => Promise.reject(new Error(`redis-server did not start${spawnError ? ` (${spawnError.message})` : ''}: the rediss:// test needs a redis-server built with TLS on the PATH`)))]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `rediss://127.0.0.1:${port}`, stop };
}

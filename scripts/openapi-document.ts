import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';

/**
 * The OpenAPI document's JSON text exactly as the development server serves it, read through app.inject from an app
 * that never listens. The environment is fixed rather than read from process.env, so a developer's
 * PUBLIC_URL or AUTH0_DOMAIN cannot change what is generated from it: only the code can.
 */
export async function servedDocument(): Promise<string> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kn-openapi-'));
  const silent = new Writable({ write: (_chunk, _enc, cb) => cb() });
  try {
    const config = loadConfig({ ENVIRONMENT: 'development', DATA_DIR: dataDir });
    // The document is built from the route schemas alone; migrating the empty PGlite would only add seconds.
    const app = await buildApp(config, { skipMigrations: true, logStream: silent });
    try {
      const res = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
      if (res.statusCode !== 200) throw new Error(`GET /api/v1/openapi.json answered ${res.statusCode}: ${res.body}`);
      return res.body;
    } finally {
      await app.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

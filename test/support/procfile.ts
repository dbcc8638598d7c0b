import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** What the Procfile's web command line sets around `node … dist/server.js`. */
export interface WebProcess {
  /** Variables set before `node` (MALLOC_ARENA_MAX, …). */
  env: Record<string, string>;
  /** Node.js flags before the script (the young generation's size, …). */
  nodeFlags: string[];
}

/**
 * The web process's settings, so the benchmark and the soak run the API the way Heroku does rather
 * than with Node's defaults, which size memory from the machine, not the dyno.
 */
export function webProcess(): WebProcess {
  const procfile = readFileSync(path.join(ROOT, 'Procfile'), 'utf8');
  const web = /^web:\s*((?:\w+=\S+\s+)*)node\s+((?:--\S+\s+)*)dist\/server\.js/m.exec(procfile);
  if (!web) throw new Error('Procfile: expected `web: [NAME=value …] node [--flag …] dist/server.js`');
  const words = (s: string | undefined) => (s ?? '').trim().split(/\s+/).filter(Boolean);
  return {
    env: Object.fromEntries(words(web[1]).map((pair) => pair.split('=', 2) as [string, string])),
    nodeFlags: words(web[2]),
  };
}

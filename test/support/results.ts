import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Figures the reliability suites measured, merged section by section into the JSON file named by
 * RELIABILITY_RESULTS (bench/results/reliability.json when recording them). Nothing is written otherwise,
 * so an ordinary test run leaves the work tree clean.
 */
export function recordResults(section: string, figures: Record<string, unknown>): void {
  const file = process.env.RELIABILITY_RESULTS;
  if (!file) return;
  mkdirSync(path.dirname(file), { recursive: true });
  const lock = `${file}.lock`;
  for (let i = 0; ; i++) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch {
      if (i > 200) rmSync(lock, { force: true });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 25);
    }
  }
  try {
    const all = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
    all[section] = { ...figures, node: process.version, recorded_at: new Date().toISOString() };
    writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
  } finally {
    rmSync(lock, { force: true });
  }
}

// `npm run lint:openapi` (CI): the OpenAPI document exactly as the API serves it, linted by Redocly (recommended
// rules, redocly.yaml) and Spectral (spectral:oas, .spectral.yaml). Any error or warning from either fails.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { servedDocument } from './openapi-document.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = (name: string) => path.join(root, 'node_modules', '.bin', name);
// Neither tool may phone home from CI or a developer's machine.
const env = { ...process.env, REDOCLY_TELEMETRY: 'off', SCARF_ANALYTICS: 'false', DO_NOT_TRACK: '1' };

const dir = mkdtempSync(path.join(os.tmpdir(), 'kn-lint-openapi-'));
const file = path.join(dir, 'openapi.json');
let failed = false;
try {
  writeFileSync(file, await servedDocument());
  const run = (name: string, args: string[]) => {
    console.log(`\n$ ${name} ${args.join(' ')}`);
    const result = spawnSync(bin(name), args, { cwd: root, env, encoding: 'utf8' });
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
    if (result.error) throw result.error;
    return result;
  };
  // Redocly fails on errors only: its summary line counts the warnings, which fail here as well.
  const redocly = run('redocly', ['lint', file, '--config', path.join(root, 'redocly.yaml'), '--format', 'stylish']);
  const warned = /(\d+) warnings?/.exec(`${redocly.stdout}${redocly.stderr}`);
  if (redocly.status !== 0 || (warned && Number(warned[1]) > 0)) failed = true;
  const spectral = run('spectral', ['lint', file, '--ruleset', path.join(root, '.spectral.yaml'), '--fail-severity', 'warn']);
  if (spectral.status !== 0) failed = true;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (failed) {
  console.error('\nlint:openapi: the served OpenAPI document has lint errors or warnings (above). Fix the route schemas.');
  process.exit(1);
}
console.log('\nlint:openapi: 0 errors, 0 warnings from Redocly and Spectral');

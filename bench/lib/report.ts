import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface Figure {
  id: string;
  name: string;
  /** The measured figure: a ratio, milliseconds or megabytes, as `unit` says. */
  value: number;
  /** For throughput ratios: the same comparison in CPU per request (see Comparison.cpuRatio). */
  cpuRatio?: number;
  unit: 'ratio' | 'ms' | 'MB' | 'x' | 'count' | '/s';
  goal: string;
  pass: boolean;
  detail?: Record<string, unknown>;
}

const fmt = (f: Figure) => {
  if (f.unit === 'ratio') return f.value.toFixed(2);
  if (f.unit === 'x') return `${f.value.toFixed(2)}×`;
  if (f.unit === 'count') return String(f.value);
  if (f.unit === '/s') return `${f.value.toFixed(1)} /s`;
  return `${f.value.toFixed(f.unit === 'ms' ? 0 : 1)} ${f.unit}`;
};

export function table(figures: Figure[]): string {
  const rows = [
    ['#', 'figure', 'measured', 'CPU ratio', 'goal', 'result'],
    ...figures.map((f) => [f.id, f.name, fmt(f), f.cpuRatio === undefined ? '' : f.cpuRatio.toFixed(2), f.goal, f.pass ? 'pass' : 'FAIL']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function writeResults(file: string, result: Record<string, unknown>) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
}

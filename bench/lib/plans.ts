import { readFileSync, statSync } from 'node:fs';

/**
 * Query plans as the API really runs them: an API process whose database sessions load auto_explain
 * (through PGOPTIONS, read by node-postgres) logs EXPLAIN (ANALYZE, BUFFERS) of every statement to
 * the private cluster's log; this reads the plans written while `fn` ran.
 */
export async function capturePlans(logFile: string, fn: () => Promise<void>): Promise<string[]> {
  const from = statSync(logFile).size;
  await fn();
  // auto_explain writes after the statement finishes; give the log a moment to be flushed.
  await new Promise((r) => setTimeout(r, 200));
  const text = readFileSync(logFile, 'utf8').slice(from);
  const plans: string[] = [];
  for (const block of text.split(/\n(?=\S)/)) {
    const m = /LOG:\s+duration: ([\d.]+) ms\s+plan:\n([\s\S]*)/.exec(block);
    if (!m) continue;
    const body = m[2]!.replace(/^\t/gm, '').trimEnd();
    // The profile lookup of the signed-in user is the same on every route; keep the output to the point.
    if (/from "users" where "users"."auth0_id"/.test(body)) continue;
    // The estimate behind a long list's total plans a query without running it; that EXPLAIN is not a plan to show.
    if (/^Query Text: explain/.test(body)) continue;
    plans.push(`-- ${m[1]} ms\n${body}`);
  }
  return plans;
}

export const AUTO_EXPLAIN_PGOPTIONS = [
  '-c session_preload_libraries=auto_explain',
  '-c auto_explain.log_min_duration=0',
  '-c auto_explain.log_analyze=on',
  '-c auto_explain.log_buffers=on',
  '-c auto_explain.log_timing=on',
].join(' ');

export const hasSeqScan = (plans: string[], table: string) => plans.some((p) => new RegExp(`Seq Scan on ${table}\\b`).test(p));

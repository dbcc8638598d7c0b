// Types of scripts/prerequisites.mjs for the tests that import it.
export declare const MIN_NODE_MAJOR: number;
export declare function findExecutable(name: string, env?: Record<string, string | undefined>): string | undefined;
export declare function findPostgresBin(env?: Record<string, string | undefined>, root?: string): string | undefined;
export interface PrerequisiteReport {
  missing: string[];
  warnings: string[];
}
export declare function checkPrerequisites(
  files: string[],
  env?: Record<string, string | undefined>,
  options?: { timeoutMs?: number; nodeVersion?: string },
): Promise<PrerequisiteReport>;
export declare function formatPrerequisites(report: PrerequisiteReport): string;

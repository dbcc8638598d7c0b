export interface ShutdownLogger {
  info(obj: object, msg: string): void;
  error(obj: object | string, msg?: string): void;
}

/**
 * Heroku sends SIGTERM and kills after 30 s: on SIGTERM or SIGINT, `stop` runs once, then the process exits 0, or 1
 * when `stop` fails or outlasts `timeoutMs`.
 */
export function exitOnSignals(log: ShutdownLogger, opts: { timeoutMs: number; name?: string; lateHint?: string }, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const who = opts.name ? `${opts.name} ` : '';
    log.info({ signal }, `${who}shutting down`);
    const timer = setTimeout(() => {
      log.error(`${who}shutdown took too long; exiting${opts.lateHint ? ` (${opts.lateHint})` : ''}`);
      process.exit(1);
    }, opts.timeoutMs);
    timer.unref();
    try {
      await stop();
      process.exit(0);
    } catch (err) {
      log.error({ err }, `error during ${who}shutdown`);
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void onSignal('SIGTERM'));
  process.on('SIGINT', () => void onSignal('SIGINT'));
}

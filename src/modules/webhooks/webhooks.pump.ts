import type { WebhooksService } from './webhooks.service.js';

export interface PumpLogger {
  warn(obj: object, msg: string): void;
}

/**
 * Sends due webhook deliveries in the worker: every `intervalMs`, and again at once while a round found something due
 * (a backlog drains at the receivers' pace, not one batch per tick; a failed attempt is due again only later). Retries are the deliveries' own schedule
 * (webhooks.service.ts); a failed round is logged and the next tick tries again.
 */
export function createDeliveryPump(webhooks: Pick<WebhooksService, 'deliverDue'>, opts: { intervalMs: number; log: PumpLogger }) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  async function drain() {
    for (;;) {
      const round = await webhooks.deliverDue();
      if (round.attempted === 0 || !timer) return;
    }
  }

  const tick = () => {
    running ??= drain()
      .catch((err: unknown) => opts.log.warn({ err: { message: err instanceof Error ? err.message : String(err) } }, 'webhook deliveries: round failed; retrying'))
      .finally(() => (running = undefined));
    return running;
  };

  return {
    start() {
      timer ??= setInterval(() => void tick(), opts.intervalMs);
      timer.unref();
    },
    /** Sends what is due now (tests, and a worker that wants no wait). */
    tick,
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}

import type { Engine } from "@tollgate/core";
import { WebhookWorker, type WebhookWorkerOptions } from "./worker.js";

export interface WebhookServiceOptions extends Omit<WebhookWorkerOptions, "store" | "clock"> {
  /**
   * How often due deliveries and usage summaries are polled; 0 turns the loop off (tests then call
   * `tick()`), and with it the immediate attempt after an alert is raised.
   * @default 1000
   */
  pollIntervalMs?: number;
  /** Where background failures go. */
  onError?: (error: unknown, what: string) => void;
}

export interface WebhookService {
  worker: WebhookWorker;
  /** One round by hand: usage summaries that are due, then due deliveries. */
  tick(): Promise<void>;
  /** Stops polling and waits for attempts in flight. */
  close(): Promise<void>;
}

/**
 * The background half of alerts and webhooks: a poll loop that emits due usage summaries and
 * delivers due webhook deliveries, plus an immediate poll whenever an alert with deliveries is stored.
 */
export function startWebhookService(engine: Engine, options: WebhookServiceOptions = {}): WebhookService {
  const worker = new WebhookWorker({ ...options, store: engine.store, clock: engine.clock });
  const onError = options.onError ?? (() => {});
  const interval = options.pollIntervalMs ?? 1000;
  let closed = false;
  const round = async () => {
    await engine.alerts.summaryTick().catch((e) => onError(e, "usage summaries"));
    await worker.tick().catch((e) => onError(e, "webhook deliveries"));
  };
  engine.alerts.onError = (e) => onError(e, "raising an alert");
  engine.alerts.pause = () => new Promise((resolve) => setImmediate(resolve));
  let timer: NodeJS.Timeout | undefined;
  if (interval > 0) {
    timer = setInterval(() => {
      if (!closed) void round();
    }, interval);
    timer.unref();
    engine.alerts.onDeliveries = () => {
      if (!closed) setImmediate(() => void worker.tick().catch((e) => onError(e, "webhook deliveries")));
    };
  }
  return {
    worker,
    tick: round,
    async close() {
      closed = true;
      if (timer) clearInterval(timer);
      engine.alerts.onDeliveries = () => {};
      await worker.close();
    },
  };
}

import {
  afterFailure,
  type BackoffPolicy,
  type Clock,
  DEFAULT_BACKOFF,
  type DueDelivery,
  type Store,
} from "@tollgate/core";
import { type SendResult, WebhookSender } from "./sender.js";

export interface WebhookWorkerOptions {
  store: Store;
  /** Decides when deliveries are due and the backoff (a ManualClock in tests). */
  clock: Clock;
  /**
   * The wall clock for `webhook-timestamp`: receivers reject a timestamp more than 5 minutes off
   * their own time, so it is the real time even when `clock` is a test's.
   * @default the system clock
   */
  wallClock?: Clock;
  /** Jitter source, [0, 1). @default Math.random */
  random?: () => number;
  /** Attempts in flight at once. @default 16 */
  concurrency?: number;
  /** Attempts in flight at once to one endpoint, so that one slow endpoint cannot take every slot. @default 4 */
  perEndpointConcurrency?: number;
  /** @default 10_000 */
  timeoutMs?: number;
  /** @default 65_536 */
  responseBytesMax?: number;
  /** @default false */
  allowPrivateAddresses?: boolean;
  policy?: BackoffPolicy;
}

export interface TickReport {
  attempted: number;
  delivered: number;
  retrying: number;
  failed: number;
}

interface Outcome {
  delivery: DueDelivery;
  result: SendResult;
  state: "delivered" | "pending" | "failed";
}

/**
 * Delivers the outbox: polls pending deliveries that are due, sends each (bounded concurrency, per
 * endpoint too), logs the attempt and schedules the next one with backoff and jitter. At-least-once:
 * a delivery stays pending until an attempt's outcome is stored, so a crash mid-attempt means it is
 * sent again (with the same `webhook-id`).
 */
export class WebhookWorker {
  private readonly sender: WebhookSender;
  private readonly inFlight = new Set<string>();
  private readonly perEndpoint = new Map<string, number>();
  private readonly running = new Set<Promise<Outcome>>();
  private claimTail: Promise<unknown> = Promise.resolve();
  private readonly concurrency: number;
  private readonly perEndpointMax: number;
  private readonly random: () => number;
  private readonly policy: BackoffPolicy;
  private readonly stopping = new AbortController();

  constructor(private readonly options: WebhookWorkerOptions) {
    const wall = options.wallClock ?? { now: () => Date.now() };
    this.sender = new WebhookSender({
      timeoutMs: options.timeoutMs ?? 10_000,
      responseBytesMax: options.responseBytesMax ?? 65_536,
      allowPrivateAddresses: options.allowPrivateAddresses ?? false,
      nowSeconds: () => Math.floor(wall.now() / 1000),
    });
    this.concurrency = options.concurrency ?? 16;
    this.perEndpointMax = options.perEndpointConcurrency ?? 4;
    this.random = options.random ?? Math.random;
    this.policy = options.policy ?? DEFAULT_BACKOFF;
  }

  /**
   * Starts an attempt for every due delivery there is a free slot for, and resolves when those
   * attempts are done. Ticks may overlap (the poll loop does not wait): claiming is serialized, and a
   * delivery in flight is never claimed twice.
   */
  async tick(): Promise<TickReport> {
    const run = this.claimTail.then(() => this.claim());
    this.claimTail = run.catch(() => undefined);
    const started = await run;
    const outcomes = await Promise.all(started);
    return {
      attempted: outcomes.length,
      delivered: outcomes.filter((o) => o.state === "delivered").length,
      retrying: outcomes.filter((o) => o.state === "pending").length,
      failed: outcomes.filter((o) => o.state === "failed").length,
    };
  }

  /** Attempts in flight. */
  get busy(): number {
    return this.inFlight.size;
  }

  /** Waits for the attempts in flight (each is bounded by the timeout). */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /**
   * Stops: attempts in flight are aborted and not logged, so their deliveries stay pending and are
   * sent again after the restart (at-least-once); nothing new is claimed.
   */
  async close(): Promise<void> {
    this.stopping.abort();
    await this.drain();
    await this.sender.close();
  }

  private async claim(): Promise<Promise<Outcome>[]> {
    const free = this.concurrency - this.inFlight.size;
    if (free <= 0 || this.stopping.signal.aborted) return [];
    // Read past the free slots: deliveries in flight, or of an endpoint at its cap, are skipped.
    const due = await this.options.store.dueDeliveries(
      this.options.clock.now(),
      free + this.inFlight.size + this.perEndpointMax * 8,
    );
    const started: Promise<Outcome>[] = [];
    for (const d of due) {
      if (started.length >= free) break;
      if (this.inFlight.has(d.delivery.id)) continue;
      const endpoint = `${d.workspaceId}\u0001${d.delivery.webhookId}`;
      const n = this.perEndpoint.get(endpoint) ?? 0;
      if (n >= this.perEndpointMax) continue;
      this.perEndpoint.set(endpoint, n + 1);
      this.inFlight.add(d.delivery.id);
      const p = this.attempt(d).finally(() => {
        this.inFlight.delete(d.delivery.id);
        const left = (this.perEndpoint.get(endpoint) ?? 1) - 1;
        if (left > 0) this.perEndpoint.set(endpoint, left);
        else this.perEndpoint.delete(endpoint);
        this.running.delete(p);
      });
      this.running.add(p);
      started.push(p);
    }
    return started;
  }

  private async attempt(d: DueDelivery): Promise<Outcome> {
    const { clock, store } = this.options;
    const attempt = d.delivery.attempts + 1;
    const at = clock.now();
    const result = await this.sender.send(d, this.stopping.signal);
    if (result.aborted) return { delivery: d, result, state: "pending" };
    const ok = result.status !== null && result.status >= 200 && result.status < 300;
    const next = ok
      ? { state: "delivered" as const, nextAttemptAt: null }
      : afterFailure(
          attempt - d.delivery.roundStartAttempts,
          d.delivery.roundStartedAt,
          clock.now(),
          this.random,
          this.policy,
        );
    await store.saveAttempt(
      d.workspaceId,
      d.delivery.id,
      { attempt, at, status: result.status, latencyMs: result.latencyMs, error: result.error },
      next,
    );
    return { delivery: d, result, state: next.state };
  }
}

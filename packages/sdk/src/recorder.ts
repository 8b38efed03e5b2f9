import type { Tollgate } from "./client.js";
import { TollgateApiError, TollgateUnavailableError } from "./errors.js";
import type { CheckEvent, EventInput } from "./types.js";

export interface RecorderOptions {
  /** A batch is sent as soon as this many events wait. @default 100 (the API takes up to 1,000) */
  maxEvents?: number;
  /** Buffered events are sent at least this often. @default 1000 */
  intervalMs?: number;
  /**
   * Events kept while Tollgate is unreachable; past it new events are dropped (and reported through
   * `onFailure`), so an outage cannot exhaust memory. @default 100000
   */
  maxBufferedEvents?: number;
  /** First retry delay after a failed flush; doubles up to `retryMaxMs`. @default 250 */
  retryMinMs?: number;
  /** @default 30000 */
  retryMaxMs?: number;
}

interface QueuedCommit {
  id: string;
  event: Partial<EventInput>;
  estimate: CheckEvent | undefined;
}

const BATCH_EVENTS_MAX = 1000;
/** Under the API's 1 MiB body limit, with room for the envelope. */
const BATCH_BYTES_MAX = 900_000;

/**
 * The buffer behind `record` (and commits that could not reach Tollgate). One flush runs at a time;
 * a failed batch goes back to the front of the buffer with the same event ids, so retries are
 * recognised as duplicates and never double-count.
 */
export class Recorder {
  private events: EventInput[] = [];
  private readonly commits = new Map<string, QueuedCommit>();
  private flushing: Promise<void> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private retryAt = 0;
  private retryDelay: number;
  private exitHook = false;
  private closed = false;
  readonly maxEvents: number;
  readonly intervalMs: number;
  readonly maxBuffered: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;

  constructor(
    private readonly client: Tollgate,
    options: RecorderOptions,
    private readonly flushOnExit: boolean,
  ) {
    this.maxEvents = Math.min(options.maxEvents ?? 100, BATCH_EVENTS_MAX);
    this.intervalMs = options.intervalMs ?? 1000;
    this.maxBuffered = options.maxBufferedEvents ?? 100_000;
    this.retryMinMs = options.retryMinMs ?? 250;
    this.retryMaxMs = options.retryMaxMs ?? 30_000;
    this.retryDelay = this.retryMinMs;
  }

  /** Events and commits waiting to be sent. */
  get pending(): number {
    return this.events.length + this.commits.size;
  }

  enqueue(event: EventInput): void {
    if (this.events.length >= this.maxBuffered) {
      // The newest is refused rather than the oldest dropped: a batch in flight is the buffer's front.
      this.client.report({
        operation: "record",
        error: new Error(`buffer full (${this.maxBuffered} events): event ${event.id} dropped`),
        action: "dropped",
      });
      return;
    }
    this.events.push(event);
    this.started();
    if (this.events.length >= this.maxEvents && Date.now() >= this.retryAt) this.background();
  }

  enqueueCommit(id: string, event: Partial<EventInput>, estimate: CheckEvent | undefined): void {
    this.commits.set(id, { id, event, estimate });
    this.started();
  }

  flush(): Promise<void> {
    if (this.flushing) {
      // A flush in progress may have taken its batch before the caller's last events arrived.
      return this.flushing.then(() => (this.pending > 0 ? this.flush() : undefined));
    }
    const run = this.drain().then(
      () => {
        this.retryDelay = this.retryMinMs;
        this.retryAt = 0;
      },
      (error) => {
        this.retryAt = Date.now() + this.retryDelay;
        this.retryDelay = Math.min(this.retryDelay * 2, this.retryMaxMs);
        throw error;
      },
    );
    this.flushing = run.finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  private started(): void {
    if (!this.timer && !this.closed) {
      this.timer = setInterval(() => {
        if (this.pending > 0 && !this.flushing && Date.now() >= this.retryAt) this.background();
      }, this.intervalMs);
      (this.timer as { unref?: () => void }).unref?.();
    }
    const proc = (globalThis as { process?: { once?: (e: string, f: () => void) => void } }).process;
    if (this.flushOnExit && !this.exitHook && typeof proc?.once === "function") {
      this.exitHook = true;
      proc.once("beforeExit", () => {
        this.exitHook = false;
        if (this.pending > 0) this.background();
      });
    }
  }

  private background(): void {
    this.flush().catch(() => {
      // reported through onFailure; the events stay buffered for the next attempt
    });
  }

  private async drain(): Promise<void> {
    for (const c of [...this.commits.values()]) {
      try {
        await this.client.request(
          "POST",
          `/v1/reservations/${encodeURIComponent(c.id)}/commit`,
          { event: c.event },
          {},
        );
      } catch (error) {
        if (error instanceof TollgateUnavailableError) {
          this.client.report({ operation: "commit", error, action: "queued" });
          throw error;
        }
        // The reservation is gone (expired and swept, released, another workspace): record the usage as
        // a plain event with the id the commit would have used, so it is still counted exactly once.
        if (
          error instanceof TollgateApiError &&
          (error.status === 404 || error.status === 409) &&
          c.estimate
        ) {
          this.events.unshift(this.client.fullEvent(c.id, c.estimate, c.event));
        } else {
          this.client.report({ operation: "commit", error, action: "dropped" });
        }
      }
      this.commits.delete(c.id);
    }
    while (this.events.length > 0) {
      const batch = this.takeBatch();
      try {
        await this.client.request("POST", "/v1/events", { events: batch });
        this.events.splice(0, batch.length);
      } catch (error) {
        if (error instanceof TollgateUnavailableError) {
          this.client.report({ operation: "record", error, action: "queued" });
          throw error;
        }
        // One bad event refuses the whole batch (all-or-nothing): drop that one, keep the others.
        const index = error instanceof TollgateApiError ? error.details?.index : undefined;
        if (typeof index === "number" && index >= 0 && index < batch.length) {
          this.events.splice(index, 1);
          this.client.report({ operation: "record", error, action: "dropped" });
          continue;
        }
        // Auth or configuration problems: keep everything and let the caller see it.
        this.client.report({ operation: "record", error, action: "queued" });
        throw error;
      }
    }
  }

  private takeBatch(): EventInput[] {
    let bytes = 0;
    let n = 0;
    while (n < this.events.length && n < BATCH_EVENTS_MAX) {
      const size = JSON.stringify(this.events[n]).length + 1;
      if (n > 0 && bytes + size > BATCH_BYTES_MAX) break;
      bytes += size;
      n++;
    }
    return this.events.slice(0, n);
  }
}

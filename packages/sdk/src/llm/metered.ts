import type { FailMode, Tollgate } from "../client.js";
import { TollgateLimitError } from "../errors.js";
import type { Dimensions, Values } from "../types.js";

export interface LlmMeterOptions {
  tollgate: Tollgate;
  /** Whose usage the calls are. A function is asked at every call. */
  customer: string | (() => string);
  /** Extra dimensions (feature, workflow, run, key…); `model` and `provider` are added. */
  dimensions?: Dimensions | (() => Dimensions);
  /** @default "llm.completion" */
  eventType?: string;
  /** How long the estimate is held if the process dies mid-call. @default 300 */
  ttlSeconds?: number;
  /** Overrides the client's fail mode for these calls. */
  failMode?: FailMode;
  timeoutMs?: number;
  /** Output tokens to reserve when a call sets no maximum. @default 0 */
  defaultMaxOutputTokens?: number;
}

const resolve = <T>(v: T | (() => T)): T => (typeof v === "function" ? (v as () => T)() : v);

/** A reserved LLM call: commit the actual usage once, or release the hold. */
export class MeteredCall {
  private settled = false;
  constructor(
    private readonly options: LlmMeterOptions,
    readonly reservationId: string,
    private readonly dimensions: Dimensions,
  ) {}

  async commit(values: Values, model?: string): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    const dimensions = model ? { ...this.dimensions, model } : this.dimensions;
    try {
      await this.options.tollgate.commit(this.reservationId, { values, dimensions });
    } catch (error) {
      this.options.tollgate.report({ operation: "commit", error, action: "dropped" });
    }
  }

  async release(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    try {
      await this.options.tollgate.release(this.reservationId);
    } catch (error) {
      this.options.tollgate.report({ operation: "release", error, action: "dropped" });
    }
  }
}

/** Check and reserve an estimate; a denial throws TollgateLimitError and the provider is never called. */
export async function admit(
  options: LlmMeterOptions,
  provider: string,
  model: string | undefined,
  estimate: Values,
): Promise<MeteredCall> {
  const dimensions: Dimensions = { ...(options.dimensions ? resolve(options.dimensions) : {}), provider };
  if (model) dimensions.model = model;
  const result = await options.tollgate.reserve(
    {
      type: options.eventType ?? "llm.completion",
      customer: resolve(options.customer),
      values: estimate,
      dimensions,
    },
    {
      ttlSeconds: options.ttlSeconds ?? 300,
      ...(options.failMode ? { failMode: options.failMode } : {}),
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    },
  );
  if (!result.allowed || !result.reservation) throw new TollgateLimitError(result);
  return new MeteredCall(options, result.reservation.id, dimensions);
}

/**
 * Replaces a provider stream's async iterator with one that shows each chunk to `observe` (which says
 * whether to pass it on) and calls `settle` once when the stream ends, fails, or is abandoned.
 */
export function instrument<T>(
  stream: AsyncIterable<T>,
  observe: (chunk: T) => boolean,
  settle: (outcome: "done" | "error" | "abandoned") => Promise<void>,
): void {
  const original = stream[Symbol.asyncIterator].bind(stream);
  (stream as { [Symbol.asyncIterator]: () => AsyncIterator<T> })[Symbol.asyncIterator] = () => {
    const generator = async function* () {
      let outcome: "done" | "error" | "abandoned" = "abandoned";
      try {
        const it = original();
        while (true) {
          const next = await it.next();
          if (next.done) break;
          if (observe(next.value)) yield next.value;
        }
        outcome = "done";
      } catch (error) {
        outcome = "error";
        throw error;
      } finally {
        await settle(outcome);
      }
    };
    return generator();
  };
}

/** Wraps the methods named by dotted paths ("chat.completions.create") of a client, leaving the rest. */
export function interceptPaths<T extends object>(
  client: T,
  handlers: Record<string, (original: (...args: unknown[]) => unknown, ...args: unknown[]) => unknown>,
  prefix = "",
): T {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof prop !== "string") return value;
      const path = prefix ? `${prefix}.${prop}` : prop;
      const handler = handlers[path];
      if (handler && typeof value === "function") {
        return (...args: unknown[]) => handler((...a: unknown[]) => value.apply(target, a), ...args);
      }
      if (value && typeof value === "object" && Object.keys(handlers).some((h) => h.startsWith(`${path}.`))) {
        return interceptPaths(value as object, handlers, path);
      }
      return value;
    },
  });
}

// biome-ignore lint/suspicious/noExplicitAny: handlers take the provider's own argument types
type Handler = (original: (...args: any[]) => Promise<any>, ...args: any[]) => Promise<any>;

export function interceptPathsTyped<T extends object>(client: T, handlers: Record<string, Handler>): T {
  return interceptPaths(client, handlers as never);
}

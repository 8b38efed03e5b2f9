import { monitorEventLoopDelay } from "node:perf_hooks";
import { TollgateError } from "@tollgate/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

/**
 * Load shedding: past what the process can serve, a request is answered at once with 503
 * UNAVAILABLE (API.md shape, `Retry-After`) instead of queueing, so memory stays bounded, latency of
 * the admitted requests stays low, and the server recovers by itself when the load drops.
 * `/health` and `/metrics` are never shed. (The idea of @fastify/under-pressure, with the API's error shape.)
 */
export interface OverloadOptions {
  /**
   * Requests in progress at once; the next one is shed.
   * @default 4096
   */
  maxInFlight?: number;
  /**
   * Event-loop delay (ms, the worst in the last sampling interval) past which requests are shed:
   * the process is already behind. 0 turns it off (the default: one long synchronous request, such
   * as a large meter query, would otherwise shed the requests right after it).
   * @default 0
   * @example 1000
   */
  maxEventLoopDelayMs?: number;
  /** @default 1 */
  retryAfterSeconds?: number;
}

export const DEFAULT_OVERLOAD: Required<OverloadOptions> = {
  maxInFlight: 4096,
  maxEventLoopDelayMs: 0,
  retryAfterSeconds: 1,
};

export function installOverloadProtection(
  app: FastifyInstance,
  options: OverloadOptions,
  onShed: (reason: "in_flight" | "event_loop") => void,
): void {
  const o = { ...DEFAULT_OVERLOAD, ...options };
  let inFlight = 0;
  let lagging = false;
  // The event loop's delay is sampled only when it can shed (maxEventLoopDelayMs > 0): otherwise the
  // sampling timer (every 20 ms) and the histogram's reset (every 500 ms) would run for nothing.
  if (o.maxEventLoopDelayMs > 0) {
    const histogram = monitorEventLoopDelay({ resolution: 20 });
    histogram.enable();
    const timer = setInterval(() => {
      lagging = histogram.max / 1e6 > o.maxEventLoopDelayMs;
      histogram.reset();
    }, 500);
    timer.unref();
    app.addHook("onClose", async () => {
      clearInterval(timer);
      histogram.disable();
    });
  }

  const counted = Symbol("overload.counted");
  // Callback hooks (not async ones): each async hook costs every request a promise and a microtask.
  app.addHook("onRequest", (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    // Health checks and metrics scrapes are how an operator sees the overload: never shed.
    if (request.url === "/health" || request.url === "/metrics") return done();
    const reason = inFlight >= o.maxInFlight ? "in_flight" : lagging ? "event_loop" : null;
    if (reason) {
      onShed(reason);
      reply.header("retry-after", String(o.retryAfterSeconds));
      return done(
        new TollgateError("UNAVAILABLE", "the server is overloaded; retry shortly", {
          reason,
          retry_after: o.retryAfterSeconds,
        }),
      );
    }
    inFlight++;
    (request as unknown as Record<symbol, boolean>)[counted] = true;
    done();
  });
  const release = (request: FastifyRequest) => {
    const r = request as unknown as Record<symbol, boolean>;
    if (r[counted]) {
      r[counted] = false;
      inFlight--;
    }
  };
  app.addHook("onResponse", (request, _reply, done) => {
    release(request);
    done();
  });
  app.addHook("onRequestAbort", (request, done) => {
    release(request);
    done();
  });
}

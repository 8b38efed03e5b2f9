import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Prometheus metrics of one server process. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "tollgate_" });
  return {
    registry,
    httpRequests: new Counter({
      name: "tollgate_http_requests_total",
      help: "HTTP requests answered, by route and status",
      labelNames: ["method", "route", "status"] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "tollgate_http_request_duration_seconds",
      help: "Time to answer an HTTP request",
      labelNames: ["route"] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    }),
    eventsAccepted: new Counter({
      name: "tollgate_events_accepted_total",
      help: "Usage events stored",
      registers: [registry],
    }),
    requestsShed: new Counter({
      name: "tollgate_requests_shed_total",
      help: "Requests answered 503 at once because the server was past capacity",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    eventsUnpriced: new Counter({
      name: "tollgate_events_unpriced_total",
      help: "Usage events stored without a cost: their model has no price (unknown-model policy tokens_only)",
      registers: [registry],
    }),
    checksDegraded: new Counter({
      name: "tollgate_checks_degraded_total",
      help: "Checks answered by each limit's fail_mode because the limit store (Redis) was unreachable, by answer",
      labelNames: ["allowed"] as const,
      registers: [registry],
    }),
    eventsDuplicate: new Counter({
      name: "tollgate_events_duplicate_total",
      help: "Usage events received again with an id already stored (counted once)",
      registers: [registry],
    }),
  };
}

/**
 * `tollgate_limit_store_up`: 1 while the shared limit store (Redis) is connected, 0 while checks are
 * answered degraded. Only registered when the limiter has such a store.
 */
export function limitStoreGauge(metrics: Metrics, connected: () => boolean): void {
  if (metrics.registry.getSingleMetric("tollgate_limit_store_up")) return;
  new Gauge({
    name: "tollgate_limit_store_up",
    help: "Whether the shared limit store (Redis) is reachable (1) or checks are answered by fail_mode (0)",
    registers: [metrics.registry],
    collect() {
      this.set(connected() ? 1 : 0);
    },
  });
}

export type Metrics = ReturnType<typeof createMetrics>;

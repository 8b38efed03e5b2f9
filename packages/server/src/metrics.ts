import { Counter, collectDefaultMetrics, Gauge, type Histogram, Registry } from "prom-client";

const DURATION_NAME = "tollgate_http_request_duration_seconds";
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

/** One (method, route, status) of `tollgate_http_requests_total`: requests not yet handed to prom-client. */
interface StatusCell {
  method: string;
  route: string;
  status: number;
  pending: number;
}

/** One route's requests: its status cells and `tollgate_http_request_duration_seconds`'s buckets. */
interface RouteTally {
  labels: { route: string };
  cells: StatusCell[];
  /** Observations per bucket (not cumulative), DURATION_BUCKETS order; past the last: only in `count`. */
  buckets: number[];
  sum: number;
  count: number;
}

/**
 * The HTTP metrics, counted per request in plain numbers: prom-client's `inc(labels)` and
 * `observe(labels, v)` build, validate and hash a label string on every call, a few µs per request.
 * `tollgate_http_requests_total` stays a prom-client Counter that receives the pending counts when it
 * is collected (at each scrape); `tollgate_http_request_duration_seconds` answers prom-client's metric
 * interface itself (as prom-client's own cluster aggregation does), with the values a prom-client
 * Histogram with the same buckets would give (packages/server/test/metrics.test.ts compares the two).
 */
export class HttpMetrics {
  private readonly routes = new Map<string, RouteTally>();
  /** Every status cell, in the order first seen (the order prom-client lists them in). */
  private readonly cells: StatusCell[] = [];
  readonly requests: Counter<"method" | "route" | "status">;

  constructor(registry: Registry) {
    const cells = this.cells;
    this.requests = new Counter({
      name: "tollgate_http_requests_total",
      help: "HTTP requests answered, by route and status",
      labelNames: ["method", "route", "status"] as const,
      registers: [registry],
      collect() {
        for (const cell of cells) {
          if (cell.pending === 0) continue;
          this.inc({ method: cell.method, route: cell.route, status: cell.status }, cell.pending);
          cell.pending = 0;
        }
      },
    });
    const name = DURATION_NAME;
    const help = "Time to answer an HTTP request";
    const get = async () => ({
      name,
      help,
      type: "histogram",
      aggregator: "sum",
      values: this.durationValues(),
    });
    // The registry's type lists prom-client's classes; it only calls get() (and reset()).
    const duration = { name, help, type: "histogram", aggregator: "sum", get, reset: () => this.reset() };
    registry.registerMetric(duration as unknown as Histogram<"route">);
  }

  /** One answered request (the hot path: no allocation once the route and status were seen). */
  record(method: string, route: string, status: number, seconds: number): void {
    let tally = this.routes.get(route);
    if (tally === undefined) {
      tally = { labels: { route }, cells: [], buckets: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.routes.set(route, tally);
    }
    const cells = tally.cells;
    let cell: StatusCell | undefined;
    for (let i = 0; i < cells.length; i++) {
      const c = cells[i]!;
      if (c.status === status && c.method === method) {
        cell = c;
        break;
      }
    }
    if (cell === undefined) {
      cell = { method, route, status, pending: 0 };
      cells.push(cell);
      this.cells.push(cell);
    }
    cell.pending++;
    // prom-client's Histogram: the first bucket whose bound is >= the value; past the last, none.
    for (let i = 0; i < DURATION_BUCKETS.length; i++) {
      if (seconds <= DURATION_BUCKETS[i]!) {
        tally.buckets[i]!++;
        break;
      }
    }
    tally.sum += seconds;
    tally.count++;
  }

  /** The histogram's samples as prom-client's Histogram.get() lists them. */
  private durationValues() {
    const metricName = DURATION_NAME;
    const values: {
      labels: Record<string, string | number>;
      value: number;
      metricName: string;
      exemplar?: null;
    }[] = [];
    for (const tally of this.routes.values()) {
      if (tally.count === 0) continue;
      let acc = 0;
      for (let i = 0; i < DURATION_BUCKETS.length; i++) {
        acc += tally.buckets[i]!;
        values.push({
          labels: { le: DURATION_BUCKETS[i]!, ...tally.labels },
          value: acc,
          metricName: `${metricName}_bucket`,
          exemplar: null,
        });
      }
      values.push({
        labels: { le: "+Inf", ...tally.labels },
        value: tally.count,
        metricName: `${metricName}_bucket`,
        exemplar: null,
      });
      values.push({ labels: { ...tally.labels }, value: tally.sum, metricName: `${metricName}_sum` });
      values.push({ labels: { ...tally.labels }, value: tally.count, metricName: `${metricName}_count` });
    }
    return values;
  }

  private reset(): void {
    for (const tally of this.routes.values()) {
      tally.buckets.fill(0);
      tally.sum = 0;
      tally.count = 0;
    }
  }
}

/** Prometheus metrics of one server process. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "tollgate_" });
  const http = new HttpMetrics(registry);
  return {
    registry,
    http,
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

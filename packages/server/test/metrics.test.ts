import fc from "fast-check";
import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { HttpMetrics } from "../src/metrics.js";

/** The metrics as prom-client's Counter and Histogram counted them before HttpMetrics (per call). */
function reference() {
  const registry = new Registry();
  const requests = new Counter({
    name: "tollgate_http_requests_total",
    help: "HTTP requests answered, by route and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "tollgate_http_request_duration_seconds",
    help: "Time to answer an HTTP request",
    labelNames: ["route"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  return {
    registry,
    record(method: string, route: string, status: number, seconds: number) {
      requests.inc({ method, route, status });
      duration.observe({ route }, seconds);
    },
  };
}

const request = fc.record({
  method: fc.constantFrom("GET", "POST", "PUT", "DELETE"),
  route: fc.constantFrom("/v1/check", "/v1/customers/:id", "unmatched", '/odd "route"\\'),
  status: fc.constantFrom(200, 201, 400, 401, 404, 429, 500, 503),
  // Bucket bounds exactly, values between them, past the last bound, zero.
  seconds: fc.oneof(
    fc.constantFrom(0, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 7.5),
    fc.double({ min: 0, max: 10, noNaN: true }),
  ),
});

describe("HttpMetrics", () => {
  it("exposes what prom-client's Counter and Histogram give for the same requests, scrape after scrape", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(request, { maxLength: 40 }), { minLength: 1, maxLength: 4 }),
        async (batches) => {
          const ref = reference();
          const registry = new Registry();
          const http = new HttpMetrics(registry);
          for (const batch of batches) {
            for (const r of batch) {
              ref.record(r.method, r.route, r.status, r.seconds);
              http.record(r.method, r.route, r.status, r.seconds);
            }
            expect(await registry.metrics()).toBe(await ref.registry.metrics());
            expect(await registry.getMetricsAsJSON()).toEqual(await ref.registry.getMetricsAsJSON());
          }
        },
      ),
    );
  });
});

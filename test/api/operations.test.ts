import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";

/** /health and /metrics. */

let t: TestServer;
let serviceKey: string;
beforeAll(async () => {
  // A tight API rate limit, so that /health can be shown to stay open when a key is exhausted.
  t = await startTestServer({ apiRateLimit: { limit: 3, windowSeconds: 3600 } });
  const res = await t.api("POST", "/v1/api-keys", { name: "metrics", role: "service" });
  expect(res.status, res.text).toBe(201);
  serviceKey = res.body.key;
});
afterAll(() => t.close());

/** The value of one Prometheus sample, e.g. `tollgate_events_accepted_total`; 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3]);
  }
  return total;
}

const metrics = async () => {
  const res = await t.api("GET", "/metrics", undefined, { key: null });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  return res.text;
};

describe("/health", () => {
  it("answers without a key and is never rate limited", async () => {
    let limited = false;
    for (let i = 0; i < 5 && !limited; i++) limited = (await t.api("GET", "/v1/customers")).status === 429;
    expect(limited).toBe(true);
    for (let i = 0; i < 10; i++) {
      const res = await t.api("GET", "/health");
      expect(res.status, res.text).toBe(200);
      expect(res.headers.get("x-ratelimit-limit")).toBeNull();
    }
    for (let i = 0; i < 10; i++) {
      const res = await t.api("GET", "/health", undefined, { key: null });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: "ok" });
      expect(res.headers.get("x-ratelimit-limit")).toBeNull();
      expect(res.headers.get("retry-after")).toBeNull();
    }
    // With a key (even a bad one) it is still public.
    expect((await t.api("GET", "/health", undefined, { key: "tg_wrong" })).status).toBe(200);
  });
});

describe("/metrics", () => {
  it("exposes Prometheus text with request and event counters", async () => {
    const text = await metrics();
    expect(text).toContain("# TYPE tollgate_http_requests_total counter");
    expect(text).toContain("# TYPE tollgate_events_accepted_total counter");
  });

  it("counts accepted events and answered requests", async () => {
    const before = await metrics();
    const events = Array.from({ length: 7 }, (_, i) => ({
      id: `m${i}`,
      type: "llm.completion",
      customer: "c",
    }));
    const res = await t.api("POST", "/v1/events", { events }, { key: serviceKey });
    expect(res.status, res.text).toBe(202);
    const after = await metrics();
    expect(
      sample(after, "tollgate_events_accepted_total") - sample(before, "tollgate_events_accepted_total"),
    ).toBe(7);
    const route = { method: "POST", route: "/v1/events", status: "202" };
    expect(
      sample(after, "tollgate_http_requests_total", route) -
        sample(before, "tollgate_http_requests_total", route),
    ).toBe(1);
    // A retry is not accepted again.
    expect((await t.api("POST", "/v1/events", { events }, { key: serviceKey })).status).toBe(202);
    expect(sample(await metrics(), "tollgate_events_accepted_total")).toBe(
      sample(after, "tollgate_events_accepted_total"),
    );
  });
});

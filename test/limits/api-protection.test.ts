import { afterEach, describe, expect, it } from "vitest";
import { type ApiResponse, call, expectError, startTestServer, type TestServer } from "../support/server.js";

// The API's own protection is a token bucket per API key on real time (Date.now()): `limit` requests
// at once, refilled at limit / window. With 5 per 60 s one token comes back every 12 s, far longer
// than these tests take, so no test waits for a refill.
const LIMIT = 5;
const WINDOW_S = 60;
const REFILL_S = WINDOW_S / LIMIT;

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function protectedServer(apiRateLimit: { limit: number; windowSeconds: number } | null | undefined) {
  const t = await startTestServer(apiRateLimit === undefined ? {} : { apiRateLimit });
  servers.push(t);
  return t;
}

const RATE_HEADERS = [
  "x-ratelimit-limit",
  "x-ratelimit-remaining",
  "x-ratelimit-reset",
  "x-ratelimit-reset-after",
  "ratelimit-policy",
  "ratelimit",
];

/** Checks every rate-limit header of an answer after `used` of the key's LIMIT tokens were spent. */
function expectRateHeaders(res: ApiResponse, used: number, sentAt: number) {
  const h = (name: string) => res.headers.get(name);
  const remaining = Math.max(0, LIMIT - used);
  expect(h("x-ratelimit-limit")).toBe(String(LIMIT));
  expect(h("x-ratelimit-remaining")).toBe(String(remaining));
  expect(h("ratelimit-policy")).toBe(`"api";q=${LIMIT};w=${WINDOW_S}`);
  // Full again once every spent token has come back: used × 12 s from the first request (a few ms ago).
  const resetAfter = Number(h("x-ratelimit-reset-after"));
  const full = Math.min(used, LIMIT) * REFILL_S;
  expect(resetAfter).toBeGreaterThanOrEqual(full - 1);
  expect(resetAfter).toBeLessThanOrEqual(full);
  const reset = Number(h("x-ratelimit-reset"));
  expect(Number.isInteger(reset)).toBe(true);
  expect(reset).toBeGreaterThanOrEqual(Math.floor(sentAt / 1000) + resetAfter - 1);
  expect(reset).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + resetAfter + 1);
  expect(h("ratelimit")).toBe(`"api";r=${remaining};t=${resetAfter}`);
}

describe("API protection", () => {
  it("every /v1 answer carries the rate-limit headers; past the limit 429 RATE_LIMIT_EXCEEDED with Retry-After", async () => {
    const t = await protectedServer({ limit: LIMIT, windowSeconds: WINDOW_S });
    const steps: [string, string, unknown, number][] = [
      ["POST", "/v1/api-keys", { name: "svc", role: "service" }, 201],
      [
        "PUT",
        "/v1/meters/tokens",
        { event_type: "llm.completion", aggregation: "sum", value: "tokens" },
        201,
      ],
      ["PUT", "/v1/meters/bad", { aggregation: "sum" }, 400],
      ["GET", "/v1/limits/nope", undefined, 404],
      ["GET", "/v1/customers", undefined, 200],
    ];
    let svcKey = "";
    for (const [i, [method, path, body, status]] of steps.entries()) {
      const sentAt = Date.now();
      const res = await t.api(method, path, body);
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(status);
      expectRateHeaders(res, i + 1, sentAt);
      expect(res.headers.get("retry-after")).toBeNull();
      if (i === 0) svcKey = res.body.key;
    }

    const sentAt = Date.now();
    const limited = await t.api("GET", "/v1/customers");
    const err = expectError(limited, 429, "RATE_LIMIT_EXCEEDED");
    expectRateHeaders(limited, LIMIT, sentAt);
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(REFILL_S - 1);
    expect(retryAfter).toBeLessThanOrEqual(REFILL_S);
    expect(err.details).toMatchObject({ limit: LIMIT, remaining: 0, retry_after: retryAfter });
    const resetAt = Date.parse(String(err.details?.reset_at));
    expect(resetAt).toBeGreaterThan(sentAt);
    // Whole seconds, like X-RateLimit-Reset: at most one second past the exact instant.
    expect(resetAt % 1000).toBe(0);
    expect(resetAt).toBeLessThanOrEqual(Date.now() + LIMIT * REFILL_S * 1000 + 1000);

    // Another key has its own allowance.
    const svc = await call(t.url, "GET", "/v1/customers", undefined, { key: svcKey });
    expect(svc.status).toBe(200);
    expectRateHeaders(svc, 1, sentAt);
  });

  it("a request refused by the protection changes nothing", async () => {
    const t = await protectedServer({ limit: LIMIT, windowSeconds: WINDOW_S });
    const writer = (await t.api("POST", "/v1/api-keys", { name: "writer", role: "service" })).body.key;
    const reader = (await t.api("POST", "/v1/api-keys", { name: "reader", role: "service" })).body.key;
    expect((await t.api("PUT", "/v1/meters/n", { event_type: "x", aggregation: "count" })).status).toBe(201);
    const post = (i: number) =>
      call(
        t.url,
        "POST",
        "/v1/events",
        { events: [{ id: `e${i}`, type: "x", customer: "acme" }] },
        { key: writer },
      );
    for (let i = 1; i <= LIMIT; i++) expect((await post(i)).status).toBe(202);
    expectError(await post(LIMIT + 1), 429, "RATE_LIMIT_EXCEEDED");
    const q = await call(t.url, "GET", "/v1/meters/n/query?customer=acme", undefined, { key: reader });
    expect(q.status).toBe(200);
    expect(q.body.data[0].value).toBe(LIMIT);
  });

  it("/health is never limited and carries no rate-limit headers", async () => {
    const t = await protectedServer({ limit: 1, windowSeconds: 60 });
    expect((await t.api("GET", "/v1/customers")).status).toBe(200);
    expectError(await t.api("GET", "/v1/customers"), 429, "RATE_LIMIT_EXCEEDED");
    for (let i = 0; i < 3 * LIMIT; i++) {
      const res = await t.api("GET", "/health", undefined, { key: null });
      expect(res.status).toBe(200);
      for (const h of [...RATE_HEADERS, "retry-after"]) expect(res.headers.get(h), h).toBeNull();
    }
    // With the admin key presented too.
    const withKey = await t.api("GET", "/health");
    expect(withKey.status).toBe(200);
    expect(withKey.headers.get("x-ratelimit-limit")).toBeNull();
  });

  it("is on by default (5000 per second per key) and off with apiRateLimit: null", async () => {
    const on = await protectedServer(undefined);
    const a = await on.api("GET", "/v1/customers");
    expect(a.headers.get("x-ratelimit-limit")).toBe("5000");
    expect(a.headers.get("ratelimit-policy")).toBe('"api";q=5000;w=1');
    const off = await protectedServer(null);
    const b = await off.api("GET", "/v1/customers");
    expect(b.status).toBe(200);
    for (const h of RATE_HEADERS) expect(b.headers.get(h), h).toBeNull();
  });
});

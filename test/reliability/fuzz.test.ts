import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";

/**
 * Bad input, 10,000 requests: valid bodies of every writing route, each broken in one way (wrong
 * type, negative, fractional or huge number, unknown field, over-long or control-character strings,
 * deep nesting), plus malformed JSON, wrong content types and oversized bodies. Every answer must be
 * 4xx in the API.md shape, never 5xx, and the stored state must not change.
 */
let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ apiRateLimit: null });
  await t.api("PUT", "/v1/meters/tokens", {
    event_type: "llm.completion",
    aggregation: "sum",
    value: "tokens_in",
  });
  await t.api("PUT", "/v1/plans/pro", { name: "Pro" });
  await t.api("PUT", "/v1/customers/acme", { name: "Acme", plan: "pro" });
  await t.api("POST", "/v1/customers/acme/balance/credits", { amount: 10, idempotency_key: "c" });
});
afterAll(() => t.close());

const VALID: { method: string; url: string; body: Record<string, unknown> }[] = [
  {
    method: "POST",
    url: "/v1/events",
    body: {
      events: [
        {
          id: "fz",
          type: "llm.completion",
          customer: "acme",
          timestamp: "2026-11-23T10:00:00Z",
          values: { tokens_in: 5, tokens_out: 3 },
          dimensions: { model: "gpt-4o" },
        },
      ],
    },
  },
  {
    method: "POST",
    url: "/v1/check",
    body: {
      event: { type: "llm.completion", customer: "acme", values: { tokens_in: 5 } },
      reserve: { ttl_seconds: 60 },
    },
  },
  { method: "PUT", url: "/v1/customers/fz", body: { name: "F", plan: "pro", timezone: "Europe/Berlin" } },
  { method: "PUT", url: "/v1/meters/fz", body: { event_type: "x", aggregation: "sum", value: "tokens_in" } },
  {
    method: "PUT",
    url: "/v1/limits/fz",
    body: { customer: "acme", meter: "tokens", amount: 100, period: "month" },
  },
  {
    method: "PUT",
    url: "/v1/rate-limits/fz",
    body: { customer: "acme", scope: "customer", limit: 10, window_seconds: 60, algorithm: "token_bucket" },
  },
  { method: "PUT", url: "/v1/plans/fz", body: { name: "F", retention_days: 30 } },
  { method: "POST", url: "/v1/customers/acme/balance/credits", body: { amount: 5, idempotency_key: "fz" } },
  { method: "POST", url: "/v1/customers/acme/balance/debits", body: { amount: 1, idempotency_key: "fz" } },
  { method: "PUT", url: "/v1/prices/fz-model", body: { input: "1.5", output: "2" } },
  { method: "PUT", url: "/v1/balance-rules/fz", body: { meter: "tokens", credits_per_unit: 1, unit: 1000 } },
];

/**
 * A value no schema takes where the original value was. (No null: some fields are nullable; no
 * non-negative number for a string: prices take numbers too.)
 */
function badValueFor(original: unknown): fc.Arbitrary<unknown> {
  const deep = fc.integer({ min: 50, max: 2000 }).map((n) => {
    let v: unknown = 1;
    for (let i = 0; i < n; i++) v = { a: v };
    return v;
  });
  const common = [
    fc.integer({ max: -1 }),
    fc.boolean(),
    fc.array(fc.integer(), { minLength: 1, maxLength: 3 }),
    deep,
  ];
  if (typeof original === "number") {
    return fc.oneof(
      ...common,
      fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
      fc.constantFrom(2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e308, -0.5),
      fc.string().map((x) => `x${x}`),
    );
  }
  return fc.oneof(...common);
}

/** Paths to every leaf of a JSON value (object keys and array indexes). */
function leaves(v: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== "object") return [path];
  const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v);
  return entries.flatMap(([k, x]) => leaves(x, [...path, k]));
}

function setAt(obj: unknown, path: (string | number)[], value: unknown): unknown {
  const copy = structuredClone(obj) as Record<string | number, unknown>;
  let cur = copy;
  for (let i = 0; i < path.length - 1; i++) cur = cur[path[i]!] as Record<string | number, unknown>;
  cur[path[path.length - 1]!] = value;
  return copy;
}

const brokenJson = fc.record({
  target: fc.constantFrom(...VALID),
  mutation: fc.oneof(
    // One leaf of the body gets a value of the wrong kind.
    fc.nat().chain((i) => fc.tuple(fc.constant("leaf" as const), fc.constant(i), fc.anything())),
    fc.tuple(
      fc.constant("unknown-field" as const),
      fc.string({ minLength: 1, maxLength: 20 }),
      fc.anything(),
    ),
    fc.tuple(fc.constant("raw" as const), fc.nat(), fc.anything()),
  ),
  seed: fc.integer(),
});

const RAW_BODIES = [
  "{",
  "[]",
  "null",
  '{"events": [}',
  "\u0000\u0001",
  '{"a":1,}',
  "true",
  '"string"',
  "{".repeat(5000),
  `{"events":[${'{"id":"x"},'.repeat(3)}]}`,
];

async function stateDigest(): Promise<unknown> {
  const db = (t.server.store as unknown as { db: { prepare(s: string): { get(): unknown } } }).db;
  return db
    .prepare(
      `SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM records) AS records,
              (SELECT coalesce(sum(updated_at), 0) FROM records) AS updated,
              (SELECT count(*) FROM ledger_entries) AS ledger, (SELECT count(*) FROM reservations) AS rsv,
              (SELECT count(*) FROM api_keys) AS keys`,
    )
    .get();
}

describe("fuzzing the API with bad input", () => {
  it("10,000 broken requests: each a 4xx in the API.md shape, and nothing stored changes", async () => {
    const before = await stateDigest();
    const statuses = new Map<number, number>();
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(brokenJson, fc.context(), async ({ target, mutation }, ctx) => {
        let payload: string;
        let contentType = "application/json";
        const kind = mutation[0];
        const a: unknown = mutation[1];
        const b: unknown = mutation[2];
        if (kind === "leaf") {
          const paths = leaves(target.body);
          const path = paths[(a as number) % paths.length]!;
          let original: unknown = target.body;
          for (const k of path) original = (original as Record<string | number, unknown>)[k];
          const bad = fc.sample(badValueFor(original), { numRuns: 1, seed: (a as number) + 1 })[0];
          payload = JSON.stringify(setAt(target.body, path, bad));
        } else if (kind === "unknown-field") {
          const name = `zz_${a as string}`;
          payload = JSON.stringify({ ...target.body, [name]: b ?? 1 });
        } else {
          const i = (a as number) % (RAW_BODIES.length + 3);
          if (i < RAW_BODIES.length) payload = RAW_BODIES[i]!;
          else if (i === RAW_BODIES.length) {
            payload = JSON.stringify(target.body);
            contentType = "text/plain";
          } else if (i === RAW_BODIES.length + 1) {
            payload = JSON.stringify({ ...target.body, pad: "x".repeat(1_100_000) });
          } else {
            payload = "";
          }
        }
        const res = await t.server.app.inject({
          method: target.method as "POST",
          url: target.url,
          payload,
          headers: { authorization: `Bearer ${t.adminKey}`, "content-type": contentType },
        });
        sent++;
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        ctx.log(
          `${target.method} ${target.url} ${payload.slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 300)}`,
        );
        expect(res.statusCode).toBeGreaterThanOrEqual(400);
        expect(res.statusCode).toBeLessThan(500);
        const body = res.json() as { error: { code: string; message: string; status: number } };
        expect(body.error.status).toBe(res.statusCode);
        expect(typeof body.error.code).toBe("string");
        expect(body.error.message.length).toBeGreaterThan(0);
      }),
      { numRuns: 10_000 },
    );
    expect(sent).toBeGreaterThanOrEqual(10_000);
    expect(await stateDigest()).toEqual(before);
    // The mix reached the validators, not only the JSON parser.
    expect(statuses.get(400)! > 5_000).toBe(true);
  }, 300_000);
});

import { afterAll, describe, expect, it } from "vitest";
import { expectError } from "../support/server.js";
import {
  type CheckEventBody,
  check,
  closeAll,
  customerLimit,
  freshServer,
  iso,
  MINUTE,
  outcome,
  put,
  putCustomer,
  T0,
} from "./helpers.js";

afterAll(closeAll);

const W = 60_000;
const L = 5;

/** The sliding window's documented conservatism: counted in sub-buckets of ceil(window / 8) ms. */
function slidingRetryMs(start: number): number {
  const width = Math.ceil(W / 8);
  const bucketStart = Math.floor(start / width) * width;
  return bucketStart + width + W - 1 - start;
}

interface AlgorithmCase {
  name: string;
  config: Record<string, unknown>;
  start: number;
  /** How many pass at once from fresh. */
  atOnce: number;
  /** The documented wait before the next one passes. */
  retryMs: number;
  /** How many pass right after that wait. */
  afterRetry: number;
}

const cases: AlgorithmCase[] = [
  {
    name: "sliding_window: L per window, counted conservatively",
    config: { algorithm: "sliding_window" },
    start: T0 + 1_000,
    atOnce: L,
    retryMs: slidingRetryMs(T0 + 1_000),
    afterRetry: L,
  },
  {
    name: "fixed_window: L per aligned window, all back at the window's end",
    config: { algorithm: "fixed_window" },
    start: T0 + 45_000,
    atOnce: L,
    retryMs: 15_000,
    afterRetry: L,
  },
  {
    name: "token_bucket: L at once, one more every window / L",
    config: { algorithm: "token_bucket" },
    start: T0,
    atOnce: L,
    retryMs: W / L,
    afterRetry: 1,
  },
  {
    name: "token_bucket with burst 8: 8 at once",
    config: { algorithm: "token_bucket", burst: 8 },
    start: T0,
    atOnce: 8,
    retryMs: W / L,
    afterRetry: 1,
  },
  {
    name: "gcra: L at once, then one per emission interval",
    config: { algorithm: "gcra" },
    start: T0 + 123,
    atOnce: L,
    retryMs: W / L,
    afterRetry: 1,
  },
  {
    name: "gcra with burst 2",
    config: { algorithm: "gcra", burst: 2 },
    start: T0,
    atOnce: 2,
    retryMs: W / L,
    afterRetry: 1,
  },
  {
    name: "burst guard: burst 3 at once, refilled at the sustained rate",
    config: { algorithm: "burst", burst: 3 },
    start: T0,
    atOnce: 3,
    retryMs: W / L,
    afterRetry: 1,
  },
];

describe("rate-limit algorithms over HTTP", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const { t, clock } = await freshServer({ start: c.start });
      await put(t, "/v1/rate-limits/rl", {
        scope: "key",
        limit: L,
        window_seconds: W / 1000,
        ...c.config,
      });
      const ev: CheckEventBody = { customer: "acme", dimensions: { key: "k1" } };
      const capacity = (c.config.burst as number | undefined) ?? L;
      const windowAlgorithm =
        c.config.algorithm === "sliding_window" || c.config.algorithm === "fixed_window";
      for (let i = 1; i <= c.atOnce; i++) {
        const r = await check(t, ev);
        expect(r.allowed, `request ${i}`).toBe(true);
        expect(outcome(r, "rl")).toMatchObject({
          kind: "rate",
          allowed: true,
          limit: windowAlgorithm ? L : capacity,
          remaining: c.atOnce - i,
        });
      }
      const denied = await check(t, ev);
      expect(denied.allowed).toBe(false);
      expect(denied.code).toBe("RATE_LIMIT_EXCEEDED");
      const retryAfter = Math.ceil(c.retryMs / 1000);
      expect(outcome(denied, "rl")).toMatchObject({
        allowed: false,
        exceeded: true,
        remaining: 0,
        retry_after: retryAfter,
      });

      // Still denied a second before retry_after, admitted at it.
      clock.set(c.start + (retryAfter - 1) * 1000);
      expect((await check(t, ev)).code).toBe("RATE_LIMIT_EXCEEDED");
      clock.set(c.start + retryAfter * 1000);
      for (let i = 1; i <= c.afterRetry; i++)
        expect((await check(t, ev)).allowed, `after retry ${i}`).toBe(true);
      expect((await check(t, ev)).code).toBe("RATE_LIMIT_EXCEEDED");
    });
  }

  it("fixed_window admits a full window again right at the boundary (up to 2 × limit within a window)", async () => {
    const { t, clock } = await freshServer({ start: T0 + W - 1 });
    await put(t, "/v1/rate-limits/rl", {
      scope: "customer",
      limit: L,
      window_seconds: W / 1000,
      algorithm: "fixed_window",
    });
    for (let i = 0; i < L; i++) expect((await check(t, { customer: "acme" })).allowed).toBe(true);
    const denied = await check(t, { customer: "acme" });
    expect(outcome(denied, "rl")).toMatchObject({
      retry_after: 1,
      reset_at: iso(T0 + W),
    });
    clock.set(T0 + W);
    for (let i = 0; i < L; i++) expect((await check(t, { customer: "acme" })).allowed).toBe(true);
    expect((await check(t, { customer: "acme" })).allowed).toBe(false);
  });

  it("refuses a bad configuration with 400 naming the field", async () => {
    const { t } = await freshServer();
    const bad = async (body: Record<string, unknown>, field: string | RegExp) => {
      const err = expectError(await t.api("PUT", "/v1/rate-limits/x", body), 400, "INVALID_REQUEST");
      expect(String(err.details?.field)).toMatch(field);
    };
    const base = { scope: "key", limit: 10, window_seconds: 60 };
    await bad({ ...base, algorithm: "leaky" }, /^algorithm$/);
    await bad({ ...base, scope: "planet" }, /^scope$/);
    await bad({ ...base, window_seconds: 0 }, /^window_seconds$/);
    await bad({ ...base, window_seconds: 86_401 }, /^window_seconds$/);
    await bad({ ...base, limit: 0 }, /^limit$/);
    await bad({ ...base, burst: 0 }, /^burst$/);
    await bad({ ...base, plan: "nope" }, /^plan$/);
    await bad(
      { ...base, algorithm: "token_bucket", limit: 1_000_000_000, window_seconds: 86_400 },
      /^limit$/,
    );
    expect((await t.api("GET", "/v1/rate-limits")).body.data).toEqual([]);
  });
});

describe("who a rate limit counts", () => {
  const perMinute = (scope: string, extra: Record<string, unknown> = {}) => ({
    scope,
    limit: 3,
    window_seconds: 60,
    algorithm: "fixed_window",
    ...extra,
  });

  it("scope key: each dimensions.key has its own allowance", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/rate-limits/per-key", perMinute("key"));
    for (let i = 0; i < 3; i++)
      expect((await check(t, { customer: "acme", dimensions: { key: "k1" } })).allowed).toBe(true);
    expect((await check(t, { customer: "acme", dimensions: { key: "k1" } })).code).toBe(
      "RATE_LIMIT_EXCEEDED",
    );
    const k2 = await check(t, { customer: "acme", dimensions: { key: "k2" } });
    expect(k2.allowed).toBe(true);
    expect(outcome(k2, "per-key").remaining).toBe(2);
    // A check that names no key has no per-key allowance to count against.
    expect((await check(t, { customer: "acme" })).limits).toEqual([]);
  });

  it("scope customer: each customer has its own allowance", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/rate-limits/per-customer", perMinute("customer"));
    for (const key of ["k1", "k2", "k3"]) {
      expect((await check(t, { customer: "acme", dimensions: { key } })).allowed).toBe(true);
    }
    const denied = await check(t, { customer: "acme", dimensions: { key: "k4" } });
    expect(denied.code).toBe("RATE_LIMIT_EXCEEDED");
    expect(outcome(denied, "per-customer").retry_after).toBe(60);
    expect((await check(t, { customer: "bob" })).allowed).toBe(true);
  });

  it("scope workspace: one allowance shared by every customer", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/rate-limits/ws", perMinute("workspace"));
    expect((await check(t, { customer: "a" })).allowed).toBe(true);
    expect((await check(t, { customer: "b" })).allowed).toBe(true);
    expect((await check(t, { customer: "c" })).allowed).toBe(true);
    expect((await check(t, { customer: "d" })).code).toBe("RATE_LIMIT_EXCEEDED");
  });

  it("a plan's rate limit (inline or PUT with plan) applies to each customer on the plan only", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/plans/pro", { name: "Pro", rate_limits: [{ id: "inline", ...perMinute("customer") }] });
    await put(t, "/v1/rate-limits/put", { plan: "pro", ...perMinute("customer", { limit: 2 }) });
    await putCustomer(t, "a", { plan: "pro" });
    await putCustomer(t, "b", { plan: "pro" });
    await putCustomer(t, "free");
    for (const c of ["a", "b"]) {
      const first = await check(t, { customer: c });
      expect(first.limits.map((l) => l.id).sort()).toEqual(["inline", "put"]);
      expect((await check(t, { customer: c })).allowed).toBe(true);
      const third = await check(t, { customer: c });
      expect(third.code).toBe("RATE_LIMIT_EXCEEDED");
      expect(outcome(third, "put").allowed).toBe(false);
      expect(outcome(third, "inline").allowed).toBe(true);
    }
    for (let i = 0; i < 10; i++) expect((await check(t, { customer: "free" })).limits).toEqual([]);
  });

  it("event_type narrows a rate limit to one kind of event", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/rate-limits/steps", perMinute("customer", { event_type: "agent.step", limit: 1 }));
    expect((await check(t, { customer: "a", type: "agent.step" })).allowed).toBe(true);
    expect((await check(t, { customer: "a", type: "agent.step" })).code).toBe("RATE_LIMIT_EXCEEDED");
    const other = await check(t, { customer: "a" });
    expect(other).toMatchObject({ allowed: true, limits: [] });
  });

  it("soft rate limits allow past the limit and flag it", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/rate-limits/soft", perMinute("customer", { limit: 1, enforcement: "soft" }));
    expect(outcome(await check(t, { customer: "a" }), "soft").exceeded).toBe(false);
    const over = await check(t, { customer: "a" });
    expect(over.allowed).toBe(true);
    expect(outcome(over, "soft")).toMatchObject({ allowed: true, exceeded: true });
  });
});

describe("summing a value: tokens per minute", () => {
  it("counts the value of each request, not the requests", async () => {
    const { t, clock } = await freshServer();
    await put(t, "/v1/rate-limits/tpm", {
      scope: "customer",
      value: "tokens_in",
      limit: 1000,
      window_seconds: 60,
      algorithm: "sliding_window",
    });
    const tokens = (n: number) => check(t, { customer: "acme", values: { tokens_in: n, tokens_out: 5000 } });
    expect(outcome(await tokens(600), "tpm")).toMatchObject({ allowed: true, remaining: 400 });
    const denied = await tokens(500);
    expect(denied.code).toBe("RATE_LIMIT_EXCEEDED");
    expect(outcome(denied, "tpm")).toMatchObject({
      remaining: 400,
      retry_after: Math.ceil(slidingRetryMs(T0) / 1000),
    });
    expect(outcome(await tokens(400), "tpm")).toMatchObject({ allowed: true, remaining: 0 });
    expect((await tokens(1)).code).toBe("RATE_LIMIT_EXCEEDED");
    // More than the limit can ever admit: denied without a retry_after.
    const never = await tokens(1001);
    expect(never.code).toBe("RATE_LIMIT_EXCEEDED");
    expect(outcome(never, "tpm").retry_after).toBeUndefined();
    clock.advance(2 * MINUTE);
    expect(outcome(await tokens(1000), "tpm")).toMatchObject({ allowed: true, remaining: 0 });
  });

  it("reconciles the estimate with the actual value at commit", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/rate-limits/tpm", {
      scope: "customer",
      value: "tokens_in",
      limit: 1000,
      window_seconds: 60,
      algorithm: "fixed_window",
    });
    const r = await check(t, { customer: "acme", values: { tokens_in: 800 } }, { ttl_seconds: 60 });
    expect(outcome(r, "tpm").remaining).toBe(200);
    expect((await check(t, { customer: "acme", values: { tokens_in: 201 } })).allowed).toBe(false);
    const c = await t.api("POST", `/v1/reservations/${r.reservation!.id}/commit`, {
      event: { values: { tokens_in: 300 } },
    });
    expect(c.status).toBe(200);
    expect((await check(t, { customer: "acme", values: { tokens_in: 701 } })).allowed).toBe(false);
    expect(outcome(await check(t, { customer: "acme", values: { tokens_in: 700 } }), "tpm").remaining).toBe(
      0,
    );
  });
});

describe("all or nothing", () => {
  it("a rate limit that denies leaves the quota untouched: no hold, no reservation", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", meter: "tokens", amount: 1000, period: "month" });
    await put(t, "/v1/rate-limits/rpm", {
      customer: "acme",
      scope: "customer",
      limit: 2,
      window_seconds: 60,
      algorithm: "fixed_window",
    });
    for (let i = 0; i < 2; i++) {
      expect(
        (await check(t, { customer: "acme", values: { tokens_in: 100 } }, { ttl_seconds: 60 })).allowed,
      ).toBe(true);
    }
    const denied = await check(t, { customer: "acme", values: { tokens_in: 100 } }, { ttl_seconds: 60 });
    expect(denied.code).toBe("RATE_LIMIT_EXCEEDED");
    expect(denied.reservation).toBeUndefined();
    expect(outcome(denied, "cap")).toMatchObject({ allowed: true, remaining: 700 });
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 0, reserved: 200, remaining: 800 });
  });

  it("a quota that denies leaves the rate limit untouched", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", meter: "tokens", amount: 100, period: "month" });
    await put(t, "/v1/rate-limits/rpm", {
      customer: "acme",
      scope: "customer",
      limit: 10,
      window_seconds: 60,
      algorithm: "fixed_window",
    });
    await put(t, "/v1/rate-limits/tpm", {
      customer: "acme",
      scope: "customer",
      value: "tokens_in",
      limit: 500,
      window_seconds: 60,
      algorithm: "token_bucket",
    });
    const first = await check(t, { customer: "acme", values: { tokens_in: 60 } }, { ttl_seconds: 60 });
    expect(outcome(first, "rpm").remaining).toBe(9);
    expect(outcome(first, "tpm").remaining).toBe(440);
    for (let i = 0; i < 3; i++) {
      const denied = await check(t, { customer: "acme", values: { tokens_in: 50 } }, { ttl_seconds: 60 });
      expect(denied.code).toBe("LIMIT_EXCEEDED");
      expect(outcome(denied, "rpm").allowed).toBe(true);
    }
    expect(await customerLimit(t, "acme", "rpm")).toMatchObject({ used: 1, remaining: 9 });
    expect(await customerLimit(t, "acme", "tpm")).toMatchObject({ remaining: 440 });
    const next = await check(t, { customer: "acme", values: { tokens_in: 40 } });
    expect(outcome(next, "rpm").remaining).toBe(8);
    expect(outcome(next, "tpm").remaining).toBe(400);
  });

  it("one rate limit that denies leaves the other rate limits untouched", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/rate-limits/per-key", {
      scope: "key",
      limit: 1,
      window_seconds: 60,
      algorithm: "fixed_window",
    });
    await put(t, "/v1/rate-limits/per-customer", {
      scope: "customer",
      limit: 10,
      window_seconds: 60,
      algorithm: "fixed_window",
    });
    expect((await check(t, { customer: "acme", dimensions: { key: "k1" } })).allowed).toBe(true);
    for (let i = 0; i < 5; i++) {
      expect((await check(t, { customer: "acme", dimensions: { key: "k1" } })).code).toBe(
        "RATE_LIMIT_EXCEEDED",
      );
    }
    const other = await check(t, { customer: "acme", dimensions: { key: "k2" } });
    expect(outcome(other, "per-customer").remaining).toBe(8);
  });
});

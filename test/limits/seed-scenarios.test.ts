import { afterAll, describe, expect, it } from "vitest";
import type { TestServer } from "../support/server.js";
import {
  check,
  closeAll,
  customerLimit,
  freshServer,
  outcome,
  put,
  putCustomer,
  record,
  T0,
} from "./helpers.js";

afterAll(closeAll);

/** The sliding window (the default algorithm) counts in sub-buckets of window / 8 (README). */
const slidingRetrySeconds = (windowMs: number, at: number) => {
  const width = Math.ceil(windowMs / 8);
  return Math.ceil((Math.floor(at / width) * width + width + windowMs - 1 - at) / 1000);
};

describe("seed scenario 1: a Pro plan (2,000,000 tokens/month, 100 requests/minute per key, 10 concurrent)", () => {
  async function proPlan() {
    const env = await freshServer();
    const { t } = env;
    await put(t, "/v1/plans/pro", {
      name: "Pro",
      limits: [{ id: "monthly-tokens", meter: "tokens", amount: 2_000_000, period: "month" }],
      rate_limits: [{ id: "rpm-per-key", scope: "key", limit: 100, window_seconds: 60 }],
      concurrency_limits: [{ id: "parallel", scope: "customer", max: 10, lease_ttl_seconds: 300 }],
    });
    await putCustomer(t, "acme", { plan: "pro" });
    const keys: string[] = [];
    for (const name of ["a", "b", "c"]) {
      const k = await t.api("POST", "/v1/customers/acme/keys", { name });
      expect(k.status).toBe(201);
      keys.push(k.body.id);
    }
    return { ...env, keys };
  }

  const run = (t: TestServer, key: string, tokens = 1000, reserve?: { ttl_seconds: number }) =>
    check(
      t,
      { customer: "acme", values: { tokens_in: tokens }, dimensions: { key, model: "gpt-4o" } },
      reserve,
    );

  it("10 concurrent reserves are admitted, the 11th is denied CONCURRENCY_LIMIT_EXCEEDED", async () => {
    const { t, keys } = await proPlan();
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => run(t, keys[0]!, 1000, { ttl_seconds: 300 })),
    );
    expect(answers.filter((a) => a.allowed && a.reservation).length).toBe(10);
    const eleventh = await run(t, keys[1]!, 1000, { ttl_seconds: 300 });
    expect(eleventh.allowed).toBe(false);
    expect(eleventh.code).toBe("CONCURRENCY_LIMIT_EXCEEDED");
    expect(outcome(eleventh, "parallel")).toMatchObject({ allowed: false, limit: 10, retry_after: 300 });
    expect(outcome(eleventh, "monthly-tokens").allowed).toBe(true);
    expect(await customerLimit(t, "acme", "monthly-tokens")).toMatchObject({ reserved: 10_000, used: 0 });

    // Finishing one run frees one slot.
    const c = await t.api("POST", `/v1/reservations/${answers[3]!.reservation!.id}/commit`, {
      event: { values: { tokens_in: 800 } },
    });
    expect(c.status).toBe(200);
    expect((await run(t, keys[1]!, 1000, { ttl_seconds: 300 })).allowed).toBe(true);
    expect((await run(t, keys[1]!, 1000, { ttl_seconds: 300 })).code).toBe("CONCURRENCY_LIMIT_EXCEEDED");
    expect(await customerLimit(t, "acme", "monthly-tokens")).toMatchObject({ used: 800, reserved: 10_000 });
  });

  it("100 checks a minute for one key are admitted, the 101st is RATE_LIMIT_EXCEEDED; another key still passes", async () => {
    const { t, clock, keys } = await proPlan();
    // Spread over 50 seconds: still within one minute.
    for (let i = 0; i < 100; i++) {
      const a = await run(t, keys[0]!);
      expect(a.allowed, `check ${i + 1}`).toBe(true);
      expect(outcome(a, "rpm-per-key").remaining).toBe(99 - i);
      clock.advance(500);
    }
    const denied = await run(t, keys[0]!);
    expect(denied.code).toBe("RATE_LIMIT_EXCEEDED");
    const retry = outcome(denied, "rpm-per-key").retry_after!;
    expect(retry).toBeGreaterThan(0);
    // The oldest checks (at T0) leave the window about a minute after T0, not sooner.
    expect(T0 + 50_000 + retry * 1000).toBeGreaterThanOrEqual(T0 + 60_000);
    expect((await run(t, keys[1]!)).allowed).toBe(true);

    const at = T0 + 50_000;
    clock.set(at + (retry - 1) * 1000);
    expect((await run(t, keys[0]!)).code).toBe("RATE_LIMIT_EXCEEDED");
    clock.set(at + retry * 1000);
    expect((await run(t, keys[0]!)).allowed).toBe(true);
  });

  it("the monthly token cap denies once reached and comes back on the 1st of next month", async () => {
    const { t, clock, keys } = await proPlan();
    await record(t, [
      {
        customer: "acme",
        values: { tokens_in: 1_500_000, tokens_out: 400_000 },
        dimensions: { key: keys[2]! },
      },
      { customer: "acme", values: { tokens_in: 90_000, tokens_out: 9_000 }, dimensions: { key: keys[1]! } },
    ]);
    expect(await customerLimit(t, "acme", "monthly-tokens")).toMatchObject({
      used: 1_999_000,
      remaining: 1_000,
      state: "critical",
    });
    expect((await run(t, keys[0]!, 1_000)).allowed).toBe(true);
    const over = await run(t, keys[0]!, 1_001);
    expect(over.code).toBe("LIMIT_EXCEEDED");
    expect(outcome(over, "monthly-tokens")).toMatchObject({
      reset_at: "2026-12-01T00:00:00Z",
      retry_after: (Date.UTC(2026, 11, 1) - T0) / 1000,
    });
    await record(t, [{ customer: "acme", values: { tokens_out: 1_000 } }]);
    expect((await customerLimit(t, "acme", "monthly-tokens")).state).toBe("exceeded");
    // Even a call that brings no estimate is refused now.
    expect((await check(t, { customer: "acme", dimensions: { key: keys[0]! } })).code).toBe("LIMIT_EXCEEDED");

    clock.set(Date.UTC(2026, 11, 1) - 1);
    expect((await run(t, keys[0]!, 1)).code).toBe("LIMIT_EXCEEDED");
    clock.set(Date.UTC(2026, 11, 1));
    const back = await run(t, keys[0]!, 2_000_000);
    expect(back.allowed).toBe(true);
    expect(outcome(back, "monthly-tokens").reset_at).toBe("2027-01-01T00:00:00Z");
    expect((await customerLimit(t, "acme", "monthly-tokens")).used).toBe(0);
  });
});

describe("seed scenario 2: 60 requests/minute per account and a 30 per key burst guard", () => {
  for (const accountScope of ["customer", "workspace"] as const) {
    it(`account limit with scope ${accountScope}`, async () => {
      const { t, clock } = await freshServer();
      await put(t, "/v1/rate-limits/account", { scope: accountScope, limit: 60, window_seconds: 60 });
      await put(t, "/v1/rate-limits/burst-guard", {
        scope: "key",
        algorithm: "burst",
        limit: 30,
        window_seconds: 60,
        burst: 30,
      });
      const call = (customer: string, key: string) => check(t, { customer, dimensions: { key } });

      for (let i = 0; i < 30; i++) expect((await call("acme", "A")).allowed).toBe(true);
      const guarded = await call("acme", "A");
      expect(guarded.code).toBe("RATE_LIMIT_EXCEEDED");
      // One token back at the sustained rate: 60 s / 30.
      expect(outcome(guarded, "burst-guard")).toMatchObject({ allowed: false, limit: 30, retry_after: 2 });
      expect(outcome(guarded, "account").allowed).toBe(true);

      // The denied calls took nothing from the account: another key gets exactly the other 30.
      for (let i = 0; i < 30; i++) expect((await call("acme", "B")).allowed, `B ${i + 1}`).toBe(true);
      const full = await call("acme", "C");
      expect(full.code).toBe("RATE_LIMIT_EXCEEDED");
      expect(outcome(full, "account")).toMatchObject({
        allowed: false,
        limit: 60,
        remaining: 0,
        retry_after: slidingRetrySeconds(60_000, T0),
      });
      expect(outcome(full, "burst-guard").allowed).toBe(true);

      // Another account: limited too only when the account is the workspace.
      const bob = await call("bob", "D");
      expect(bob.allowed).toBe(accountScope === "customer");

      // After the guard's retry_after the key would pass the guard, but the account is still full.
      clock.advance(2_000);
      const stillFull = await call("acme", "A");
      expect(outcome(stillFull, "burst-guard").allowed).toBe(true);
      expect(outcome(stillFull, "account").allowed).toBe(false);
      clock.set(T0 + slidingRetrySeconds(60_000, T0) * 1000);
      expect((await call("acme", "A")).allowed).toBe(true);
    });
  }
});

describe("seed scenario 3: a workspace-wide monthly step cap", () => {
  it("rejects new runs of any customer once the workspace's steps reach the cap", async () => {
    const { t, clock } = await freshServer();
    await put(t, "/v1/limits/steps-cap", { meter: "steps", amount: 100, period: "month" });
    const steps = (customer: string, n: number) =>
      record(t, [
        { customer, type: "agent.step", values: { steps: n }, dimensions: { workflow: "wf", run: "r" } },
      ]);
    const newRun = (customer: string, estimate?: number) =>
      check(t, { customer, type: "agent.step", ...(estimate ? { values: { steps: estimate } } : {}) });

    await steps("a", 40);
    await steps("b", 35);
    await steps("a", 5);
    for (const c of ["a", "b", "c"]) await putCustomer(t, c);
    expect(await customerLimit(t, "c", "steps-cap")).toMatchObject({ used: 80, remaining: 20 });
    expect(outcome(await newRun("c", 20), "steps-cap")).toMatchObject({ allowed: true, remaining: 0 });
    expect((await newRun("c", 21)).code).toBe("LIMIT_EXCEEDED");

    // A run held by one customer counts against the others too.
    const held = await check(
      t,
      { customer: "c", type: "agent.step", values: { steps: 15 } },
      { ttl_seconds: 600 },
    );
    expect(held.allowed).toBe(true);
    expect((await newRun("a", 6)).code).toBe("LIMIT_EXCEEDED");
    await t.api("POST", `/v1/reservations/${held.reservation!.id}/commit`, {
      event: { values: { steps: 20 } },
    });
    expect(await customerLimit(t, "b", "steps-cap")).toMatchObject({
      used: 100,
      reserved: 0,
      state: "exceeded",
    });

    for (const c of ["a", "b", "c", "new-customer"]) {
      const denied = await newRun(c);
      expect(denied.code, c).toBe("LIMIT_EXCEEDED");
      expect(outcome(denied, "steps-cap").reset_at).toBe("2026-12-01T00:00:00Z");
    }
    // Other kinds of events are not steps.
    expect((await check(t, { customer: "a", values: { tokens_in: 10 } })).allowed).toBe(true);

    clock.set(Date.UTC(2026, 11, 1));
    expect((await newRun("b", 100)).allowed).toBe(true);
  });
});

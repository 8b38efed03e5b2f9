import { afterAll, describe, expect, it } from "vitest";
import { expectError } from "../support/server.js";
import {
  check,
  closeAll,
  customerLimit,
  customerLimits,
  freshServer,
  put,
  putCustomer,
  record,
} from "./helpers.js";

afterAll(closeAll);

/** Percent with two decimals, rounded down, computed without floating-point division surprises. */
const pct = (used: number, amount: number) => Math.floor((used * 10_000) / amount) / 100;

function expectedState(percent: number, thresholds: number[]) {
  if (percent >= 100) return "exceeded";
  const sorted = [...thresholds].sort((a, b) => a - b);
  if (sorted.length > 1 && percent >= sorted[sorted.length - 1]!) return "critical";
  if (sorted.length > 0 && percent >= sorted[0]!) return "warning";
  return "ok";
}

describe("GET /v1/customers/{id}/limits", () => {
  it("reports used, reserved, remaining, percent_used, reset_at and the state at the default thresholds", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", meter: "tokens", amount: 1000, period: "month" });
    const first = await customerLimit(t, "acme", "cap");
    expect(first).toEqual({
      id: "cap",
      kind: "quota",
      limit: 1000,
      used: 0,
      reserved: 0,
      remaining: 1000,
      percent_used: 0,
      reset_at: "2026-12-01T00:00:00Z",
      enforcement: "hard",
      state: "ok",
    });
    // Walk usage across the thresholds (80 warning, 95 critical, 100 exceeded).
    let used = 0;
    for (const target of [799, 800, 949, 950, 999, 1000]) {
      await record(t, [{ customer: "acme", values: { tokens_in: target - used } }]);
      used = target;
      const l = await customerLimit(t, "acme", "cap");
      const p = pct(used, 1000);
      expect(l).toMatchObject({ used, reserved: 0, remaining: 1000 - used, percent_used: p });
      expect(l.state, `at ${used}`).toBe(expectedState(p, [80, 95]));
    }
    expect((await customerLimit(t, "acme", "cap")).state).toBe("exceeded");
  });

  it("counts held reservations as reserved: remaining and percent_used include them", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", meter: "tokens", amount: 300, period: "day" });
    await record(t, [{ customer: "acme", values: { tokens_in: 100 } }]);
    const r = await check(t, { customer: "acme", values: { tokens_in: 140 } }, { ttl_seconds: 60 });
    expect(r.allowed).toBe(true);
    const l = await customerLimit(t, "acme", "cap");
    expect(l).toMatchObject({
      used: 100,
      reserved: 140,
      remaining: 60,
      percent_used: pct(240, 300),
      state: "warning",
    });
    await t.api("POST", `/v1/reservations/${r.reservation!.id}/release`);
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({
      used: 100,
      reserved: 0,
      remaining: 200,
      percent_used: pct(100, 300),
      state: "ok",
    });
  });

  it("uses a limit's own thresholds", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/three", {
      customer: "acme",
      meter: "tokens",
      amount: 200,
      period: "month",
      thresholds: [90, 50, 70],
    });
    await put(t, "/v1/limits/one", {
      customer: "acme",
      meter: "tokens",
      amount: 200,
      period: "month",
      thresholds: [60],
    });
    expect((await t.api("GET", "/v1/limits/three?customer=acme")).body.thresholds).toEqual([50, 70, 90]);
    let used = 0;
    for (const target of [99, 100, 139, 140, 179, 180, 199, 200]) {
      await record(t, [{ customer: "acme", values: { tokens_in: target - used } }]);
      used = target;
      const p = pct(used, 200);
      expect((await customerLimit(t, "acme", "three")).state, `three at ${used}`).toBe(
        expectedState(p, [50, 70, 90]),
      );
      expect((await customerLimit(t, "acme", "one")).state, `one at ${used}`).toBe(expectedState(p, [60]));
    }
    // Spot checks of the expectation itself.
    expect(expectedState(pct(139, 200), [50, 70, 90])).toBe("warning");
    expect(expectedState(pct(180, 200), [50, 70, 90])).toBe("critical");
    expect(expectedState(pct(199, 200), [60])).toBe("warning");
  });

  it("lists the customer's rate and concurrency limits too; 404 for an unknown customer", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/rate-limits/rpm", {
      customer: "acme",
      scope: "customer",
      limit: 10,
      window_seconds: 60,
    });
    await put(t, "/v1/concurrency-limits/par", { customer: "acme", scope: "customer", max: 4 });
    for (let i = 0; i < 3; i++)
      expect((await check(t, { customer: "acme" }, { ttl_seconds: 60 })).allowed).toBe(true);
    const all = await customerLimits(t, "acme");
    expect(all.find((l) => l.id === "rpm")).toMatchObject({ kind: "rate", limit: 10, used: 3, remaining: 7 });
    expect(all.find((l) => l.id === "par")).toMatchObject({
      kind: "concurrency",
      limit: 4,
      used: 3,
      remaining: 1,
      percent_used: 75,
      state: "ok",
    });
    expectError(await t.api("GET", "/v1/customers/nobody/limits"), 404, "NOT_FOUND");
    expectError(await t.api("GET", "/v1/customers/nobody/usage-percent"), 404, "NOT_FOUND");
  });
});

describe("GET /v1/customers/{id}/usage-percent", () => {
  it("returns only id, percent_used and reset_at per limit", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", meter: "tokens", amount: 3, period: "week" });
    await put(t, "/v1/limits/calls", { customer: "acme", meter: "requests", amount: 8, period: "hour" });
    await record(t, [{ customer: "acme", values: { tokens_in: 1 } }]);
    const res = await t.api("GET", "/v1/customers/acme/usage-percent");
    expect(res.status).toBe(200);
    const rows = [...res.body.data].sort((a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id));
    for (const row of rows) expect(Object.keys(row).sort()).toEqual(["id", "percent_used", "reset_at"]);
    expect(rows).toEqual([
      { id: "calls", percent_used: pct(1, 8), reset_at: "2026-11-23T11:00:00Z" },
      { id: "cap", percent_used: pct(1, 3), reset_at: "2026-11-30T00:00:00Z" },
    ]);
  });
});

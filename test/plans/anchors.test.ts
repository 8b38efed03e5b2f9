/**
 * Billing-cycle anchors end to end: a customer's `billing_anchor` (in its time zone) sets where its
 * `month` and `week` limits start and reset, so `reset_at` is exactly the next billing period.
 */
import { periodWindow } from "@tollgate/core";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import {
  check,
  closeAll,
  customerLimit,
  freshServer,
  iso,
  outcome,
  put,
  putCustomer,
  record,
  T0,
} from "../limits/helpers.js";

afterAll(closeAll);

const utc = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0) => Date.UTC(y, mo - 1, d, h, mi, s);

async function anchored() {
  const env = await freshServer();
  const { t } = env;
  await put(t, "/v1/plans/pro", {
    name: "Pro",
    limits: [
      { id: "monthly", meter: "tokens", amount: 10_000, period: "month" },
      { id: "weekly", meter: "tokens", amount: 5_000, period: "week" },
      { id: "daily", meter: "tokens", amount: 5_000, period: "day" },
    ],
  });
  // Jan 31 15:00 in New York (EST): cycles on the 31st (or the month's last day) at 15:00 local.
  await putCustomer(t, "acme", {
    plan: "pro",
    timezone: "America/New_York",
    billing_anchor: "2026-01-31T20:00:00Z",
  });
  return env;
}

describe("month and week limits of an anchored customer", () => {
  it("November's cycle runs Oct 31 15:00 EDT to Nov 30 15:00 EST (the 31st rule); usage before it does not count", async () => {
    const { t } = await anchored();
    await record(t, [
      { customer: "acme", values: { tokens_in: 111 }, timestamp: iso(utc(2026, 10, 31, 18, 59, 59)) },
      { customer: "acme", values: { tokens_in: 222 }, timestamp: iso(utc(2026, 10, 31, 19)) },
      { customer: "acme", values: { tokens_in: 333 }, timestamp: iso(T0) },
    ]);
    expect(await customerLimit(t, "acme", "monthly")).toMatchObject({
      used: 555,
      reset_at: "2026-11-30T20:00:00Z",
    });
    const c = await check(t, { customer: "acme", values: { tokens_in: 1 } });
    expect(outcome(c, "monthly").reset_at).toBe("2026-11-30T20:00:00Z");
    // The week cycle: Saturdays at 15:00 New York time (the anchor was a Saturday).
    expect(await customerLimit(t, "acme", "weekly")).toMatchObject({
      used: 333,
      reset_at: "2026-11-28T20:00:00Z",
    });
    // The entitlements show the same billing period.
    const ent = await t.api("GET", "/v1/customers/acme/entitlements");
    expect(ent.body.billing_period).toEqual({ start: "2026-10-31T19:00:00Z", end: "2026-11-30T20:00:00Z" });
    // Day periods ignore the anchor: local midnight.
    expect((await customerLimit(t, "acme", "daily")).reset_at).toBe("2026-11-24T05:00:00Z");
  });

  it("resets at exactly the next cycle: Nov 30 20:00Z, then Dec 31, then Feb 28", async () => {
    const { t, clock } = await anchored();
    await record(t, [{ customer: "acme", values: { tokens_in: 9_000 } }]);
    clock.set(utc(2026, 11, 30, 20) - 1);
    expect(await customerLimit(t, "acme", "monthly")).toMatchObject({ used: 9_000 });
    expect((await check(t, { customer: "acme", values: { tokens_in: 2_000 } })).allowed).toBe(false);
    clock.set(utc(2026, 11, 30, 20));
    expect(await customerLimit(t, "acme", "monthly")).toMatchObject({
      used: 0,
      reset_at: "2026-12-31T20:00:00Z",
    });
    expect((await check(t, { customer: "acme", values: { tokens_in: 2_000 } })).allowed).toBe(true);
    clock.set(utc(2027, 1, 31, 20));
    expect((await customerLimit(t, "acme", "monthly")).reset_at).toBe("2027-02-28T20:00:00Z");
  });

  it("a new anchor moves the cycle at once; workspace limits keep UTC calendar months", async () => {
    const { t } = await anchored();
    await put(t, "/v1/limits/account", { meter: "tokens", amount: 1_000_000, period: "month" });
    expect((await customerLimit(t, "acme", "monthly")).reset_at).toBe("2026-11-30T20:00:00Z");
    await putCustomer(t, "acme", { timezone: "UTC", billing_anchor: "2025-06-15T09:30:00Z" });
    expect((await customerLimit(t, "acme", "monthly")).reset_at).toBe("2026-12-15T09:30:00Z");
    expect((await customerLimit(t, "acme", "account")).reset_at).toBe("2026-12-01T00:00:00Z");
    await putCustomer(t, "acme", { billing_anchor: null });
    expect((await customerLimit(t, "acme", "monthly")).reset_at).toBe("2026-12-01T00:00:00Z");
  });

  it("for any zone and anchor, reset_at on the API is the end of the core's billing cycle", async () => {
    const { t } = await anchored();
    const zones = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu"];
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...zones),
        fc.integer({ min: utc(2000, 1, 1), max: utc(2026, 11, 1) }).map((x) => Math.floor(x / 1000) * 1000),
        async (zone, anchor) => {
          const id = `p${++n}`;
          await putCustomer(t, id, { plan: "pro", timezone: zone, billing_anchor: iso(anchor) });
          const opts = { timezone: zone, billingAnchor: anchor };
          for (const [limit, unit] of [
            ["monthly", "month"],
            ["weekly", "week"],
          ] as const) {
            const expected = periodWindow(unit, T0, opts).end as number;
            expect((await customerLimit(t, id, limit)).reset_at).toBe(iso(expected));
          }
        },
      ),
      { numRuns: 15 },
    );
  });
});

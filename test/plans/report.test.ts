/** The monthly report's overage columns: GET /v1/usage/summary?view=monthly&customer= (docs/plans.md). */
import { afterAll, describe, expect, it } from "vitest";
import { closeAll, freshServer, put, putCustomer, record } from "../limits/helpers.js";

afterAll(closeAll);

const utc = (y: number, mo: number, d: number, h = 0) => Date.UTC(y, mo - 1, d, h);

describe("monthly report: overage columns", () => {
  it("each month of a customer's report has its billing period's included, used, overage units and charge", async () => {
    const { t } = await freshServer({ start: utc(2026, 11, 23, 10) });
    await put(t, "/v1/plans/pro", {
      name: "Pro",
      overage: [
        { meter: "tokens", included: 1000, unit_price: "0.01" },
        { meter: "requests", included: 2, unit_price: "0.5" },
      ],
    });
    await putCustomer(t, "acme", { plan: "pro" });
    await putCustomer(t, "globex", { plan: "pro", billing_anchor: "2026-01-20T00:00:00Z" });
    const at = (ms: number) => new Date(ms).toISOString();
    for (const customer of ["acme", "globex"]) {
      await record(t, [
        { customer, values: { tokens_in: 1500 }, timestamp: at(utc(2026, 10, 5)) },
        { customer, values: { tokens_in: 700 }, timestamp: at(utc(2026, 11, 2)) },
        { customer, values: { tokens_in: 700 }, timestamp: at(utc(2026, 11, 21)) },
        { customer, values: { tokens_in: 100 }, timestamp: at(utc(2026, 11, 22)) },
      ]);
    }
    const res = await t.api("GET", "/v1/usage/summary?view=monthly&customer=acme");
    expect(res.status, res.text).toBe(200);
    const rows = res.body.data as Record<string, unknown>[];
    expect(rows).toHaveLength(12);
    const byStart = new Map(rows.map((r) => [r.period_start, r]));
    // October: 1,500 tokens (500 over × $0.01), 1 request (none over).
    expect(byStart.get("2026-10-01T00:00:00Z")).toMatchObject({
      tokens_total: 1500,
      overage_period: { unit: "month", start: "2026-10-01T00:00:00Z", end: "2026-11-01T00:00:00Z" },
      overage: [
        {
          meter: "tokens",
          included: 1000,
          used: 1500,
          overage_units: 500,
          unit_price: "0.01",
          overage_charge: "5.000000",
        },
        {
          meter: "requests",
          included: 2,
          used: 1,
          overage_units: 0,
          unit_price: "0.5",
          overage_charge: "0.000000",
        },
      ],
      overage_charge: "5.000000",
    });
    // November: 1,500 tokens and 3 requests: $5 + $0.50.
    expect(byStart.get("2026-11-01T00:00:00Z")).toMatchObject({ overage_charge: "5.500000" });
    expect(byStart.get("2026-09-01T00:00:00Z")).toMatchObject({ overage_charge: "0.000000" });
    // The same figures as GET /v1/customers/{id}/overage for that period.
    const direct = await t.api("GET", "/v1/customers/acme/overage?at=2026-11-15T00:00:00Z");
    expect(byStart.get("2026-11-01T00:00:00Z")!.overage).toEqual(direct.body.data);

    // An anchored customer: November's row reports its cycle Oct 20 – Nov 20 (the one holding mid-month).
    const anchored = await t.api("GET", "/v1/usage/summary?view=monthly&customer=globex");
    const nov = (anchored.body.data as Record<string, unknown>[]).find(
      (r) => r.period_start === "2026-11-01T00:00:00Z",
    );
    expect(nov).toMatchObject({
      tokens_total: 1500,
      overage_period: { start: "2026-10-20T00:00:00Z", end: "2026-11-20T00:00:00Z" },
      overage: [
        { meter: "tokens", used: 700 },
        { meter: "requests", used: 1 },
      ],
      overage_charge: "0.000000",
    });

    // Without a customer (or for other views) the report has no overage columns.
    const all = await t.api("GET", "/v1/usage/summary?view=monthly");
    expect(all.body.data[0]).not.toHaveProperty("overage");
    const unknown = await t.api("GET", "/v1/usage/summary?view=monthly&customer=nobody");
    expect(unknown.status).toBe(200);
    expect(unknown.body.data[0]).not.toHaveProperty("overage");
  });
});

import { afterAll, describe, expect, it } from "vitest";
import { closeAll, freshServer, iso, put, putCustomer, record, TYPE } from "../limits/helpers.js";

afterAll(closeAll);

describe("reprice", () => {
  it("recomputes stored costs, rollups, spend quotas and balance debits of a range, once, with an audit entry", async () => {
    const { t, clock } = await freshServer();
    const start = clock.now();
    await put(t, "/v1/prices/m", { input: "1", output: "1", effective_from: "2020-01-01T00:00:00Z" });
    await put(t, "/v1/meters/spend", { event_type: TYPE, aggregation: "sum", value: "cost" });
    await putCustomer(t, "a");
    await t.api("POST", "/v1/customers/a/balance/credits", { amount: 1000, idempotency_key: "c" });
    await put(t, "/v1/balance-rules/per-cent", { meter: "spend", credits_per_unit: 1, unit: "0.01" });
    await put(t, "/v1/limits/budget", { customer: "a", meter: "spend", amount: "10", period: "month" });
    // 3 events × 1M tokens at $1/1M = $3 → 300 credits; one event with its own cost stays as it is.
    await record(t, [
      { customer: "a", values: { tokens_in: 1_000_000 }, dimensions: { model: "m" } },
      { customer: "a", values: { tokens_in: 1_000_000 }, dimensions: { model: "m" } },
      { customer: "a", values: { tokens_in: 1_000_000 }, dimensions: { model: "m" } },
      { customer: "a", values: { tokens_in: 1_000_000, cost: "0.5" }, dimensions: { model: "m" } },
    ]);
    const spend = async () => (await t.api("GET", "/v1/meters/spend/query?customer=a")).body.data[0].value;
    const balance = async () => (await t.api("GET", "/v1/customers/a/balance")).body.balance;
    const used = async () =>
      (await t.api("GET", "/v1/customers/a/limits")).body.data.find((l: { id: string }) => l.id === "budget")
        .used;
    expect(await spend()).toBe("3.500000");
    expect(await balance()).toBe(650);
    expect(await used()).toBe(3_500_000_000_000);

    // The price was wrong: $1.5, not $1. Correct it and reprice.
    await put(t, "/v1/prices/m", { input: "1.5", output: "1.5", effective_from: "2020-01-01T00:00:00Z" });
    const res = await t.api("POST", "/v1/prices/reprice", {
      from: iso(start - 3_600_000),
      to: iso(start + 60_000),
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      events_scanned: 3,
      events_changed: 3,
      models: [{ model: "m", events: 3, cost_before: "3.000000", cost_after: "4.500000" }],
      balance_adjustments: [{ customer: "a", rule: "per-cent", units: "1500000000000", credits: -150 }],
    });
    expect(await spend()).toBe("5.000000");
    expect(await balance()).toBe(500);
    expect(await used()).toBe(5_000_000_000_000);
    const usage = await t.api(
      "GET",
      `/v1/usage?from=${iso(start - 3_600_000)}&to=${iso(start + 3_600_000)}&granularity=day`,
    );
    expect(usage.status, usage.text).toBe(200);
    expect(usage.body.data[0].cost).toBe("5.000000");

    // Again: nothing changes.
    const again = await t.api("POST", "/v1/prices/reprice", {
      from: iso(start - 3_600_000),
      to: iso(start + 60_000),
    });
    expect(again.body).toMatchObject({ events_changed: 0, balance_adjustments: [] });
    expect(await balance()).toBe(500);
    const audit = await t.api("GET", "/v1/audit?kind=reprice");
    expect(audit.body.data.map((a: { events_changed: number }) => a.events_changed).sort()).toEqual([0, 3]);

    // A cheaper correction refunds the difference as a credit.
    await put(t, "/v1/prices/m", { input: "1", output: "1", effective_from: "2020-01-01T00:00:00Z" });
    const down = await t.api("POST", "/v1/prices/reprice", {
      from: iso(start - 3_600_000),
      to: iso(start + 60_000),
      model: "m",
    });
    expect(down.body.balance_adjustments).toEqual([
      { customer: "a", rule: "per-cent", units: "-1500000000000", credits: 150 },
    ]);
    expect(await balance()).toBe(650);
    expect(await spend()).toBe("3.500000");
  });
});

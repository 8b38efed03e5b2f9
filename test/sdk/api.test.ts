import { Tollgate, TollgateApiError } from "@tollgate/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";

/** The typed methods reach the routes API.md names (a wrong path or verb would be a 404 here). */
let t: TestServer;
let tg: Tollgate;

beforeAll(async () => {
  t = await startTestServer({ apiRateLimit: null });
  tg = new Tollgate({ baseUrl: t.url, apiKey: t.adminKey, flushOnExit: false });
});
afterAll(async () => {
  await tg?.close();
  await t?.close();
});

describe("typed API methods", () => {
  it("definitions, customers, keys, limits", async () => {
    await tg.meters.put("tokens", {
      event_type: "llm.completion",
      aggregation: "sum",
      value: ["tokens_in", "tokens_out"],
    });
    expect((await tg.meters.list()).data.map((m) => m.id)).toContain("tokens");
    await tg.plans.put("pro", {
      name: "Pro",
      limits: [{ id: "monthly", meter: "tokens", amount: 1000, period: "month" }],
    });
    expect(await tg.plans.get("pro")).toMatchObject({ id: "pro" });
    await tg.customers.put("acme", { name: "Acme", plan: "pro" });
    expect(await tg.customers.get("acme")).toMatchObject({ id: "acme", plan: "pro" });
    const key = await tg.customers.createKey("acme", { name: "app" });
    expect(key.key).toBeTruthy();
    expect((await tg.customers.listKeys("acme")).data).toHaveLength(1);
    await tg.customers.deleteKey("acme", key.id);
    await tg.rateLimits.put("rpm", { plan: "pro", scope: "customer", limit: 10, window_seconds: 60 });
    expect(await tg.rateLimits.get("rpm", { plan: "pro" })).toMatchObject({ id: "rpm" });
    await tg.concurrencyLimits.put("parallel", { plan: "pro", scope: "customer", max: 2 });
    expect((await tg.concurrencyLimits.list({ plan: "pro" })).data).toHaveLength(1);
    await tg.concurrencyLimits.delete("parallel", { plan: "pro" });
    const apiKey = await tg.apiKeys.create({ name: "svc", role: "service" });
    await tg.apiKeys.delete(apiKey.id);
    const err = await tg.meters.get("nope").catch((e) => e);
    expect(err).toBeInstanceOf(TollgateApiError);
    expect(err).toMatchObject({ status: 404, code: "NOT_FOUND" });
  });

  it("check, commit, reservations, events, queries, limits", async () => {
    const r = await tg.reserve({
      type: "llm.completion",
      customer: "acme",
      values: { tokens_in: 100, tokens_out: 50 },
    });
    expect(r.allowed).toBe(true);
    expect((await tg.getReservation(r.reservation!.id)).state).toBe("active");
    await tg.commit(r.reservation!.id, { values: { tokens_in: 90, tokens_out: 40 } });
    await tg.sendEvents([
      { id: "e1", type: "llm.completion", customer: "acme", values: { tokens_in: 5, tokens_out: 5 } },
    ]);
    const q = await tg.meters.query("tokens", { customer: "acme" });
    expect(q.data[0]!.value).toBe(140);
    expect((await tg.customers.limits("acme")).data.find((l) => l.id === "monthly")).toMatchObject({
      used: 140,
    });
    expect((await tg.customers.usagePercent("acme")).data[0]).toMatchObject({
      id: "monthly",
      percent_used: 14,
    });
  });

  it("balances, prices, usage, webhooks, alerts", async () => {
    await tg.balances.credit("acme", { amount: 100, idempotency_key: "g1" });
    await tg.balances.debit("acme", { amount: 30, idempotency_key: "d1" });
    expect(await tg.balances.get("acme")).toMatchObject({ balance: 70 });
    expect((await tg.balances.transactions("acme")).data.length).toBeGreaterThanOrEqual(2);
    await tg.balanceRules.put("per-token", { meter: "tokens", credits_per_unit: 1 });
    expect((await tg.balanceRules.list()).data.map((r) => r.id)).toContain("per-token");
    await tg.balanceRules.delete("per-token");
    expect(Array.isArray((await tg.prices.list()).data)).toBe(true);
    expect(Array.isArray((await tg.usage.get({ group_by: ["model"] })).data)).toBe(true);
    expect(Array.isArray((await tg.webhooks.list()).data)).toBe(true);
    expect(Array.isArray((await tg.alerts.list()).data)).toBe(true);
    expect(await tg.health()).toEqual({ status: "ok" });
  });
});

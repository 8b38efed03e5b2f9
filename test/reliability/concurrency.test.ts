import { ManualClock } from "@tollgate/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";

/**
 * 1,000 concurrent check+reserve calls against a hard quota with room for 100 and a balance with room
 * for 150 (the tighter one decides): exactly 100 are admitted, neither overshoots; holds whose
 * clients vanish expire at their TTL and come back, in the quota and in the balance.
 * (Across several processes: test/scaleout.)
 */
let t: TestServer;
const clock = new ManualClock(Date.UTC(2026, 10, 23, 10));
beforeAll(async () => {
  t = await startTestServer({ clock, apiRateLimit: null });
  await t.api("PUT", "/v1/meters/tokens", {
    event_type: "llm.completion",
    aggregation: "sum",
    value: "tokens_in",
  });
  await t.api("PUT", "/v1/customers/busy", { name: "Busy" });
  await t.api("PUT", "/v1/limits/cap", {
    customer: "busy",
    meter: "tokens",
    amount: 10_000,
    period: "month",
  });
  await t.api("PUT", "/v1/balance-rules/per-token", { meter: "tokens", credits_per_unit: 1, unit: 100 });
  await t.api("POST", "/v1/customers/busy/balance/credits", { amount: 150, idempotency_key: "c" });
});
afterAll(() => t.close());

describe("concurrency", () => {
  it("1,000 concurrent reserves: the quota admits exactly its room, the balance is never overdrawn", async () => {
    const answers = await Promise.all(
      Array.from({ length: 1000 }, () =>
        t.api("POST", "/v1/check", {
          event: { type: "llm.completion", customer: "busy", values: { tokens_in: 100 } },
          reserve: { ttl_seconds: 60 },
        }),
      ),
    );
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const admitted = answers.filter((a) => a.body.allowed);
    expect(admitted.length).toBe(100);
    for (const a of answers.filter((x) => !x.body.allowed)) expect(a.body.code).toBe("LIMIT_EXCEEDED");
    const limits = (await t.api("GET", "/v1/customers/busy/limits")).body.data;
    expect(limits.find((l: { id: string }) => l.id === "cap")).toMatchObject({
      used: 0,
      reserved: 10_000,
      remaining: 0,
    });
    expect((await t.api("GET", "/v1/customers/busy/balance")).body).toMatchObject({
      balance: 150,
      held: 100,
      available: 50,
    });

    // The clients vanish: at the TTL the holds come back, in the quota and in the balance.
    clock.advance(61_000);
    const after = (await t.api("GET", "/v1/customers/busy/limits")).body.data;
    expect(after.find((l: { id: string }) => l.id === "cap")).toMatchObject({
      reserved: 0,
      remaining: 10_000,
    });
    expect((await t.api("GET", "/v1/customers/busy/balance")).body).toMatchObject({
      held: 0,
      available: 150,
    });

    // Now the balance is the tighter limit: 150 credits = 150 reserves of 100 tokens... but the quota
    // has room for 100 again; with a 20,000 quota the balance decides.
    await t.api("PUT", "/v1/limits/cap", {
      customer: "busy",
      meter: "tokens",
      amount: 20_000,
      period: "month",
    });
    const second = await Promise.all(
      Array.from({ length: 1000 }, () =>
        t.api("POST", "/v1/check", {
          event: { type: "llm.completion", customer: "busy", values: { tokens_in: 100 } },
          reserve: { ttl_seconds: 60 },
        }),
      ),
    );
    expect(second.filter((a) => a.body.allowed).length).toBe(150);
    for (const a of second.filter((x) => !x.body.allowed)) expect(a.body.code).toBe("INSUFFICIENT_BALANCE");
    expect((await t.api("GET", "/v1/customers/busy/balance")).body).toMatchObject({
      held: 150,
      available: 0,
    });
  }, 120_000);
});

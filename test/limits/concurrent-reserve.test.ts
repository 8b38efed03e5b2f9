import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
  await t.api("PUT", "/v1/meters/requests", { event_type: "llm.completion", aggregation: "count" });
  await t.api("PUT", "/v1/meters/tokens", {
    event_type: "llm.completion",
    aggregation: "sum",
    value: "tokens",
  });
});
afterAll(() => t.close());

describe("check + reserve under concurrency", () => {
  it("admits exactly the room of a hard quota: 200 concurrent reserves, room for 50", async () => {
    const put = await t.api("PUT", "/v1/limits/cap", {
      customer: "c1",
      meter: "tokens",
      amount: 5000,
      period: "month",
    });
    expect(put.status).toBe(201);
    const results = await Promise.all(
      Array.from({ length: 200 }, () =>
        t.api("POST", "/v1/check", {
          event: { type: "llm.completion", customer: "c1", values: { tokens: 100 } },
          reserve: { ttl_seconds: 60 },
        }),
      ),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const admitted = results.filter((r) => r.body.allowed);
    expect(admitted.length).toBe(50);
    for (const r of results.filter((r) => !r.body.allowed)) expect(r.body.code).toBe("LIMIT_EXCEEDED");
    // Commit each with a smaller actual amount: usage equals the committed sum.
    let committed = 0;
    for (const [i, r] of admitted.entries()) {
      const actual = 50 + (i % 40);
      committed += actual;
      const c = await t.api("POST", `/v1/reservations/${r.body.reservation.id}/commit`, {
        event: { values: { tokens: actual } },
      });
      expect(c.status).toBe(200);
    }
    const limits = await t.api("GET", "/v1/customers/c1/limits");
    expect(limits.status).toBe(404); // c1 was never PUT: limits of unknown customers are 404
    await t.api("PUT", "/v1/customers/c1", { name: "C1" });
    const after = await t.api("GET", "/v1/customers/c1/limits");
    const cap = after.body.data.find((l: { id: string }) => l.id === "cap");
    expect(cap.used).toBe(committed);
    expect(cap.reserved).toBe(0);
    const q = await t.api("GET", "/v1/meters/tokens/query?customer=c1");
    expect(q.body.data[0].value).toBe(committed);
  });
});

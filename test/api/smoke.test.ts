import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());

describe("smoke", () => {
  it("records events and queries a meter", async () => {
    expect((await t.api("GET", "/health", undefined, { key: null })).status).toBe(200);
    const m = await t.api("PUT", "/v1/meters/tokens", {
      event_type: "llm.completion",
      aggregation: "sum",
      value: ["tokens_in", "tokens_out"],
    });
    expect(m.status).toBe(201);
    const ev = await t.api("POST", "/v1/events", {
      events: [
        {
          id: "e1",
          type: "llm.completion",
          customer: "acme",
          timestamp: "2026-11-23T10:00:00Z",
          values: { tokens_in: 10, tokens_out: 5 },
        },
        {
          id: "e2",
          type: "llm.completion",
          customer: "acme",
          timestamp: "2026-11-23T11:30:00Z",
          values: { tokens_in: 1 },
        },
      ],
    });
    expect(ev.status).toBe(202);
    expect(ev.body).toEqual({ accepted: 2, duplicates: 0 });
    const q = await t.api("GET", "/v1/meters/tokens/query?customer=acme&window=hour");
    expect(q.status).toBe(200);
    expect(q.body.data.map((r: { value: number }) => r.value)).toEqual([15, 1]);
  });
});

import { afterAll, describe, expect, it } from "vitest";
import { check, closeAll, customerLimit, freshServer, put, putCustomer } from "./helpers.js";

afterAll(closeAll);

describe("usage counters under concurrent recording", () => {
  it("count every event exactly once while counters are being loaded", async () => {
    const { t } = await freshServer();
    const customers = Array.from({ length: 30 }, (_, i) => `c${i}`);
    for (const c of customers) await putCustomer(t, c);
    await put(t, "/v1/limits/cap", { meter: "tokens", amount: 1_000_000, period: "month" });
    let n = 0;
    const work: Promise<unknown>[] = [];
    for (const c of customers) {
      await put(t, `/v1/limits/own`, { customer: c, meter: "tokens", amount: 1_000_000, period: "month" });
    }
    for (const c of customers) {
      for (let i = 0; i < 10; i++) {
        work.push(
          t.api("POST", "/v1/events", {
            events: [{ id: `e${++n}`, type: "llm.completion", customer: c, values: { tokens_in: 7 } }],
          }),
        );
        if (i % 3 === 0) work.push(check(t, { customer: c, values: { tokens_in: 1 } }));
      }
    }
    await Promise.all(work);
    for (const c of customers) expect((await customerLimit(t, c, "own")).used, c).toBe(70);
    expect((await customerLimit(t, "c0", "cap")).used).toBe(70 * customers.length);
  });
});

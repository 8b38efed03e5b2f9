import { afterAll, describe, expect, it } from "vitest";
import { check, closeAll, DAY, freshServer, HOUR, iso, put, record, TYPE } from "../limits/helpers.js";
import { readTrace } from "../support/azure.js";
import { expectError } from "../support/server.js";

afterAll(closeAll);

/** The independent table: USD per 1K tokens, input / output. */
const TABLE: Record<string, [string, string]> = {
  "gpt-4": ["0.03", "0.06"],
  "gpt-4o": ["0.005", "0.015"],
  "gpt-3.5-turbo": ["0.0005", "0.0015"],
  "claude-3-opus": ["0.015", "0.075"],
  "claude-3.5-sonnet": ["0.003", "0.015"],
  "claude-3.5-haiku": ["0.001", "0.005"],
  "gemini-1.5-pro": ["0.00125", "0.005"],
  "gemini-1.5-flash": ["0.000075", "0.0003"],
};
const MODELS = Object.keys(TABLE);

// ---- an independent reference: decimal strings to pico-USD by string arithmetic, no floats ----------
/** "0.000075" USD → pico-USD (1e-12) as a bigint. */
function pico(usd: string): bigint {
  const [whole, frac = ""] = usd.split(".");
  return BigInt(whole!) * 10n ** 12n + BigInt(frac.padEnd(12, "0"));
}
/** pico-USD → "12.345678" (at least 6 decimals), the API's money format. */
function usd(p: bigint): string {
  const s = p.toString().padStart(13, "0");
  let frac = s.slice(-12);
  while (frac.length > 6 && frac.endsWith("0")) frac = frac.slice(0, -1);
  return `${s.slice(0, -12)}.${frac}`;
}
/** The cost of `tokens` at a price per 1K tokens, exactly (every table price × tokens is whole pico). */
function costOf(tokens: number, per1k: string): bigint {
  const total = BigInt(tokens) * pico(per1k);
  expect(total % 1000n).toBe(0n);
  return total / 1000n;
}
/** "0.03" per 1K → "30" per 1M: the API takes USD per 1M tokens. */
function per1M(per1k: string): string {
  const p = pico(per1k) * 1000n; // pico per 1M
  return usd(p);
}

async function setTable(t: Awaited<ReturnType<typeof freshServer>>["t"], from?: string) {
  for (const [model, [input, output]] of Object.entries(TABLE)) {
    const res = await t.api("PUT", `/v1/prices/${model}`, {
      input: per1M(input),
      output: per1M(output),
      ...(from ? { effective_from: from } : {}),
    });
    expect(res.status, res.text).toBe(201);
  }
}

describe("cost of recorded events", () => {
  it("a month of the Azure trace costs exactly the table's products, per model and in total", async () => {
    const monthStart = Date.UTC(2026, 10, 1);
    const { t, clock, workspace } = await freshServer({ start: monthStart + 30 * DAY - HOUR });
    await setTable(t, iso(monthStart - DAY));
    await put(t, "/v1/meters/spend", { event_type: TYPE, aggregation: "sum", value: "cost" });
    // conv.csv spread over the 30 days of November, models in turn: ~19k events.
    const trace = readTrace("conv");
    const expected = new Map<string, bigint>();
    let total = 0n;
    const events = trace.map((row, i) => {
      const model = MODELS[i % MODELS.length]!;
      const [input, output] = TABLE[model]!;
      const cost = costOf(row.contextTokens, input) + costOf(row.generatedTokens, output);
      expected.set(model, (expected.get(model) ?? 0n) + cost);
      total += cost;
      const dayStart = monthStart + (i % 30) * DAY;
      const timeOfDay = row.timestamp % DAY;
      return {
        id: `trace_${i}`,
        customer: `cust_${i % 7}`,
        timestamp: iso(dayStart + timeOfDay),
        values: { tokens_in: row.contextTokens, tokens_out: row.generatedTokens },
        dimensions: { model },
      };
    });
    for (let i = 0; i < events.length; i += 1000) await record(t, events.slice(i, i + 1000));
    expect(clock.now()).toBeGreaterThan(monthStart);

    const byModel = await t.api(
      "GET",
      `/v1/meters/spend/query?window=month&group_by=model&from=${iso(monthStart)}&to=${iso(monthStart + 30 * DAY)}`,
    );
    expect(byModel.status, byModel.text).toBe(200);
    expect(byModel.body.data).toHaveLength(MODELS.length);
    for (const row of byModel.body.data) {
      expect(row.value, row.groups.model).toBe(usd(expected.get(row.groups.model)!));
    }
    const all = await t.api(
      "GET",
      `/v1/meters/spend/query?from=${iso(monthStart)}&to=${iso(monthStart + 30 * DAY)}`,
    );
    expect(all.body.data[0].value).toBe(usd(total));
    // Every event records the row it was priced with.
    let priced = 0;
    await t.server.engine.store.scanEvents(workspace, {}, (e) => {
      expect(e.priceRow).toBe(`override:${e.dimensions.model}:${iso(monthStart - DAY)}`);
      priced++;
    });
    expect(priced).toBe(events.length);
  });

  it("each event costs the product to the last digit, cached and reasoning tokens priced once each", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/meters/spend", { event_type: TYPE, aggregation: "sum", value: "cost" });
    const res = await t.api("PUT", "/v1/prices/my-model", {
      input: "2.5",
      output: "10",
      cached_input: "1.25",
      reasoning: "12",
      effective_from: iso(Date.UTC(2026, 0, 1)),
    });
    expect(res.status, res.text).toBe(201);
    // 1000 in (400 cached) and 300 out (100 reasoning):
    // 600 × 2.5 + 400 × 1.25 + 200 × 10 + 100 × 12 per 1M = 0.0015 + 0.0005 + 0.002 + 0.0012 = 0.0052 USD
    await record(t, [
      {
        customer: "a",
        values: { tokens_in: 1000, cached_tokens_in: 400, tokens_out: 300, reasoning_tokens: 100 },
        dimensions: { model: "my-model" },
      },
    ]);
    const q = await t.api("GET", "/v1/meters/spend/query?customer=a");
    expect(q.body.data[0].value).toBe("0.005200");
    // Cached tokens are part of tokens_in: more cached than input is refused, nothing stored.
    const bad = await t.api("POST", "/v1/events", {
      events: [
        {
          id: "ok_1",
          type: TYPE,
          customer: "a",
          values: { tokens_in: 5 },
          dimensions: { model: "my-model" },
        },
        {
          id: "bad_1",
          type: TYPE,
          customer: "a",
          values: { tokens_in: 10, cached_tokens_in: 11 },
          dimensions: { model: "my-model" },
        },
      ],
    });
    const err = expectError(bad, 400, "INVALID_REQUEST");
    expect(err.details).toMatchObject({ index: 1, field: "events[1].values.cached_tokens_in" });
    expect((await t.api("GET", "/v1/meters/spend/query?customer=a")).body.data[0].value).toBe("0.005200");
  });

  it("an event is priced by the row in force at its timestamp; an event's own cost wins", async () => {
    const { t, clock } = await freshServer();
    await put(t, "/v1/meters/spend", { event_type: TYPE, aggregation: "sum", value: "cost" });
    const now = clock.now();
    await t.api("PUT", "/v1/prices/m1", { input: "1", output: "1", effective_from: iso(now - 10 * DAY) });
    await t.api("PUT", "/v1/prices/m1", { input: "3", output: "3", effective_from: iso(now - 2 * DAY) });
    await record(t, [
      {
        customer: "b",
        timestamp: iso(now - 5 * DAY),
        values: { tokens_in: 1_000_000 },
        dimensions: { model: "m1" },
      },
      {
        customer: "c",
        timestamp: iso(now - DAY),
        values: { tokens_in: 1_000_000 },
        dimensions: { model: "m1" },
      },
    ]);
    expect((await t.api("GET", "/v1/meters/spend/query?customer=b")).body.data[0].value).toBe("1.000000");
    expect((await t.api("GET", "/v1/meters/spend/query?customer=c")).body.data[0].value).toBe("3.000000");
    // Own cost: a decimal USD string, kept exactly; a number is refused (money is never a float).
    const own = await t.api("POST", "/v1/events", {
      events: [
        {
          id: "own_1",
          type: TYPE,
          customer: "d",
          values: { tokens_in: 10, cost: "0.123456789012" },
          dimensions: { model: "m1" },
        },
      ],
    });
    expect(own.status, own.text).toBe(202);
    expect((await t.api("GET", "/v1/meters/spend/query?customer=d")).body.data[0].value).toBe(
      "0.123456789012",
    );
    const float = await t.api("POST", "/v1/events", {
      events: [{ id: "own_2", type: TYPE, customer: "d", values: { cost: 0.5 } }],
    });
    expectError(float, 400, "INVALID_REQUEST");
    // A retry of the same event is a duplicate, counted once.
    const again = await t.api("POST", "/v1/events", {
      events: [
        {
          id: "own_1",
          type: TYPE,
          customer: "d",
          values: { tokens_in: 10, cost: "0.123456789012" },
          dimensions: { model: "m1" },
        },
      ],
    });
    expect(again.body).toEqual({ accepted: 0, duplicates: 1 });
  });

  it("unknown models: tokens_only (counted in /metrics), reject (400, nothing stored), fallback", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/meters/spend", { event_type: TYPE, aggregation: "sum", value: "cost" });
    await put(t, "/v1/meters/tokens_in", { event_type: TYPE, aggregation: "sum", value: "tokens_in" });
    const metric = async () => {
      const text = await (await fetch(`${t.url}/metrics`)).text();
      return Number(/^tollgate_events_unpriced_total (\d+)/m.exec(text)?.[1] ?? "0");
    };
    const before = await metric();
    await record(t, [{ customer: "u", values: { tokens_in: 100 }, dimensions: { model: "no-such-model" } }]);
    expect(await metric()).toBe(before + 1);
    expect((await t.api("GET", "/v1/meters/tokens_in/query?customer=u")).body.data[0].value).toBe(100);
    // Recorded without a cost: the spend meter sees the event with nothing to add.
    expect((await t.api("GET", "/v1/meters/spend/query?customer=u")).body.data[0].value).toBe("0.000000");

    expect((await t.api("PUT", "/v1/settings/pricing", { unknown_model: "reject" })).status).toBe(200);
    const rejected = await t.api("POST", "/v1/events", {
      events: [
        {
          id: "unk_2",
          type: TYPE,
          customer: "u",
          values: { tokens_in: 100 },
          dimensions: { model: "no-such-model" },
        },
      ],
    });
    expect(expectError(rejected, 400, "INVALID_REQUEST").details).toMatchObject({
      index: 0,
      field: "events[0].dimensions.model",
    });
    expect((await t.api("GET", "/v1/meters/tokens_in/query?customer=u")).body.data[0].value).toBe(100);

    await t.api("PUT", "/v1/prices/house", {
      input: "1",
      output: "2",
      effective_from: "2020-01-01T00:00:00Z",
    });
    const fb = await t.api("PUT", "/v1/settings/pricing", {
      unknown_model: "fallback",
      fallback_model: "house",
    });
    expect(fb.body).toEqual({ unknown_model: "fallback", fallback_model: "house" });
    await record(t, [
      { customer: "v", values: { tokens_in: 500_000 }, dimensions: { model: "no-such-model" } },
    ]);
    expect((await t.api("GET", "/v1/meters/spend/query?customer=v")).body.data[0].value).toBe("0.500000");
    // A fallback model without a price is refused up front.
    expectError(
      await t.api("PUT", "/v1/settings/pricing", { unknown_model: "fallback", fallback_model: "nothing" }),
      400,
      "INVALID_REQUEST",
    );
  });

  it("the catalogue prices current OpenAI, Anthropic and Google models; GET /v1/prices lists rows and overrides", async () => {
    const { t } = await freshServer();
    const list = await t.api("GET", "/v1/prices");
    expect(list.status).toBe(200);
    expect(list.body.source.package).toBe("@pydantic/genai-prices");
    const providers = new Set(list.body.data.map((r: { provider?: string }) => r.provider));
    for (const p of ["openai", "anthropic", "google"]) expect(providers.has(p)).toBe(true);
    const gpt4o = list.body.data.find((r: { model: string; source: string }) => r.model === "gpt-4o");
    expect(gpt4o).toMatchObject({ source: "catalogue" });
    await t.api("PUT", "/v1/prices/gpt-4o", { input: "2", output: "8" });
    const one = await t.api("GET", "/v1/prices?model=gpt-4o");
    expect(one.body.data.map((r: { source: string }) => r.source)).toContain("override");
    // A price with more than 6 decimals per 1M tokens cannot be kept exactly in pico-USD: refused.
    expectError(
      await t.api("PUT", "/v1/prices/x", { input: "0.0000001", output: "1" }),
      400,
      "INVALID_REQUEST",
    );
  });

  it("a reservation of a priced model commits with its estimate when no actual event is given", async () => {
    const { t } = await freshServer();
    await t.api("PUT", "/v1/prices/m3", { input: "2", output: "4", effective_from: "2020-01-01T00:00:00Z" });
    await put(t, "/v1/meters/spend", { event_type: TYPE, aggregation: "sum", value: "cost" });
    const a = await check(
      t,
      { customer: "r", values: { tokens_in: 1_000_000, tokens_out: 500_000 }, dimensions: { model: "m3" } },
      { ttl_seconds: 60 },
    );
    const c = await t.api("POST", `/v1/reservations/${a.reservation!.id}/commit`, {});
    expect(c.status, c.text).toBe(200);
    expect((await t.api("GET", "/v1/meters/spend/query?customer=r")).body.data[0].value).toBe("4.000000");
  });

  it("a spend cap: a hard quota over a cost meter, in USD, denies the check that would pass it", async () => {
    const { t } = await freshServer();
    await t.api("PUT", "/v1/prices/m2", {
      input: "10",
      output: "10",
      effective_from: "2020-01-01T00:00:00Z",
    });
    await put(t, "/v1/meters/spend", { event_type: TYPE, aggregation: "sum", value: "cost" });
    await put(t, "/v1/limits/budget", { customer: "s", meter: "spend", amount: "1.00", period: "month" });
    // 90,000 tokens at $10/1M = $0.90.
    await record(t, [{ customer: "s", values: { tokens_in: 90_000 }, dimensions: { model: "m2" } }]);
    const ok = await check(t, { customer: "s", values: { tokens_in: 10_000 }, dimensions: { model: "m2" } });
    expect(ok.allowed).toBe(true);
    const no = await check(t, { customer: "s", values: { tokens_in: 10_001 }, dimensions: { model: "m2" } });
    expect(no.allowed).toBe(false);
    expect(no.code).toBe("LIMIT_EXCEEDED");
    // The same cap listed inline in a plan: its amount is USD too.
    await put(t, "/v1/plans/capped", {
      name: "Capped",
      limits: [{ id: "plan-budget", meter: "spend", amount: "1.00", period: "month" }],
    });
    await put(t, "/v1/customers/p", { plan: "capped" });
    await record(t, [{ customer: "p", values: { tokens_in: 90_000 }, dimensions: { model: "m2" } }]);
    expect(
      (await check(t, { customer: "p", values: { tokens_in: 10_000 }, dimensions: { model: "m2" } })).allowed,
    ).toBe(true);
    const over = await check(t, {
      customer: "p",
      values: { tokens_in: 10_001 },
      dimensions: { model: "m2" },
    });
    expect(over).toMatchObject({ allowed: false, code: "LIMIT_EXCEEDED" });
    const state = await t.api("GET", "/v1/customers/p/limits");
    expect(state.status, state.text).toBe(200);
    expect(state.body.data.find((l: { id: string }) => l.id === "plan-budget")).toMatchObject({
      percent_used: 90,
      state: "warning",
    });
    // A USD amount on a meter that is not money is refused.
    expectError(
      await t.api("PUT", "/v1/limits/bad", {
        customer: "s",
        meter: "tokens",
        amount: "1.00",
        period: "month",
      }),
      400,
      "INVALID_REQUEST",
    );
  });
});

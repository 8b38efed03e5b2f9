/**
 * Overage: a plan's included amount per meter and the price of each unit past it. Over a replay of the
 * Azure LLM trace (two months, three customers, one of them billed from an anchor in its own zone),
 * GET /v1/customers/{id}/overage must equal an independent computation done here with bigints and
 * string arithmetic: which events fall in the billing cycle, what they add up to, and the charge.
 */
import { afterAll, describe, expect, it } from "vitest";
import { closeAll, DAY, freshServer, iso, put, putCustomer, TYPE } from "../limits/helpers.js";
import { readTrace } from "../support/azure.js";
import type { ApiResponse } from "../support/server.js";

afterAll(closeAll);

/**
 * The server sheds requests (503 UNAVAILABLE, Retry-After) while its event loop lags, which a loaded
 * shared machine can cause during a bulk replay: a shed batch changed nothing, so send it again.
 */
async function unshed(send: () => Promise<ApiResponse>): Promise<ApiResponse> {
  for (let attempt = 0; ; attempt++) {
    const res = await send();
    if (res.status !== 503 || attempt >= 30) return res;
    await new Promise((r) => setTimeout(r, 500));
  }
}

const utc = (y: number, mo: number, d: number, h = 0, mi = 0) => Date.UTC(y, mo - 1, d, h, mi);

/** USD per 1M tokens → pico-USD per token (exact for these prices). */
const PRICES: Record<string, { input: string; output: string; pIn: bigint; pOut: bigint }> = {
  "gpt-4o": { input: "2.5", output: "10", pIn: 2_500_000n, pOut: 10_000_000n },
  "gpt-4o-mini": { input: "0.15", output: "0.6", pIn: 150_000n, pOut: 600_000n },
};
const MODELS = Object.keys(PRICES);

/** The plan's terms, as the test reads them. */
const TERMS = {
  tokens: { included: 2_000_000n, price: "0.000002" },
  requests: { included: 1_500n, price: "0.0015" },
  spend: { includedUsd: "5.00", price: "1.2" },
};

// ---- independent arithmetic: decimal strings ↔ scaled bigints, no floats, no Tollgate code -------
function scaled(decimal: string, scale: number): bigint {
  const [whole, frac = ""] = decimal.split(".");
  return BigInt(whole!) * 10n ** BigInt(scale) + BigInt((frac + "0".repeat(scale)).slice(0, scale));
}
function decimal(value: bigint, scale: number, minDecimals = 6): string {
  const s = value.toString().padStart(scale + 1, "0");
  let frac = s.slice(s.length - scale);
  while (frac.length > minDecimals && frac.endsWith("0")) frac = frac.slice(0, -1);
  return `${s.slice(0, s.length - scale)}${frac ? `.${frac}` : ""}`;
}

interface Replayed {
  customer: string;
  timestamp: number;
  model: string;
  tokensIn: number;
  tokensOut: number;
}

/** conv.csv spread over Oct 20 – Dec 20, 2026 (time of day kept), customers and models in turn. */
function replay(): Replayed[] {
  const start = utc(2026, 10, 20);
  const days = 61;
  return readTrace("conv").map((row, i) => ({
    customer: ["acme", "globex", "initech"][i % 3]!,
    timestamp: start + (i % days) * DAY + (row.timestamp % DAY),
    model: MODELS[(i >> 1) % MODELS.length]!,
    tokensIn: row.contextTokens,
    tokensOut: row.generatedTokens,
  }));
}

function expectedOverage(events: Replayed[], customer: string, from: number, to: number) {
  let tokens = 0n;
  let requests = 0n;
  let spend = 0n; // pico-USD
  for (const e of events) {
    if (e.customer !== customer || e.timestamp < from || e.timestamp >= to) continue;
    tokens += BigInt(e.tokensIn + e.tokensOut);
    requests += 1n;
    spend += BigInt(e.tokensIn) * PRICES[e.model]!.pIn + BigInt(e.tokensOut) * PRICES[e.model]!.pOut;
  }
  const over = (used: bigint, included: bigint) => (used > included ? used - included : 0n);
  const tokensOver = over(tokens, TERMS.tokens.included);
  const requestsOver = over(requests, TERMS.requests.included);
  const spendIncluded = scaled(TERMS.spend.includedUsd, 12);
  const spendOver = over(spend, spendIncluded);
  // Charges: units × price (12 decimals); spend's units are pico-USD, so its charge has 24.
  const tokensCharge = tokensOver * scaled(TERMS.tokens.price, 12);
  const requestsCharge = requestsOver * scaled(TERMS.requests.price, 12);
  const spendCharge = spendOver * scaled(TERMS.spend.price, 12);
  const total = (tokensCharge + requestsCharge) * 10n ** 12n + spendCharge;
  return {
    rows: [
      {
        meter: "requests",
        included: Number(TERMS.requests.included),
        used: Number(requests),
        overage_units: Number(requestsOver),
        unit_price: TERMS.requests.price,
        overage_charge: decimal(requestsCharge, 12),
      },
      {
        meter: "spend",
        included: decimal(spendIncluded, 12),
        used: decimal(spend, 12),
        overage_units: decimal(spendOver, 12),
        unit_price: TERMS.spend.price,
        overage_charge: decimal(spendCharge, 24),
      },
      {
        meter: "tokens",
        included: Number(TERMS.tokens.included),
        used: Number(tokens),
        overage_units: Number(tokensOver),
        unit_price: TERMS.tokens.price,
        overage_charge: decimal(tokensCharge, 12),
      },
    ],
    total: decimal(total, 24),
    tokens,
  };
}

describe("GET /v1/customers/{id}/overage over the Azure trace", () => {
  it("equals an independent computation for each customer's billing month", async () => {
    const { t } = await freshServer({ start: utc(2026, 12, 21) });
    for (const [model, p] of Object.entries(PRICES)) {
      const res = await t.api("PUT", `/v1/prices/${model}`, {
        input: p.input,
        output: p.output,
        effective_from: "2026-01-01T00:00:00Z",
      });
      expect(res.status, res.text).toBe(201);
    }
    await put(t, "/v1/meters/spend", { event_type: TYPE, aggregation: "sum", value: "cost" });
    await put(t, "/v1/plans/pro", {
      name: "Pro",
      overage: [
        { meter: "requests", included: 1500, unit_price: TERMS.requests.price },
        { meter: "spend", included: TERMS.spend.includedUsd, unit_price: TERMS.spend.price },
        { meter: "tokens", included: 2_000_000, unit_price: TERMS.tokens.price },
      ],
    });
    // acme: calendar months in UTC; globex: anchored on the 15th 12:00 UTC; initech: anchored on
    // the 31st at 18:00 in Los Angeles (its November cycle ends on the 30th, the 31st rule).
    await putCustomer(t, "acme", { plan: "pro" });
    await putCustomer(t, "globex", { plan: "pro", billing_anchor: "2026-03-15T12:00:00Z" });
    await putCustomer(t, "initech", {
      plan: "pro",
      timezone: "America/Los_Angeles",
      billing_anchor: "2026-01-31T18:00:00-08:00",
    });

    const events = replay();
    for (let i = 0; i < events.length; i += 500) {
      const res = await unshed(() =>
        t.api("POST", "/v1/events", {
          events: events.slice(i, i + 500).map((e, j) => ({
            id: `az_${i + j}`,
            type: TYPE,
            customer: e.customer,
            timestamp: iso(e.timestamp),
            values: { tokens_in: e.tokensIn, tokens_out: e.tokensOut },
            dimensions: { model: e.model },
          })),
        }),
      );
      expect(res.status, res.text).toBe(202);
    }

    const cycles = [
      // [customer, an instant in the cycle, cycle start, cycle end] — bounds computed by hand
      ["acme", "2026-11-20T00:00:00Z", utc(2026, 11, 1), utc(2026, 12, 1)],
      ["globex", "2026-11-20T00:00:00Z", utc(2026, 11, 15, 12), utc(2026, 12, 15, 12)],
      // Oct 31 18:00 PDT (UTC-7) to Nov 30 18:00 PST (UTC-8)
      ["initech", "2026-11-20T00:00:00Z", utc(2026, 11, 1, 1), utc(2026, 12, 1, 2)],
    ] as const;
    let someOverage = false;
    for (const [customer, at, from, to] of cycles) {
      const res = await t.api("GET", `/v1/customers/${customer}/overage?at=${at}`);
      expect(res.status, res.text).toBe(200);
      const expected = expectedOverage(events, customer, from, to);
      expect(res.body.period).toEqual({ unit: "month", start: iso(from), end: iso(to) });
      expect(res.body.plan).toBe("pro");
      const rows = [...res.body.data].sort((a, b) => (a.meter < b.meter ? -1 : 1));
      expect(rows).toEqual(expected.rows);
      expect(res.body.total_charge).toBe(expected.total);
      if (expected.tokens > TERMS.tokens.included) someOverage = true;
    }
    // The replay does go past the included tokens (otherwise the test would prove little).
    expect(someOverage).toBe(true);

    // The meter query over the same cycle agrees with the overage's `used`.
    const q = await t.api(
      "GET",
      `/v1/meters/tokens/query?customer=globex&from=${iso(utc(2026, 11, 15, 12))}&to=${iso(utc(2026, 12, 15, 12))}`,
    );
    const ov = await t.api("GET", "/v1/customers/globex/overage?at=2026-12-01T00:00:00Z");
    expect(ov.body.data.find((r: { meter: string }) => r.meter === "tokens").used).toBe(q.body.data[0].value);

    // Without `at`: the cycle containing now (Dec 21): acme's December.
    const now = await t.api("GET", "/v1/customers/acme/overage");
    expect(now.body.period).toMatchObject({ start: "2026-12-01T00:00:00Z", end: "2027-01-01T00:00:00Z" });
    expect(now.body.data.find((r: { meter: string }) => r.meter === "tokens").used).toBe(
      Number(expectedOverage(events, "acme", utc(2026, 12, 1), utc(2027, 1, 1)).tokens),
    );
  }, 120_000);

  it("a customer without a plan (or a plan without terms) owes nothing; bad queries are 400; unknown customers 404", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "solo");
    const res = await t.api("GET", "/v1/customers/solo/overage");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ plan: null, data: [], total_charge: "0.000000" });
    expect((await t.api("GET", "/v1/customers/solo/overage?at=yesterday")).status).toBe(400);
    expect((await t.api("GET", "/v1/customers/solo/overage?period=day")).status).toBe(400);
    expect((await t.api("GET", "/v1/customers/nobody/overage")).status).toBe(404);
  });
});

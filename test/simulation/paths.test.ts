// The replay's two recording paths report the same: `direct` (admitted events straight into the
// simulated limiter's counters and balances, priced once by the check) and `store` (Engine.recordEvents
// through the sink store, as a live ingest). Property-based over workloads that exercise hard, soft
// and shadow quotas (calendar, rolling, grouped, workspace-wide), rate limits of every algorithm,
// proposed prices, debit rules on balances, and alerts; and the same replay read from SQLite through
// streamEvents (its reader thread) against the memory store's pages.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  canonicalFlat,
  type EventToStore,
  type ProposedConfig,
  Simulation,
  type SimulationResult,
  type Store,
} from "@tollgate/core";
import { priceCatalogue } from "@tollgate/server";
import { MemoryStore } from "@tollgate/store-memory";
import { SqliteStore } from "@tollgate/store-sqlite";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { simulationDeps } from "../support/simulation.js";

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 2, 0, 0, 0);
const FROM = T0 + 20 * HOUR;
const TO = T0 + 30 * HOUR;
const CUSTOMERS = ["a", "b", "c", "d"];
const MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-haiku", "unknown-model"];
const catalogue = priceCatalogue();

interface Row {
  customer: string;
  at: number;
  tokensIn: number;
  tokensOut: number;
  model: string;
  /** priced: a cost Tollgate computed (price row); own: the producer's cost; none: no cost. */
  cost: "priced" | "own" | "none";
}

const rowsArb = fc.array(
  fc.record({
    customer: fc.constantFrom(...CUSTOMERS),
    at: fc.integer({ min: FROM - HOUR, max: TO + HOUR }),
    tokensIn: fc.integer({ min: 0, max: 3_000 }),
    tokensOut: fc.integer({ min: 0, max: 1_000 }),
    model: fc.constantFrom(...MODELS),
    cost: fc.constantFrom("priced", "own", "none"),
  }),
  { minLength: 1, maxLength: 150 },
);

const algorithmArb = fc.constantFrom("fixed_window", "sliding_window", "token_bucket", "gcra", "burst");

interface Knobs {
  hourly: number;
  daily: number;
  rolling: number;
  perModel: number;
  workspace: number | null;
  rate: { algorithm: string; limit: number; window: number };
  credits: number | null;
}

const knobsArb: fc.Arbitrary<Knobs> = fc.record({
  hourly: fc.integer({ min: 500, max: 20_000 }),
  daily: fc.integer({ min: 1_000, max: 40_000 }),
  rolling: fc.integer({ min: 1_000, max: 30_000 }),
  perModel: fc.integer({ min: 500, max: 10_000 }),
  workspace: fc.option(fc.integer({ min: 5_000, max: 100_000 }), { nil: null }),
  rate: fc.record({
    algorithm: algorithmArb,
    limit: fc.integer({ min: 1_000, max: 8_000 }),
    window: fc.constantFrom(60, 600, 3_600),
  }),
  credits: fc.option(fc.integer({ min: 0, max: 20_000 }), { nil: null }),
});

function proposal(k: Knobs): ProposedConfig {
  return {
    meters: {
      tokens: { event_type: "llm", aggregation: "sum", value: ["tokens_in", "tokens_out"] },
      spend: { event_type: "llm", aggregation: "sum", value: "cost" },
      requests: { event_type: "llm", aggregation: "count" },
    },
    plans: {
      p: {
        name: "P",
        limits: [
          { id: "hourly", meter: "tokens", amount: k.hourly, period: "hour" },
          { id: "daily", meter: "tokens", amount: k.daily, period: "day", enforcement: "soft" },
          {
            id: "rolling",
            meter: "tokens",
            amount: k.rolling,
            period: { rolling_seconds: 7_200 },
            enforcement: "shadow",
            thresholds: [50, 90, 100],
          },
          { id: "per_model", meter: "tokens", amount: k.perModel, period: "hour", group_by: ["model"] },
        ],
        rate_limits: [
          {
            id: "tpm",
            scope: "customer",
            value: "tokens_in",
            limit: k.rate.limit,
            window_seconds: k.rate.window,
            algorithm: k.rate.algorithm,
          },
          { id: "rpm", scope: "customer", limit: 20, window_seconds: 60, algorithm: "fixed_window" },
        ],
      },
    },
    customers: Object.fromEntries(CUSTOMERS.slice(0, 3).map((c) => [c, { plan: "p" }])),
    limits: [
      // A spend cap in USD (pico-USD counters), soft, on one customer.
      { id: "spend", customer: "a", meter: "spend", amount: "0.05", period: "day", enforcement: "soft" },
      ...(k.workspace !== null
        ? [{ id: "ws_daily", meter: "requests", amount: Math.ceil(k.workspace / 1_000), period: "day" }]
        : []),
    ],
    ...(k.credits !== null
      ? { balance_rules: [{ id: "per_token", meter: "tokens", credits_per_unit: 3, unit: 4 }] }
      : {}),
    prices: { "gpt-4o": { input: "2", output: "8" } },
  };
}

function storedEvents(rows: Row[]): EventToStore[] {
  return rows.map((r, i) => {
    const values: Record<string, number> = { tokens_in: r.tokensIn, tokens_out: r.tokensOut };
    let priceRow: string | undefined;
    if (r.cost === "priced") {
      values.cost = (r.tokensIn * 2_500_000 + r.tokensOut * 10_000_000) * 1_000;
      priceRow = `live:${r.model}`;
    } else if (r.cost === "own") values.cost = 1_000_000 + i;
    const dimensions = { model: r.model };
    const event = {
      id: `e${i}`,
      type: "llm",
      customer: r.customer,
      timestamp: r.at,
      values,
      dimensions,
      ...(priceRow ? { priceRow } : {}),
    };
    return {
      event,
      fingerprint: `e${i}`,
      valuesJson: canonicalFlat(values),
      dimensionsJson: canonicalFlat(dimensions),
      ...(priceRow ? { priceRow } : {}),
    };
  });
}

async function fill(source: Store, rows: Row[], credits: number | null): Promise<void> {
  await source.ensureWorkspace("default", 0);
  const result = await source.appendEvents("default", storedEvents(rows));
  expect(result.ok).toBe(true);
  for (const c of CUSTOMERS) {
    const body = { name: null, plan: null, timezone: "UTC", billingAnchor: null, metadata: {} };
    await source.putRecord("default", "customer", c, body, 0);
    if (credits !== null && c !== "d") {
      await source.appendLedger("default", c, [
        { kind: "credit", idempotencyKey: `grant/${c}`, at: FROM - 10 * HOUR, amount: credits },
      ]);
    }
  }
}

async function simulate(source: Store, k: Knobs, recording: "direct" | "store"): Promise<SimulationResult> {
  const sim = await Simulation.prepare(simulationDeps(source, { prices: catalogue, recording }), {
    from: new Date(FROM).toISOString(),
    to: new Date(TO).toISOString(),
    config: proposal(k),
  });
  return sim.run();
}

/** The report without its wall-time figures. */
function findings(r: SimulationResult) {
  const { elapsed_ms: _, events_per_second: __, ...rest } = r;
  return rest;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("the direct recording path", () => {
  it("reports exactly what recording through the store reports", async () => {
    const seen = { denied: 0, overage: 0, alerts: 0, credits: 0, balance: 0 };
    await fc.assert(
      fc.asyncProperty(rowsArb, knobsArb, async (rows, k) => {
        const source = new MemoryStore();
        await fill(source, rows as Row[], k.credits);
        const direct = await simulate(source, k, "direct");
        const general = await simulate(source, k, "store");
        expect(findings(direct)).toEqual(findings(general));
        seen.denied += direct.totals.denied;
        seen.overage += direct.totals.overage;
        seen.alerts += direct.totals.alerts;
        seen.credits += direct.totals.credits_proposed;
        // Refused for want of credits after spending some (a customer with a grant).
        for (const c of direct.customers) {
          if (c.customer === "d" || !k.credits) continue;
          for (const l of c.limits) if (l.limit === "balance") seen.balance += l.denied;
        }
      }),
      { numRuns: 60 },
    );
    // The workloads did exercise what is compared.
    expect(seen.denied).toBeGreaterThan(0);
    expect(seen.overage).toBeGreaterThan(0);
    expect(seen.alerts).toBeGreaterThan(0);
    expect(seen.credits).toBeGreaterThan(0);
    expect(seen.balance).toBeGreaterThan(0);
  }, 300_000);

  it("debits the balance as recording through the store does, until the credits run out", async () => {
    // Only a debit rule: customer a's 10,000 credits pay for three events of 3,000 credits.
    const source = new MemoryStore();
    const rows: Row[] = Array.from({ length: 6 }, (_, i) => ({
      customer: "a",
      at: FROM + i * 1_000,
      tokensIn: 3_000,
      tokensOut: 1_000,
      model: "unknown-model",
      cost: "none",
    }));
    await fill(source, rows, 10_000);
    const config: ProposedConfig = {
      meters: { tokens: { event_type: "llm", aggregation: "sum", value: ["tokens_in", "tokens_out"] } },
      balance_rules: [{ id: "per_token", meter: "tokens", credits_per_unit: 3, unit: 4 }],
    };
    const run = async (recording: "direct" | "store") => {
      const sim = await Simulation.prepare(simulationDeps(source, { recording }), {
        from: new Date(FROM).toISOString(),
        to: new Date(TO).toISOString(),
        config,
      });
      return findings(await sim.run());
    };
    const direct = await run("direct");
    expect(direct).toEqual(await run("store"));
    expect(direct.customers[0]).toMatchObject({
      customer: "a",
      allowed: 3,
      denied: 3,
      credits_proposed: 9_000,
    });
  });

  it("reports the same from SQLite's reader thread (streamEvents) as from the memory store", async () => {
    await fc.assert(
      fc.asyncProperty(rowsArb, knobsArb, async (rows, k) => {
        const memory = new MemoryStore();
        await fill(memory, rows as Row[], k.credits);
        const dir = mkdtempSync(join(tmpdir(), "tollgate-sim-paths-"));
        dirs.push(dir);
        const sqlite = new SqliteStore({ path: join(dir, "t.db"), synchronous: "normal" });
        try {
          await fill(sqlite, rows as Row[], k.credits);
          const fromSqlite = await simulate(sqlite, k, "direct");
          const fromMemory = await simulate(memory, k, "store");
          expect(findings(fromSqlite)).toEqual(findings(fromMemory));
        } finally {
          await sqlite.close();
        }
      }),
      { numRuns: 8 },
    );
  }, 300_000);
});

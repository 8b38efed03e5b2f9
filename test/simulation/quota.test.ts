// The replay's quota decisions against an independent reference, for any interleaving of customers:
// hard hourly quotas per customer (a plan's) and, optionally, one daily quota over the whole workspace.
// Admitted events are recorded in batches; this checks that a check always sees every earlier event.
import { canonicalFlat, type EventToStore, Simulation, type SimulationResult } from "@tollgate/core";
import { MemoryStore } from "@tollgate/store-memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { simulationDeps } from "../support/simulation.js";

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 2, 0, 0, 0);

interface Row {
  customer: string;
  at: number;
  tokens: number;
}

async function simulate(rows: Row[], hourly: number, daily: number | null): Promise<SimulationResult> {
  const source = new MemoryStore();
  await source.ensureWorkspace("default", 0);
  const events: EventToStore[] = rows.map((r, i) => {
    const values = { tokens: r.tokens };
    return {
      event: { id: `e${i}`, type: "llm", customer: r.customer, timestamp: r.at, values, dimensions: {} },
      fingerprint: `e${i}`,
      valuesJson: canonicalFlat(values),
      dimensionsJson: "{}",
    };
  });
  await source.appendEvents("default", events);
  const sim = await Simulation.prepare(simulationDeps(source), {
    from: new Date(T0).toISOString(),
    to: new Date(T0 + 3 * 24 * HOUR).toISOString(),
    config: {
      meters: { tokens: { event_type: "llm", aggregation: "sum", value: "tokens" } },
      plans: {
        p: { name: "P", limits: [{ id: "hourly", meter: "tokens", amount: hourly, period: "hour" }] },
      },
      customers: { a: { plan: "p" }, b: { plan: "p" }, c: { plan: "p" } },
      ...(daily !== null ? { limits: [{ id: "daily", meter: "tokens", amount: daily, period: "day" }] } : {}),
    },
  });
  return sim.run();
}

function reference(rows: Row[], hourly: number, daily: number | null): Map<string, number> {
  const ordered = rows.map((r, i) => ({ ...r, i })).sort((x, y) => x.at - y.at || x.i - y.i);
  const perHour = new Map<string, number>();
  const perDay = new Map<number, number>();
  const denied = new Map<string, number>();
  for (const r of ordered) {
    const hk = `${r.customer}/${Math.floor(r.at / HOUR)}`;
    const day = Math.floor(r.at / (24 * HOUR));
    const okHour = (perHour.get(hk) ?? 0) + r.tokens <= hourly;
    const okDay = daily === null || (perDay.get(day) ?? 0) + r.tokens <= daily;
    if (okHour && okDay) {
      perHour.set(hk, (perHour.get(hk) ?? 0) + r.tokens);
      perDay.set(day, (perDay.get(day) ?? 0) + r.tokens);
    } else denied.set(r.customer, (denied.get(r.customer) ?? 0) + 1);
  }
  return denied;
}

const rowsArb = fc.array(
  fc.record({
    customer: fc.constantFrom("a", "b", "c"),
    // Six hours across a day boundary: every hour and day sees several customers' events.
    at: fc.integer({ min: T0 + 21 * HOUR, max: T0 + 27 * HOUR - 1 }),
    tokens: fc.integer({ min: 1, max: 400 }),
  }),
  { minLength: 1, maxLength: 120 },
);

describe("replayed quotas", () => {
  it("deny exactly what the reference denies, per customer, with and without a workspace quota", async () => {
    let denials = 0;
    await fc.assert(
      fc.asyncProperty(
        rowsArb,
        fc.integer({ min: 100, max: 2000 }),
        fc.option(fc.integer({ min: 500, max: 8_000 }), { nil: null }),
        async (rows, hourly, daily) => {
          const result = await simulate(rows, hourly, daily);
          const expected = reference(rows, hourly, daily);
          for (const c of ["a", "b", "c"]) {
            const found = result.customers.find((x) => x.customer === c);
            expect(found?.denied ?? 0, c).toBe(expected.get(c) ?? 0);
          }
          expect(result.totals.events).toBe(rows.length);
          denials += result.totals.denied;
        },
      ),
      { numRuns: 40 },
    );
    expect(denials).toBeGreaterThan(0);
  }, 120_000);
});

/**
 * Engine.check decides synchronously when everything it needs is cached (the customer, the book,
 * the check plan, the counter families), and waits and starts over otherwise. Both ways must give
 * the same answers: here one engine keeps its caches and another drops all of them before every
 * check (book, entitlements, customers, loaded counters — so each check takes the loading path and
 * builds a new check plan), over random sequences of checks, reservations, releases, recorded events
 * and clock moves. Recorded events are counted into the warm engine's loaded counters
 * (Limiter.applyIncrements) and read back from the store by the cold one, so the two also pin the
 * counting of recorded events (families shared by two limits, groups, past windows, rolling windows).
 */
import { Engine, ManualClock } from "@tollgate/core";
import { keyMinter } from "@tollgate/server";
import { MemoryStore } from "@tollgate/store-memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isValidTimeZone } from "../../packages/cli/src/timezone.js";

const WS = "paths";
const T0 = Date.UTC(2026, 10, 23, 10, 0, 0);

async function makeEngine() {
  const clock = new ManualClock(T0);
  let ids = 0;
  const engine = new Engine({
    store: new MemoryStore(),
    clock,
    keys: { ...keyMinter, id: (prefix) => `${prefix}_${++ids}` },
    isValidTimeZone,
  });
  await engine.bootstrap(WS);
  await engine.start();
  await engine.putMeter(WS, "tokens", { event_type: "llm.completion", aggregation: "sum", value: "tokens" });
  await engine.putPlan(WS, "pro", {
    name: "Pro",
    rate_limits: [
      { id: "rpm-key", scope: "key", limit: 5, window_seconds: 60, algorithm: "sliding_window" },
      {
        id: "tpm",
        scope: "customer",
        value: "tokens",
        limit: 600,
        window_seconds: 60,
        algorithm: "token_bucket",
      },
      {
        id: "rps-shadow",
        scope: "customer",
        limit: 2,
        window_seconds: 1,
        algorithm: "fixed_window",
        enforcement: "shadow",
      },
    ],
    limits: [
      { id: "monthly", meter: "tokens", amount: 2_000, period: "month" },
      // The same family as "monthly" (counted once), and a rolling window.
      { id: "monthly-soft", meter: "tokens", amount: 1_500, period: "month", enforcement: "soft" },
      { id: "hourly-rolling", meter: "tokens", amount: 900, period: { rolling_seconds: 3_600 } },
      {
        id: "daily-region",
        meter: "tokens",
        amount: 700,
        period: "day",
        group_by: ["region"],
        enforcement: "soft",
      },
    ],
    concurrency_limits: [{ id: "parallel", scope: "customer", max: 2 }],
  } as never);
  for (const c of ["c0", "c1", "c2"]) await engine.putCustomer(WS, c, { plan: "pro" });
  return { engine, clock };
}

/** Drops everything the engine caches for a check: the next one loads it all again. */
function dropCaches(engine: Engine): void {
  engine.book.invalidate(WS);
  engine.entitlements.invalidate(WS);
  (engine as unknown as { customerCache: Map<string, unknown> }).customerCache.clear();
  (engine.limiter as unknown as { forgetFamilies(ws: string): void }).forgetFamilies(WS);
}

const step = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("check" as const),
      customer: fc.constantFrom("c0", "c1", "c2"),
      key: fc.constantFrom("k0", "k1", "k2"),
      tokens: fc.integer({ min: 0, max: 400 }),
      region: fc.option(fc.constantFrom("eu", "us"), { nil: undefined }),
      reserve: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 90_000 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("release" as const), which: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("record" as const),
      events: fc.array(
        fc.record({
          customer: fc.constantFrom("c0", "c1", "c2"),
          tokens: fc.integer({ min: 0, max: 300 }),
          region: fc.option(fc.constantFrom("eu", "us"), { nil: undefined }),
          /** How long before the clock the event happened (other windows, other buckets). */
          agoMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 * 86_400_000 })),
        }),
        { minLength: 1, maxLength: 6 },
      ),
    }),
  },
);

describe("Engine.check: the cached (synchronous) path and the loading path answer alike", () => {
  it("gives equal results for the same sequence", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 60 }), async (steps) => {
        const warm = await makeEngine();
        const cold = await makeEngine();
        const reservations: string[] = [];
        let recorded = 0;
        for (const s of steps) {
          if (s.kind === "advance") {
            warm.clock.advance(s.ms);
            cold.clock.advance(s.ms);
          } else if (s.kind === "record") {
            const now = warm.clock.now();
            const batch = s.events.map((e) => ({
              id: `evt_${++recorded}`,
              type: "llm.completion",
              customer: e.customer,
              timestamp: new Date(now - e.agoMs).toISOString(),
              values: { tokens: e.tokens },
              dimensions: (e.region ? { region: e.region } : {}) as Record<string, string>,
            }));
            await warm.engine.recordEvents(WS, structuredClone(batch));
            await cold.engine.recordEvents(WS, structuredClone(batch));
          } else if (s.kind === "release") {
            if (reservations.length === 0) continue;
            const id = reservations[s.which % reservations.length]!;
            const a = await warm.engine.release(WS, id).catch((e: Error) => e.message);
            const b = await cold.engine.release(WS, id).catch((e: Error) => e.message);
            expect(b).toEqual(a);
          } else {
            const input = {
              event: {
                type: "llm.completion",
                customer: s.customer,
                values: { tokens: s.tokens },
                dimensions: { key: s.key, ...(s.region ? { region: s.region } : {}) },
              },
              ...(s.reserve ? { reserve: { ttl_seconds: 30 } } : {}),
            };
            dropCaches(cold.engine);
            const a = await warm.engine.check(WS, structuredClone(input));
            const b = await cold.engine.check(WS, structuredClone(input));
            expect(b).toEqual(a);
            if (a.reservation) reservations.push(a.reservation.id);
          }
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe("Limiter.reconcileRates", () => {
  it("finds a charge's state with or without the subject recorded (reservations stored before it was)", async () => {
    for (const withSubject of [true, false]) {
      const { engine } = await makeEngine();
      const check = await engine.check(WS, {
        event: { type: "llm.completion", customer: "c0", values: { tokens: 100 }, dimensions: { key: "k0" } },
      });
      const tpm = check.limits.find((l) => l.id === "tpm")!;
      expect(tpm.remaining).toBe(500);
      const key = `${WS}\u0001rate\u0001plan\u0001tpm\u0001customer\u0001c0`;
      await engine.limiter.reconcileRates(
        {
          rateCharges: [
            {
              key,
              ...(withSubject ? { subject: "c0" } : {}),
              value: "tokens",
              cost: 100,
              config: { algorithm: "token_bucket", limit: 600, windowMs: 60_000 },
            },
          ],
        } as never,
        { tokens: 350 },
      );
      const book = await engine.book.get(WS);
      const limit = book.effective("c0", "pro").rates.find((r) => r.id === "tpm")!;
      const state = await engine.limiter.rateState(WS, limit, "c0");
      expect(state?.remaining).toBe(250);
    }
  });
});

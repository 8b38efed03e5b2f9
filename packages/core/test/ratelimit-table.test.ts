import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  algorithmOf,
  evaluate,
  expiresAt,
  type RateLimitAlgorithm,
  type RateLimitConfig,
  RateLimitTable,
  stateSize,
} from "../src/ratelimit/index.js";

const ALGORITHMS: RateLimitAlgorithm[] = ["sliding_window", "token_bucket", "fixed_window", "gcra", "burst"];

const tokenBucket: RateLimitConfig = { algorithm: "token_bucket", limit: 10, windowMs: 1000 };

/** Any algorithm, with limits, windows and bursts up to the given sizes. */
const configs = (limitMax: number, windowMsMax: number, burstMax: number): fc.Arbitrary<RateLimitConfig> =>
  fc.record({
    algorithm: fc.constantFrom(...ALGORITHMS),
    limit: fc.integer({ min: 1, max: limitMax }),
    windowMs: fc.integer({ min: 1, max: windowMsMax }),
    burst: fc.option(fc.integer({ min: 1, max: burstMax }), { nil: undefined }),
  });

describe("RateLimitTable", () => {
  it("stores a copy of each state and returns a copy", () => {
    const table = new RateLimitTable(tokenBucket);
    expect(table.get("a")).toBeUndefined();
    const state = evaluate(tokenBucket, undefined, { cost: 3 }, 5_000).state;
    table.set("a", state);
    state[0] = 42;
    const read = table.get("a")!;
    expect(read).toEqual([7000, 5_000]);
    read[0] = 1;
    expect(table.get("a")).toEqual([7000, 5_000]);
    expect(table.has("a")).toBe(true);
    expect(table.size).toBe(1);
    expect(table.expiresAt("a")).toBe(5_300); // 3 tokens at 10 per second
  });

  it("rejects a state of the wrong size", () => {
    const table = new RateLimitTable(tokenBucket);
    expect(() => table.set("a", [1, 2, 3])).toThrow(/2 entries/);
  });

  it("reuses freed slots before growing, and doubles when full without losing states", () => {
    const table = new RateLimitTable(tokenBucket, { initialCapacity: 4 });
    const state = (i: number) => [i * 1000, 1_000 + i];
    for (let i = 0; i < 4; i++) table.set(`k${i}`, state(i));
    expect(table.capacity).toBe(4);
    expect(table.delete("k1")).toBe(true);
    expect(table.delete("k1")).toBe(false);
    expect(table.delete("k2")).toBe(true);
    table.set("k4", state(4));
    table.set("k5", state(5));
    expect(table.capacity).toBe(4);
    table.set("k6", state(6));
    expect(table.capacity).toBe(8);
    expect(table.slabBytes).toBe(8 * 3 * 8);
    for (const i of [0, 3, 4, 5, 6]) expect(table.get(`k${i}`)).toEqual(state(i));
    expect(table.get("k1")).toBeUndefined();
    expect(table.size).toBe(5);
    table.clear();
    expect(table.size).toBe(0);
    table.set("x", state(9));
    expect(table.get("x")).toEqual(state(9));
  });

  it("sweep evicts exactly the keys expired by now; a budgeted sweep resumes where it stopped", () => {
    const table = new RateLimitTable(tokenBucket);
    // 1 token missing refills in 100 ms: key i expires at 1000 + 100 × i.
    for (let i = 1; i <= 10; i++) {
      table.set(`k${i}`, evaluate(tokenBucket, undefined, { cost: i }, 1_000).state);
      expect(table.expiresAt(`k${i}`)).toBe(1_000 + 100 * i);
    }
    expect(table.sweep(1_299)).toBe(2);
    expect([...Array(10).keys()].map((i) => table.has(`k${i + 1}`))).toEqual([
      false,
      false,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(table.sweep(1_600, 3)).toBe(3); // k3, k4, k5 (k6 is at 1,600 too, but over budget)
    expect(table.has("k6")).toBe(true);
    expect(table.sweep(1_600, 3)).toBe(1); // resumes: k6, then k7, k8 are not due
    expect(table.sweep(5_000)).toBe(4);
    expect(table.size).toBe(0);
    expect(table.sweep(5_000)).toBe(0);
  });

  it("behaves like a Map under any sequence of set, delete and clear", () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("set" as const),
        key: fc.integer({ min: 0, max: 20 }),
        value: fc.nat(1e6),
      }),
      fc.record({ kind: fc.constant("delete" as const), key: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ kind: fc.constant("clear" as const) }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...ALGORITHMS),
        fc.integer({ min: 1, max: 8 }),
        fc.array(op, { maxLength: 200 }),
        (algorithm, initialCapacity, ops) => {
          const config: RateLimitConfig = { algorithm, limit: 5, windowMs: 100 };
          const table = new RateLimitTable(config, { initialCapacity });
          const model = new Map<string, number[]>();
          const size = stateSize(algorithm);
          let peak = 0;
          for (const o of ops) {
            if (o.kind === "set") {
              const state = Array.from({ length: size }, (_, i) => o.value + i);
              table.set(`k${o.key}`, state);
              model.set(`k${o.key}`, state);
            } else if (o.kind === "delete") {
              expect(table.delete(`k${o.key}`)).toBe(model.delete(`k${o.key}`));
            } else {
              table.clear();
              model.clear();
            }
            expect(table.size).toBe(model.size);
            // Slots are reused: the slab grows only when every slot is taken; clear shrinks it back.
            peak = o.kind === "clear" ? 0 : Math.max(peak, model.size);
            expect(table.capacity).toBeLessThanOrEqual(Math.max(initialCapacity, 2 * peak - 1));
          }
          for (let k = 0; k <= 20; k++) expect(table.get(`k${k}`)).toEqual(model.get(`k${k}`));
        },
      ),
    );
  });

  it("sweeping never changes a decision", () => {
    const config = configs(10, 500, 12);
    const request = fc.record({
      advance: fc.integer({ min: 0, max: 200 }),
      key: fc.integer({ min: 0, max: 3 }),
      cost: fc.integer({ min: -3, max: 12 }),
      sweep: fc.integer({ min: -1, max: 4 }),
    });
    fc.assert(
      fc.property(
        config,
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.array(request, { maxLength: 150 }),
        (c, t0, requests) => {
          const table = new RateLimitTable(c, { initialCapacity: 2 });
          const forever = new Map<string, number[]>();
          let now = t0;
          for (const r of requests) {
            now += r.advance;
            const key = `k${r.key}`;
            const req = r.cost < 0 ? { cost: r.cost, force: true } : { cost: r.cost };
            const a = evaluate(c, table.get(key), req, now);
            const b = evaluate(c, forever.get(key), req, now);
            expect(a.decision).toEqual(b.decision);
            if (a.decision.allowed || req.force === true) {
              table.set(key, a.state);
              forever.set(key, b.state);
            }
            if (r.sweep >= 0) table.sweep(now, r.sweep === 0 ? undefined : r.sweep);
            for (const [k, s] of forever) {
              if (!table.has(k)) expect(expiresAt(c, s)).toBeLessThanOrEqual(now);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("read (a reused array) and set (after a read: no second lookup) hold exactly what a Map would", () => {
    const op = fc.oneof(
      fc.record({ op: fc.constant("read" as const), key: fc.integer({ min: 0, max: 3 }) }),
      fc.record({
        op: fc.constant("set" as const),
        key: fc.integer({ min: 0, max: 3 }),
        level: fc.integer({ min: 0, max: 10_000 }),
        at: fc.integer({ min: 0, max: 5_000 }),
      }),
      fc.record({ op: fc.constant("delete" as const), key: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ op: fc.constant("sweep" as const), now: fc.integer({ min: 0, max: 10_000 }) }),
      fc.record({ op: fc.constant("clear" as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 20, maxLength: 200 }), (ops) => {
        const table = new RateLimitTable(tokenBucket, { initialCapacity: 1 });
        const model = new Map<string, number[]>();
        for (const o of ops) {
          if (o.op === "read") {
            const got = table.read(`k${o.key}`);
            expect(got === undefined ? undefined : [...Array.from(got)]).toEqual(model.get(`k${o.key}`));
          } else if (o.op === "set") {
            table.set(`k${o.key}`, [o.level, o.at]);
            model.set(`k${o.key}`, [o.level, o.at]);
          } else if (o.op === "delete") {
            expect(table.delete(`k${o.key}`)).toBe(model.delete(`k${o.key}`));
          } else if (o.op === "sweep") {
            for (const [k, v] of model) if (expiresAt(tokenBucket, v) <= o.now) model.delete(k);
            table.sweep(o.now);
          } else {
            table.clear();
            model.clear();
          }
          expect(table.size).toBe(model.size);
          for (let k = 0; k <= 3; k++) expect(table.get(`k${k}`)).toEqual(model.get(`k${k}`));
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("RateLimitTable.evaluate / commit (no allocation per request)", () => {
  const config = configs(40, 5_000, 60);
  const request = fc.record({
    key: fc.integer({ min: 0, max: 3 }),
    advance: fc.integer({ min: 0, max: 3_000 }),
    cost: fc.integer({ min: -5, max: 45 }),
    force: fc.boolean(),
    commit: fc.boolean(),
  });

  it("answers what evaluate answers over the stored state, and commit stores what set would", () => {
    fc.assert(
      fc.property(config, fc.array(request, { minLength: 1, maxLength: 120 }), (c, requests) => {
        const table = new RateLimitTable(c, { initialCapacity: 1 });
        const model = new Map<string, number[]>();
        let now = 1_700_000_000_000;
        for (const r of requests) {
          now += r.advance;
          const key = `k${r.key}`;
          const req = { cost: r.force ? r.cost : Math.abs(r.cost), force: r.force };
          const expected = evaluate(c, model.get(key), req, now);
          const got = table.evaluate(key, req, now);
          expect({ state: [...got.state], decision: { ...got.decision } }).toEqual(expected);
          if (r.commit) {
            table.commit(key);
            model.set(key, expected.state);
          }
          for (const [k, v] of model) {
            expect(table.get(k)).toEqual(v);
            expect(table.expiresAt(k)).toBe(expiresAt(c, v));
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it("an algorithm given an out writes the same answer into it and returns it", () => {
    fc.assert(
      fc.property(config, fc.array(request, { minLength: 1, maxLength: 60 }), (c, requests) => {
        let state: number[] | undefined;
        let now = 1_000_000;
        const out = {
          state: new Array<number>(stateSize(c.algorithm)).fill(7),
          decision: { allowed: true, limit: -1, remaining: -1, resetAt: -1, retryAfterMs: -1 },
        };
        for (const r of requests) {
          now += r.advance;
          const req = { cost: r.force ? r.cost : Math.abs(r.cost), force: r.force };
          const fresh = evaluate(c, state, req, now);
          const written = algorithmOf(c.algorithm).evaluate(c, state, req, now, out);
          expect(written).toBe(out);
          expect(out).toEqual(fresh);
          if (r.commit) state = fresh.state;
        }
      }),
      { numRuns: 500 },
    );
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { levelsReached, reaches } from "../src/alerts/levels.js";
import { limitState, percentUsed } from "../src/quota/decide.js";

describe("levelsReached", () => {
  it("maps the default thresholds to warning, critical and exceeded", () => {
    const at = (used: number) => levelsReached([80, 95], used, 1000).map((l) => `${l.type}@${l.threshold}`);
    expect(at(0)).toEqual([]);
    expect(at(799)).toEqual([]);
    expect(at(800)).toEqual(["limit.warning@80"]);
    expect(at(949)).toEqual(["limit.warning@80"]);
    expect(at(950)).toEqual(["limit.warning@80", "limit.critical@95"]);
    expect(at(999)).toEqual(["limit.warning@80", "limit.critical@95"]);
    expect(at(1000)).toEqual(["limit.warning@80", "limit.critical@95", "limit.exceeded@100"]);
    expect(at(5000)).toHaveLength(3);
  });

  it("one threshold is a warning; middle ones are warnings; 100 and out-of-range thresholds add nothing", () => {
    expect(levelsReached([90], 95, 100).map((l) => l.type)).toEqual(["limit.warning"]);
    expect(levelsReached([50, 80, 95], 96, 100).map((l) => `${l.type}@${l.threshold}`)).toEqual([
      "limit.warning@50",
      "limit.warning@80",
      "limit.critical@95",
    ]);
    expect(levelsReached([100], 100, 100).map((l) => l.type)).toEqual(["limit.exceeded"]);
    expect(levelsReached([], 99, 100)).toEqual([]);
    expect(levelsReached([95, 80], 80, 100).map((l) => l.threshold)).toEqual([80]);
  });

  it("a quota of 0 is exceeded by any use, not by none", () => {
    expect(levelsReached([80, 95], 0, 0)).toEqual([]);
    expect(levelsReached([80, 95], 1, 0).map((l) => l.type)).toEqual([
      "limit.warning",
      "limit.critical",
      "limit.exceeded",
    ]);
  });

  it("is exact past 2^53 / 100 (no rounding at the boundary)", () => {
    const amount = 2 ** 52 + 1; // 80 % of it is not an integer
    const eighty = Number((BigInt(amount) * 80n + 99n) / 100n); // the least used that reaches 80 %
    expect(reaches(eighty, amount, 80)).toBe(true);
    expect(reaches(eighty - 1, amount, 80)).toBe(false);
    expect(reaches(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 100)).toBe(true);
    expect(reaches(Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER, 100)).toBe(false);
  });

  const thresholds = fc.uniqueArray(fc.integer({ min: 1, max: 100 }), { maxLength: 6 });
  const amount = fc.oneof(
    fc.integer({ min: 0, max: 10_000 }),
    fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  );

  it("agrees with an exact BigInt reference", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        amount,
        (p, u, a) => {
          const expected = u > 0 && (a === 0 || BigInt(u) * 100n >= BigInt(p) * BigInt(a));
          expect(reaches(u, a, p)).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("is monotone: more usage never reaches fewer levels, and levels are those below used", () => {
    fc.assert(
      fc.property(thresholds, amount, fc.nat(), fc.nat(), (ts, a, x, y) => {
        const [lo, hi] = x <= y ? [x, y] : [y, x];
        const low = levelsReached(ts, Math.min(lo, Number.MAX_SAFE_INTEGER), a);
        const high = levelsReached(ts, Math.min(hi, Number.MAX_SAFE_INTEGER), a);
        expect(high.slice(0, low.length)).toEqual(low);
        // Lowest first, no duplicates.
        const seen = high.map((l) => l.threshold);
        expect([...seen].sort((p, q) => p - q)).toEqual(seen);
        expect(new Set(seen).size).toBe(seen.length);
      }),
    );
  });

  it("the highest level reached matches the state GET /v1/customers/{id}/limits reports (small amounts)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 99 }), { minLength: 0, maxLength: 4 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 0, max: 200_000 }),
        (ts, a, u) => {
          const sorted = [...ts].sort((p, q) => p - q);
          const top = levelsReached(sorted, u, a).at(-1);
          const state = limitState(percentUsed(u, a), sorted);
          const expected =
            top === undefined
              ? "ok"
              : top.type === "limit.exceeded"
                ? "exceeded"
                : top.type.slice("limit.".length);
          // percentUsed rounds down to 0.01 %: compare only away from a threshold's edge.
          const pct = (u * 100) / a;
          if (sorted.some((t) => Math.abs(pct - t) < 0.01) || Math.abs(pct - 100) < 0.01) return;
          expect(state).toBe(expected);
        },
      ),
    );
  });
});

/**
 * The rate-limit algorithms were rewritten for speed (fewer allocations per evaluation); these
 * properties pin them to the previous implementations, kept verbatim in test/reference/, as oracles:
 * for any config, state (fresh, reached by earlier requests, or arbitrary stored numbers), request
 * and instant, both return the same state and the same decision.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { evaluate, type RateLimitConfig, type RateLimitState } from "../src/ratelimit/index.js";
import { slidingWindow as referenceSlidingWindow } from "./reference/sliding-window.js";
import { bucket as referenceBucket } from "./reference/token-bucket.js";

const reference = (config: RateLimitConfig) =>
  config.algorithm === "sliding_window"
    ? referenceSlidingWindow
    : (c: RateLimitConfig, s: RateLimitState | undefined, r: { cost: number; force?: boolean }, n: number) =>
        referenceBucket(c, c.burst ?? c.limit, s, r, n);

const config = (algorithm: "sliding_window" | "token_bucket" | "burst") =>
  fc.record({
    algorithm: fc.constant(algorithm),
    limit: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 1_000_000 })),
    windowMs: fc.oneof(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 86_400_000 })),
    burst: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
  });

const step = fc.record({
  advance: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: 50 }),
    fc.integer({ min: 0, max: 200_000_000 }),
  ),
  back: fc.integer({ min: 0, max: 40 }),
  cost: fc.oneof(fc.integer({ min: 0, max: 80 }), fc.integer({ min: -100, max: 2_000_000 })),
  force: fc.boolean(),
  /** Sometimes evaluate an arbitrary stored state instead of the one reached (a broken or foreign store). */
  garbage: fc.option(
    fc.array(
      fc.oneof(
        fc.integer({ min: -100, max: 100 }),
        fc.integer(),
        fc.constantFrom(Number.NaN, 2 ** 60, -(2 ** 60), 0.5, 1e15),
      ),
      { minLength: 10, maxLength: 10 },
    ),
    { freq: 8, nil: undefined },
  ),
});

function sameAsReference(c: RateLimitConfig, t0: number, steps: fc.Arbitrary<never> | unknown[]) {
  let state: number[] | undefined;
  let now = t0;
  const size = c.algorithm === "sliding_window" ? 10 : 2;
  for (const s of steps as {
    advance: number;
    back: number;
    cost: number;
    force: boolean;
    garbage?: number[];
  }[]) {
    now = Math.max(0, now + s.advance - s.back);
    const input = s.garbage === undefined ? state : s.garbage.slice(0, size);
    const cost = s.force ? s.cost : Math.abs(s.cost);
    const request = { cost, force: s.force };
    const got = evaluate(c, input, request, now);
    const want = reference(c)(c, input, request, now);
    expect(got).toEqual(want);
    if (want.decision.allowed || s.force) state = want.state;
  }
}

describe("rate-limit algorithms: identical to the previous implementations", () => {
  for (const algorithm of ["sliding_window", "token_bucket", "burst"] as const) {
    it(`${algorithm}: same state and decision for every request`, () => {
      fc.assert(
        fc.property(
          config(algorithm),
          fc.oneof(fc.integer({ min: 0, max: 2 ** 42 }), fc.constant(0), fc.constant(1_700_000_000_000)),
          fc.array(step, { maxLength: 60, size: "medium" }),
          (c, t0, steps) => sameAsReference(c, t0, steps),
        ),
        { numRuns: 1500 },
      );
    });
  }
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  evaluate,
  expiresAt,
  peek,
  type RateLimitAlgorithm,
  type RateLimitConfig,
  type RateLimitDecision,
  type RateLimitState,
  RETRY_NEVER,
  rateLimitBounds,
  rateLimitConfigProblems,
  STATE_SIZE_MAX,
  slidingWindowBucketMs,
  stateSize,
} from "../src/ratelimit/index.js";
import { ceilDiv, floorDiv } from "../src/ratelimit/math.js";

const ALGORITHMS: RateLimitAlgorithm[] = ["sliding_window", "token_bucket", "fixed_window", "gcra", "burst"];

/** Small limits and windows, so that sequences hit the limit and cross many windows. */
const smallConfig = (algorithm?: RateLimitAlgorithm): fc.Arbitrary<RateLimitConfig> =>
  fc.record({
    algorithm: algorithm === undefined ? fc.constantFrom(...ALGORITHMS) : fc.constant(algorithm),
    limit: fc.integer({ min: 1, max: 40 }),
    windowMs: fc.oneof(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 5_000 })),
    burst: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
  });

/** The most that can pass at once. */
const capacityOf = (c: RateLimitConfig): number =>
  c.algorithm === "sliding_window" || c.algorithm === "fixed_window" ? c.limit : (c.burst ?? c.limit);

interface Step {
  advance: number;
  cost: number;
  force: boolean;
}

/** Time advances scaled to the window: mostly within it, sometimes far past it. */
const steps = (config: RateLimitConfig, opts: { force?: boolean; maxLength?: number } = {}) =>
  fc.array(
    fc.record({
      advance: fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: 0, max: Math.max(1, Math.ceil(config.windowMs / 4)) }) },
        { weight: 2, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 * config.windowMs }) },
      ),
      cost: fc.integer({ min: 0, max: capacityOf(config) + 1 }),
      force: opts.force === true ? fc.boolean() : fc.constant(false),
    }),
    { maxLength: opts.maxLength ?? 80 },
  );

const start = fc.oneof(fc.integer({ min: 0, max: 2 ** 42 }), fc.constant(0), fc.constant(1_700_000_000_000));

interface Applied {
  now: number;
  cost: number;
  force: boolean;
  decision: RateLimitDecision;
  before: RateLimitState | undefined;
}

/** Run a sequence on a fake clock, storing the new state only when a request is allowed or forced. */
function simulate(config: RateLimitConfig, t0: number, seq: Step[]) {
  let state: number[] | undefined;
  let now = t0;
  const applied: Applied[] = [];
  for (const s of seq) {
    now += s.advance;
    const before = state;
    const r = evaluate(config, state, { cost: s.cost, force: s.force }, now);
    if (r.decision.allowed || s.force) state = r.state;
    applied.push({ now, cost: s.cost, force: s.force, decision: r.decision, before });
  }
  return { state, now, applied };
}

const admitted = (applied: Applied[]) => applied.filter((a) => a.decision.allowed && !a.force);

describe("ratelimit: common contract", () => {
  it("stateSize matches the state every algorithm returns, and STATE_SIZE_MAX covers all", () => {
    for (const algorithm of ALGORITHMS) {
      const r = evaluate({ algorithm, limit: 5, windowMs: 1000 }, undefined, { cost: 1 }, 1_000_000);
      expect(r.state).toHaveLength(stateSize(algorithm));
      expect(stateSize(algorithm)).toBeLessThanOrEqual(STATE_SIZE_MAX);
    }
    expect(stateSize("sliding_window")).toBe(10);
    expect(stateSize("token_bucket")).toBe(2);
    expect(stateSize("gcra")).toBe(2);
    expect(stateSize("fixed_window")).toBe(2);
    expect(stateSize("burst")).toBe(2);
  });

  it("a fresh key allows up to its capacity at once, then denies", () => {
    for (const algorithm of ALGORITHMS) {
      const config = { algorithm, limit: 5, windowMs: 1000, burst: 3 };
      const cap = capacityOf(config);
      let state: number[] | undefined;
      for (let i = 0; i < cap; i++) {
        const r = evaluate(config, state, { cost: 1 }, 10_000);
        expect(r.decision, algorithm).toMatchObject({ allowed: true, limit: cap, remaining: cap - 1 - i });
        state = r.state;
      }
      const denied = evaluate(config, state, { cost: 1 }, 10_000);
      expect(denied.decision.allowed, algorithm).toBe(false);
      expect(denied.decision.remaining).toBe(0);
      expect(denied.decision.retryAfterMs).toBeGreaterThan(0);
    }
  });

  it("every state entry is a safe integer and decisions are well-formed", () => {
    fc.assert(
      fc.property(
        smallConfig().chain((c) => fc.tuple(fc.constant(c), start, steps(c, { force: true }))),
        ([config, t0, seq]) => {
          let state: number[] | undefined;
          let now = t0;
          for (const s of seq) {
            now += s.advance;
            const r = evaluate(config, state, { cost: s.force ? s.cost - 20 : s.cost, force: s.force }, now);
            for (const v of r.state) expect(Number.isSafeInteger(v)).toBe(true);
            const d = r.decision;
            expect(Number.isSafeInteger(d.remaining) && d.remaining >= 0).toBe(true);
            expect(d.remaining).toBeLessThanOrEqual(d.limit);
            expect(Number.isSafeInteger(d.resetAt) && d.resetAt >= now).toBe(true);
            expect(Number.isSafeInteger(d.retryAfterMs)).toBe(true);
            if (d.allowed) expect(d.retryAfterMs).toBe(0);
            else expect(d.retryAfterMs === RETRY_NEVER || d.retryAfterMs > 0).toBe(true);
            if (r.decision.allowed || s.force) state = r.state;
          }
        },
      ),
    );
  });

  it("never mutates the input state (arrays and Float64Array slices)", () => {
    fc.assert(
      fc.property(
        smallConfig().chain((c) =>
          fc.tuple(fc.constant(c), start, steps(c), fc.integer({ min: -50, max: 50 }), fc.boolean()),
        ),
        ([config, t0, seq, cost, typed]) => {
          const { state, now } = simulate(config, t0, seq);
          if (state === undefined) return;
          const frozen = Object.freeze([...state]);
          const slab = new Float64Array(state.length + 4);
          slab.set(state, 2);
          const view = slab.subarray(2, 2 + state.length);
          const input: RateLimitState = typed ? view : frozen;
          const force = cost < 0 || cost % 2 === 0;
          const r = evaluate(config, input, { cost, force }, now + 1);
          expect(Array.from(input)).toEqual(state);
          expect(Array.from(slab.subarray(0, 2))).toEqual([0, 0]);
          expect(r.state).not.toBe(input);
        },
      ),
    );
  });

  it("a cost above the limit or capacity is denied with RETRY_NEVER and changes nothing", () => {
    fc.assert(
      fc.property(
        smallConfig().chain((c) =>
          fc.tuple(fc.constant(c), start, steps(c), fc.integer({ min: 1, max: 1e6 })),
        ),
        ([config, t0, seq, extra]) => {
          const { state, now } = simulate(config, t0, seq);
          const r = evaluate(config, state, { cost: capacityOf(config) + extra }, now);
          expect(r.decision.allowed).toBe(false);
          expect(r.decision.retryAfterMs).toBe(RETRY_NEVER);
          expect(r.decision).toEqual({
            ...peek(config, state, now),
            allowed: false,
            retryAfterMs: RETRY_NEVER,
          });
        },
      ),
    );
  });

  it("retryAfterMs is exact: denied one ms earlier, admitted at now + retryAfterMs", () => {
    fc.assert(
      fc.property(
        smallConfig().chain((c) =>
          fc.tuple(fc.constant(c), start, steps(c), fc.integer({ min: 0, max: capacityOf(c) })),
        ),
        ([config, t0, seq, cost]) => {
          const { state, now } = simulate(config, t0, seq);
          const first = evaluate(config, state, { cost }, now).decision;
          if (first.allowed) return;
          const r = first.retryAfterMs;
          expect(r).toBeGreaterThan(0);
          expect(evaluate(config, state, { cost }, now + r - 1).decision.allowed).toBe(false);
          expect(evaluate(config, state, { cost }, now + r).decision.allowed).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("resetAt: at resetAt the full limit is available (the window has ended for fixed_window)", () => {
    fc.assert(
      fc.property(
        smallConfig().chain((c) => fc.tuple(fc.constant(c), start, steps(c, { force: true }))),
        ([config, t0, seq]) => {
          const { state, now } = simulate(config, t0, seq);
          const d = peek(config, state, now);
          const later = peek(config, state, d.resetAt);
          expect(later.remaining).toBe(d.limit);
          if (config.algorithm !== "fixed_window" && d.resetAt > now && !(d.remaining === d.limit)) {
            expect(peek(config, state, d.resetAt - 1).remaining).toBeLessThan(d.limit);
          }
        },
      ),
    );
  });

  it("expiresAt: from then on the state decides exactly like a fresh key", () => {
    fc.assert(
      fc.property(
        smallConfig().chain((c) =>
          fc.tuple(
            fc.constant(c),
            start,
            steps(c, { force: true }),
            fc.integer({ min: 0, max: 3 * c.windowMs }),
            fc.integer({ min: 0, max: capacityOf(c) + 1 }),
          ),
        ),
        ([config, t0, seq, after, cost]) => {
          const { state, now } = simulate(config, t0, seq);
          if (state === undefined) return;
          // Stores sweep with a clock that never runs behind the last write.
          const at = Math.max(expiresAt(config, state), now) + after;
          for (const force of [false, true]) {
            expect(evaluate(config, state, { cost, force }, at).decision).toEqual(
              evaluate(config, undefined, { cost, force }, at).decision,
            );
          }
        },
      ),
    );
  });

  it("peek changes nothing and answers as a cost-0 request", () => {
    const config: RateLimitConfig = { algorithm: "sliding_window", limit: 3, windowMs: 1000 };
    let state = evaluate(config, undefined, { cost: 3 }, 5_000).state;
    expect(peek(config, state, 5_000)).toMatchObject({ allowed: true, remaining: 0 });
    state = evaluate(config, state, { cost: 2, force: true }, 5_000).state;
    expect(peek(config, state, 5_000)).toMatchObject({ allowed: false, remaining: 0 });
  });
});

describe("ratelimit: force and refunds", () => {
  it("a forced cost is applied even when it does not fit; allowed says whether the key is within its limit", () => {
    fc.assert(
      fc.property(
        smallConfig().chain((c) =>
          fc.tuple(fc.constant(c), start, steps(c), fc.integer({ min: 0, max: 3 * capacityOf(c) })),
        ),
        ([config, t0, seq, cost]) => {
          const { state, now } = simulate(config, t0, seq);
          const plain = evaluate(config, state, { cost }, now).decision;
          const forced = evaluate(config, state, { cost, force: true }, now);
          const fits = cost <= capacityOf(config) && plain.allowed;
          expect(forced.decision.allowed).toBe(fits);
          if (fits) {
            expect(forced.decision).toEqual(plain);
          } else {
            // Over the limit now: even a cost-0 request is denied until retryAfterMs has passed.
            const r = forced.decision.retryAfterMs;
            expect(forced.decision.remaining).toBe(0);
            expect(r).toBeGreaterThan(0);
            expect(peek(config, forced.state, now + r - 1).allowed).toBe(false);
            expect(peek(config, forced.state, now + r).allowed).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a refund of what was just charged restores what was available", () => {
    fc.assert(
      fc.property(
        smallConfig().chain((c) =>
          fc.tuple(fc.constant(c), start, steps(c), fc.integer({ min: 0, max: capacityOf(c) })),
        ),
        ([config, t0, seq, cost]) => {
          const { state, now } = simulate(config, t0, seq);
          const charged = evaluate(config, state, { cost }, now);
          if (!charged.decision.allowed) return;
          const refunded = evaluate(config, charged.state, { cost: -cost, force: true }, now);
          const before = peek(config, state, now);
          expect(refunded.decision.allowed).toBe(true);
          expect(refunded.decision.remaining).toBe(before.remaining);
          if (config.algorithm !== "sliding_window") expect(refunded.decision).toEqual(before);
        },
      ),
    );
  });

  it("refunds never go below empty: a huge refund leaves the key as fresh", () => {
    fc.assert(
      fc.property(
        smallConfig().chain((c) =>
          fc.tuple(
            fc.constant(c),
            start,
            steps(c, { force: true }),
            fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
          ),
        ),
        ([config, t0, seq, refund]) => {
          const { state, now } = simulate(config, t0, seq);
          const r = evaluate(config, state, { cost: -refund, force: true }, now);
          // Usage saturates at capacity + limit (buckets) or 2 × limit (windows): this clears any of it.
          if (refund >= capacityOf(config) + 2 * config.limit) {
            expect(r.decision.allowed).toBe(true);
            expect(r.decision.remaining).toBe(capacityOf(config));
            // And it stays that way: nothing was banked beyond the capacity.
            const again = evaluate(config, r.state, { cost: capacityOf(config) }, now);
            expect(again.decision).toMatchObject({ allowed: true, remaining: 0 });
            expect(evaluate(config, again.state, { cost: 1 }, now).decision.allowed).toBe(false);
          }
        },
      ),
    );
  });

  it("forced costs saturate: a key recovers within one window of debt however much was forced", () => {
    fc.assert(
      fc.property(
        smallConfig().chain((c) =>
          fc.tuple(fc.constant(c), start, fc.array(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }))),
        ),
        ([config, t0, costs]) => {
          let state: number[] | undefined;
          for (const cost of costs) state = evaluate(config, state, { cost, force: true }, t0).state;
          const cap = capacityOf(config);
          // Window algorithms forget at the window's end; buckets repay capacity + one window of debt.
          const recovery =
            config.algorithm === "fixed_window"
              ? config.windowMs
              : config.algorithm === "sliding_window"
                ? config.windowMs + slidingWindowBucketMs(config.windowMs)
                : ceilDiv((cap + config.limit) * config.windowMs, config.limit);
          expect(peek(config, state, t0 + recovery).remaining).toBe(cap);
        },
      ),
    );
  });
});

describe("ratelimit: fixed_window", () => {
  it("admits at most limit per aligned window", () => {
    fc.assert(
      fc.property(
        smallConfig("fixed_window").chain((c) => fc.tuple(fc.constant(c), start, steps(c))),
        ([config, t0, seq]) => {
          const perWindow = new Map<number, number>();
          for (const a of admitted(simulate(config, t0, seq).applied)) {
            const w = Math.floor(a.now / config.windowMs);
            perWindow.set(w, (perWindow.get(w) ?? 0) + a.cost);
          }
          for (const total of perWindow.values()) expect(total).toBeLessThanOrEqual(config.limit);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("admits limit again as soon as the aligned window changes (up to 2 × limit across a boundary)", () => {
    const config: RateLimitConfig = { algorithm: "fixed_window", limit: 10, windowMs: 60_000 };
    const a = evaluate(config, undefined, { cost: 10 }, 119_999);
    expect(a.decision).toMatchObject({ allowed: true, remaining: 0, resetAt: 120_000 });
    expect(evaluate(config, a.state, { cost: 1 }, 119_999).decision).toMatchObject({
      allowed: false,
      retryAfterMs: 1,
    });
    const b = evaluate(config, a.state, { cost: 10 }, 120_000);
    expect(b.decision).toMatchObject({ allowed: true, remaining: 0, resetAt: 180_000 });
  });
});

describe("ratelimit: sliding_window", () => {
  it("never admits more than limit in any sliding window of windowMs", () => {
    fc.assert(
      fc.property(
        smallConfig("sliding_window").chain((c) =>
          fc.tuple(fc.constant(c), start, steps(c, { maxLength: 120 })),
        ),
        ([config, t0, seq]) => {
          const ok = admitted(simulate(config, t0, seq).applied);
          // The heaviest window ends at an admission: check the window ending at each.
          for (const end of ok) {
            let total = 0;
            for (const a of ok) if (a.now > end.now - config.windowMs && a.now <= end.now) total += a.cost;
            expect(total).toBeLessThanOrEqual(config.limit);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("never admits more than limit under the weighted estimate's worst case (load at a window's end)", () => {
    const config: RateLimitConfig = { algorithm: "sliding_window", limit: 10, windowMs: 1000 };
    let state = evaluate(config, undefined, { cost: 10 }, 999).state;
    // A weighted two-window estimate would see 10 × (1 − 1/1000) here and admit one more.
    expect(evaluate(config, state, { cost: 1 }, 1000).decision.allowed).toBe(false);
    expect(evaluate(config, state, { cost: 1 }, 1998).decision.allowed).toBe(false);
    state = evaluate(config, state, { cost: 10 }, 1999).state;
    expect(peek(config, state, 1999).remaining).toBe(0);
  });

  it("is precise to one sub-bucket: a denial means the last windowMs + width − 1 ms hold more than limit − cost", () => {
    fc.assert(
      fc.property(
        smallConfig("sliding_window").chain((c) =>
          fc.tuple(fc.constant(c), start, steps(c, { maxLength: 120 })),
        ),
        ([config, t0, seq]) => {
          const width = slidingWindowBucketMs(config.windowMs);
          const applied = simulate(config, t0, seq).applied;
          for (const [i, a] of applied.entries()) {
            if (a.decision.allowed || a.cost > config.limit) continue;
            let recent = 0;
            for (const b of applied.slice(0, i)) {
              if (b.decision.allowed && b.now > a.now - (config.windowMs + width - 1)) recent += b.cost;
            }
            expect(recent + a.cost).toBeGreaterThan(config.limit);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("sub-buckets are windowMs / 8: an amount stops counting windowMs + width − 1 ms after its bucket ends at the latest", () => {
    const config: RateLimitConfig = { algorithm: "sliding_window", limit: 1, windowMs: 80 };
    expect(slidingWindowBucketMs(80)).toBe(10);
    const s = evaluate(config, undefined, { cost: 1 }, 1000).state; // bucket [1000, 1010)
    const d = evaluate(config, s, { cost: 1 }, 1000).decision;
    expect(d).toMatchObject({ allowed: false, retryAfterMs: 89, resetAt: 1089 });
    expect(evaluate(config, s, { cost: 1 }, 1088).decision.allowed).toBe(false);
    expect(evaluate(config, s, { cost: 1 }, 1089).decision.allowed).toBe(true);
    // An amount at the end of its bucket is counted exactly windowMs.
    const late = evaluate(config, undefined, { cost: 1 }, 1009).state;
    expect(evaluate(config, late, { cost: 1 }, 1088).decision.allowed).toBe(false);
    expect(evaluate(config, late, { cost: 1 }, 1089).decision.allowed).toBe(true);
  });

  it("is an exact sliding log when windowMs ≤ 8 (one ms per sub-bucket)", () => {
    fc.assert(
      fc.property(
        fc
          .record({
            algorithm: fc.constant("sliding_window" as const),
            limit: fc.integer({ min: 1, max: 5 }),
            windowMs: fc.integer({ min: 1, max: 8 }),
          })
          .chain((c) => fc.tuple(fc.constant(c), start, steps(c))),
        ([config, t0, seq]) => {
          const log: { now: number; cost: number }[] = [];
          let state: number[] | undefined;
          let now = t0;
          for (const s of seq) {
            now += s.advance;
            const inWindow = log.filter((e) => e.now > now - config.windowMs).reduce((n, e) => n + e.cost, 0);
            const r = evaluate(config, state, { cost: s.cost }, now);
            expect(r.decision.allowed).toBe(inWindow + s.cost <= config.limit);
            if (r.decision.allowed) {
              state = r.state;
              log.push({ now, cost: s.cost });
            }
          }
        },
      ),
    );
  });
});

describe("ratelimit: clocks and foreign states", () => {
  it("a clock slightly behind the last write is never more generous than the write's own time", () => {
    fc.assert(
      fc.property(
        smallConfig().chain((c) =>
          fc.tuple(
            fc.constant(c),
            start,
            steps(c),
            fc.integer({ min: 0, max: c.windowMs }),
            fc.integer({ min: 0, max: capacityOf(c) }),
          ),
        ),
        ([config, t0, seq, behind, cost]) => {
          const { state, now } = simulate(config, t0 + config.windowMs, seq);
          const atWrite = evaluate(config, state, { cost }, now).decision;
          const earlier = evaluate(config, state, { cost }, now - behind).decision;
          if (earlier.allowed) expect(atWrite.allowed).toBe(true);
          expect(peek(config, state, now - behind).remaining).toBeLessThanOrEqual(
            peek(config, state, now).remaining,
          );
        },
      ),
    );
  });

  it("states with garbage entries (NaN, negatives, huge values) still give well-formed decisions", () => {
    const junk = fc.oneof(
      fc.constant(Number.NaN),
      fc.constant(-1),
      fc.constant(Number.MAX_SAFE_INTEGER),
      fc.constant(1.5),
      fc.integer({ min: -1e15, max: 1e15 }),
    );
    fc.assert(
      fc.property(
        smallConfig().chain((c) =>
          fc.tuple(
            fc.constant(c),
            fc.array(junk, { minLength: stateSize(c.algorithm), maxLength: stateSize(c.algorithm) }),
            start,
            fc.integer({ min: 0, max: capacityOf(c) }),
          ),
        ),
        ([config, state, now, cost]) => {
          const d = evaluate(config, state, { cost }, now).decision;
          expect(Number.isSafeInteger(d.remaining) && d.remaining >= 0 && d.remaining <= d.limit).toBe(true);
          expect(Number.isSafeInteger(d.resetAt)).toBe(true);
          expect(
            d.retryAfterMs === RETRY_NEVER || (Number.isSafeInteger(d.retryAfterMs) && d.retryAfterMs >= 0),
          ).toBe(true);
        },
      ),
    );
  });

  it("rejects malformed input as a bug (assert), not silently", () => {
    const config: RateLimitConfig = { algorithm: "token_bucket", limit: 5, windowMs: 1000 };
    expect(() => evaluate(config, undefined, { cost: -1 }, 0)).toThrow(/negative cost/);
    expect(() => evaluate(config, undefined, { cost: 0.5 }, 0)).toThrow(/safe integer/);
    expect(() => evaluate(config, undefined, { cost: 1 }, 1.5)).toThrow(/now/);
    expect(() => evaluate(config, [1, 2, 3], { cost: 1 }, 0)).toThrow(/entries/);
  });
});

describe("ratelimit: config bounds", () => {
  it("accepts sensible configs and reports every problem with its field", () => {
    expect(rateLimitConfigProblems({ algorithm: "sliding_window", limit: 60, windowMs: 60_000 })).toEqual([]);
    expect(
      rateLimitConfigProblems({ algorithm: "gcra", limit: 0, windowMs: 86_400_001, burst: 1.5 }).map(
        (p) => p.path,
      ),
    ).toEqual(["limit", "windowMs", "burst"]);
    expect(
      rateLimitConfigProblems({ algorithm: "nope" as RateLimitAlgorithm, limit: 1, windowMs: 1 }).map(
        (p) => p.path,
      ),
    ).toEqual(["algorithm"]);
  });

  it("bounds (capacity + limit) × windowMs for the buckets only", () => {
    const day = 86_400_000;
    const ok = Math.floor(2 ** 52 / day / 2);
    expect(rateLimitConfigProblems({ algorithm: "token_bucket", limit: ok, windowMs: day })).toEqual([]);
    expect(
      rateLimitConfigProblems({ algorithm: "token_bucket", limit: ok + 1, windowMs: day }).map((p) => p.path),
    ).toEqual(["limit"]);
    expect(
      rateLimitConfigProblems({ algorithm: "gcra", limit: 1, windowMs: day, burst: 2 ** 48 }).map(
        (p) => p.path,
      ),
    ).toEqual(["burst"]);
    expect(rateLimitConfigProblems({ algorithm: "fixed_window", limit: 2 ** 48, windowMs: day })).toEqual([]);
    expect(
      rateLimitConfigProblems({ algorithm: "sliding_window", limit: 2 ** 48 + 1, windowMs: day }),
    ).toHaveLength(1);
  });

  it("window counters stay exact at the largest limit", () => {
    for (const algorithm of ["fixed_window", "sliding_window"] as const) {
      const config: RateLimitConfig = { algorithm, limit: rateLimitBounds.limitMax, windowMs: 86_400_000 };
      let state: number[] | undefined;
      for (let i = 0; i < 9; i++) {
        state = evaluate(
          config,
          state,
          { cost: Number.MAX_SAFE_INTEGER, force: true },
          1e12 + i * 9_600_000,
        ).state;
      }
      const d = peek(config, state, 1e12 + 8 * 9_600_000);
      expect(d).toMatchObject({ allowed: false, remaining: 0 });
      for (const v of state!) expect(Number.isSafeInteger(v)).toBe(true);
      const refunded = evaluate(config, state, { cost: -config.limit, force: true }, 1e12 + 8 * 9_600_000);
      expect(refunded.decision).toMatchObject({ allowed: true, remaining: 0 });
    }
  });

  it("floorDiv and ceilDiv are exact over the whole safe range", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(2n ** 53n) + 1n, max: 2n ** 53n - 1n }),
        fc.bigInt({ min: 1n, max: 2n ** 53n - 1n }),
        (a, b) => {
          const floor = a >= 0n ? a / b : -((-a + b - 1n) / b);
          const ceil = a >= 0n ? (a + b - 1n) / b : -(-a / b);
          expect(floorDiv(Number(a), Number(b))).toBe(Number(floor));
          expect(ceilDiv(Number(a), Number(b))).toBe(Number(ceil));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

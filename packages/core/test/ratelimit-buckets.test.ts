import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  evaluate,
  peek,
  type RateLimitConfig,
  type RateLimitDecision,
  RETRY_NEVER,
  rateLimitConfigProblems,
} from "../src/ratelimit/index.js";

type BucketAlgorithm = "token_bucket" | "gcra" | "burst";

const small = (algorithm: BucketAlgorithm): fc.Arbitrary<RateLimitConfig> =>
  fc.record({
    algorithm: fc.constant(algorithm),
    limit: fc.integer({ min: 1, max: 40 }),
    windowMs: fc.oneof(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 5_000 })),
    burst: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
  });

/** Configs anywhere within the bounds, up to (capacity + limit) × windowMs = 2^52. */
const large = (algorithm: BucketAlgorithm): fc.Arbitrary<RateLimitConfig> =>
  fc
    .integer({ min: 1, max: 86_400_000 })
    .chain((windowMs) => {
      const room = Math.floor(2 ** 52 / windowMs);
      return fc.record({
        algorithm: fc.constant(algorithm),
        windowMs: fc.constant(windowMs),
        limit: fc.oneof(
          fc.integer({ min: 1, max: Math.max(1, room - 1) }),
          fc.constant(Math.max(1, room >> 1)),
        ),
        burst: fc.option(fc.integer({ min: 1, max: Math.max(1, room - 1) }), { nil: undefined }),
      });
    })
    .filter((c) => rateLimitConfigProblems(c).length === 0);

const any = (algorithm: BucketAlgorithm) =>
  fc.oneof({ weight: 3, arbitrary: small(algorithm) }, { weight: 1, arbitrary: large(algorithm) });

const capacityOf = (c: RateLimitConfig) => c.burst ?? c.limit;

interface Step {
  advance: number;
  cost: number;
}

const steps = (config: RateLimitConfig, maxLength = 80): fc.Arbitrary<Step[]> => {
  const cap = capacityOf(config);
  // Time to refill the whole bucket, so that advances span empty to full.
  const refill = Math.min(2 ** 36, Math.ceil((cap * config.windowMs) / config.limit));
  return fc.array(
    fc.record({
      advance: fc.oneof(
        { weight: 5, arbitrary: fc.integer({ min: 0, max: Math.max(1, Math.ceil(refill / 4)) }) },
        { weight: 2, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 * refill + 2 }) },
      ),
      cost: fc.oneof(
        fc.integer({ min: 0, max: Math.min(cap + 1, 3) }),
        fc.integer({ min: 0, max: cap + 1 }),
        fc.constant(cap),
      ),
    }),
    { maxLength },
  );
};

const start = fc.oneof(fc.integer({ min: 0, max: 2 ** 42 }), fc.constant(1_700_000_000_000));

/** Run a sequence on a fake clock; state is stored only when allowed. */
function simulate(config: RateLimitConfig, t0: number, seq: Step[]) {
  let state: number[] | undefined;
  let now = t0;
  const log: { now: number; cost: number; decision: RateLimitDecision }[] = [];
  for (const s of seq) {
    now += s.advance;
    const r = evaluate(config, state, { cost: s.cost }, now);
    if (r.decision.allowed) state = r.state;
    log.push({ now, cost: s.cost, decision: r.decision });
  }
  return { state, now, log };
}

/**
 * The token bucket as a real-valued model, kept exact with bigints in units of 1/windowMs token:
 * tokens(t) = min(capacity, tokens(t0) + (t − t0) × limit / windowMs).
 */
class TokenBucketModel {
  private tokens: bigint;
  private last: bigint | undefined;
  private readonly full: bigint;
  constructor(
    capacity: bigint,
    private readonly limit: bigint,
    private readonly windowMs: bigint,
  ) {
    this.full = capacity * windowMs;
    this.tokens = this.full;
  }
  private refill(now: bigint) {
    if (this.last !== undefined) {
      const t = this.tokens + (now - this.last) * this.limit;
      this.tokens = this.full;
      if (t < this.full) this.tokens = t;
    }
    this.last = now;
  }
  offer(now: number, cost: number) {
    this.refill(BigInt(now));
    const need = BigInt(cost) * this.windowMs;
    const allowed = need <= this.tokens;
    if (allowed) this.tokens -= need;
    const missing = this.full - this.tokens;
    return {
      allowed,
      remaining: Number(this.tokens / this.windowMs),
      resetAt: now + Number((missing + this.limit - 1n) / this.limit),
    };
  }
}

/**
 * GCRA straight from ITU-T I.371's virtual scheduling algorithm, per cell, in exact units of 1/limit ms:
 * a cell arriving at ta conforms iff ta ≥ TAT − τ, and then TAT ← max(ta, TAT) + T. A request of n cells
 * is admitted only if all n conform (arriving together); otherwise TAT is left as it was.
 */
class GcraModel {
  private tat: bigint | undefined;
  constructor(
    private readonly limit: bigint,
    /** T = windowMs / limit ms = windowMs units. */
    private readonly T: bigint,
    /** τ = (burst − 1) × T. */
    private readonly tau: bigint,
  ) {}
  clone(): GcraModel {
    const copy = new GcraModel(this.limit, this.T, this.tau);
    copy.tat = this.tat;
    return copy;
  }
  offer(now: number, n: number): boolean {
    const ta = BigInt(now) * this.limit;
    let tat = this.tat ?? ta;
    if (n <= 64) {
      for (let k = 0; k < n; k++) {
        if (ta < tat - this.tau) return false;
        tat = (tat > ta ? tat : ta) + this.T;
      }
    } else {
      // Too many cells to step through: TAT only grows from cell to cell, so all conform iff the last does.
      const first = tat > ta ? tat : ta;
      if (ta < first + BigInt(n - 1) * this.T - this.tau) return false;
      tat = first + BigInt(n) * this.T;
    }
    this.tat = tat;
    return true;
  }
  /** When TAT passes (ms, rounded up): from then on the whole burst is available. */
  resetAt(now: number): number {
    if (this.tat === undefined) return now;
    const ms = Number((this.tat + this.limit - 1n) / this.limit);
    return Math.max(ms, now);
  }
}

function gcraModel(config: RateLimitConfig) {
  const L = BigInt(config.limit);
  const T = BigInt(config.windowMs);
  return new GcraModel(L, T, BigInt(capacityOf(config) - 1) * T);
}

describe("ratelimit: token_bucket", () => {
  it("admits at most capacity + limit × (b − a) / windowMs over any interval [a, b]", () => {
    fc.assert(
      fc.property(
        any("token_bucket").chain((c) => fc.tuple(fc.constant(c), start, steps(c, 100))),
        ([config, t0, seq]) => {
          const ok = simulate(config, t0, seq).log.filter((e) => e.decision.allowed);
          const C = BigInt(capacityOf(config));
          const L = BigInt(config.limit);
          const W = BigInt(config.windowMs);
          for (let i = 0; i < ok.length; i++) {
            let total = 0n;
            for (let j = i; j < ok.length; j++) {
              total += BigInt(ok[j]!.cost);
              // total ≤ C + floor(L × (b − a) / W), compared without division.
              expect(total * W <= C * W + L * BigInt(ok[j]!.now - ok[i]!.now)).toBe(true);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("matches an exact real-valued model decision for decision", () => {
    fc.assert(
      fc.property(
        any("token_bucket").chain((c) => fc.tuple(fc.constant(c), start, steps(c))),
        ([config, t0, seq]) => {
          const model = new TokenBucketModel(
            BigInt(capacityOf(config)),
            BigInt(config.limit),
            BigInt(config.windowMs),
          );
          for (const e of simulate(config, t0, seq).log) {
            if (e.cost > capacityOf(config)) continue; // denied outright; the model would agree
            const m = model.offer(e.now, e.cost);
            expect({ ...e.decision, retryAfterMs: undefined, limit: undefined }).toEqual({
              ...m,
              retryAfterMs: undefined,
              limit: undefined,
            });
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refills exactly: after k idle ms from empty, floor(k × limit / windowMs) tokens pass", () => {
    fc.assert(
      fc.property(
        any("token_bucket").chain((c) =>
          fc.tuple(
            fc.constant(c),
            start,
            fc.integer({
              min: 0,
              max: Math.min(2 ** 51, Math.ceil((capacityOf(c) * c.windowMs) / c.limit) + 5),
            }),
          ),
        ),
        ([config, t0, k]) => {
          const cap = capacityOf(config);
          const emptied = evaluate(config, undefined, { cost: cap }, t0);
          expect(emptied.decision).toMatchObject({ allowed: true, remaining: 0 });
          const refilled = BigInt(k) * BigInt(config.limit);
          const n = Math.min(cap, Number(refilled / BigInt(config.windowMs)));
          const now = t0 + k;
          expect(peek(config, emptied.state, now).remaining).toBe(n);
          expect(evaluate(config, emptied.state, { cost: n }, now).decision.allowed).toBe(true);
          if (n < cap)
            expect(evaluate(config, emptied.state, { cost: n + 1 }, now).decision.allowed).toBe(false);
          if (n <= 200) {
            // One token at a time, as unit requests.
            let state = emptied.state;
            let passed = 0;
            for (;;) {
              const r = evaluate(config, state, { cost: 1 }, now);
              if (!r.decision.allowed) break;
              state = r.state;
              passed++;
            }
            expect(passed).toBe(n);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("refills exactly at a non-integer rate: 3 per 7 ms", () => {
    const config: RateLimitConfig = { algorithm: "token_bucket", limit: 3, windowMs: 7, burst: 10 };
    const empty = evaluate(config, undefined, { cost: 10 }, 0).state;
    const passed = [0, 1, 2, 3, 4, 5, 6, 7, 14, 23].map((k) => peek(config, empty, k).remaining);
    expect(passed).toEqual([0, 0, 0, 1, 1, 2, 2, 3, 6, 9]);
    expect(evaluate(config, empty, { cost: 2 }, 0).decision.retryAfterMs).toBe(5);
  });

  it("survives long idle times at the largest configs without losing exactness", () => {
    const windowMs = 86_400_000;
    const limit = Math.floor(2 ** 52 / windowMs / 2);
    const config: RateLimitConfig = { algorithm: "token_bucket", limit, windowMs };
    const s = evaluate(config, undefined, { cost: limit }, 0).state;
    expect(peek(config, s, 1).remaining).toBe(Math.floor(limit / windowMs));
    expect(peek(config, s, windowMs - 1).remaining).toBe(Math.floor((limit * (windowMs - 1)) / windowMs));
    expect(peek(config, s, 2 ** 52).remaining).toBe(limit);
    const debt = evaluate(config, s, { cost: Number.MAX_SAFE_INTEGER, force: true }, 0);
    expect(debt.decision).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: windowMs });
    for (const v of debt.state) expect(Number.isSafeInteger(v)).toBe(true);
  });
});

describe("ratelimit: gcra", () => {
  it("matches a per-cell reference of the virtual scheduling algorithm decision for decision", () => {
    fc.assert(
      fc.property(
        any("gcra").chain((c) => fc.tuple(fc.constant(c), start, steps(c))),
        ([config, t0, seq]) => {
          const model = gcraModel(config);
          let state: number[] | undefined;
          let now = t0;
          for (const s of seq) {
            now += s.advance;
            const r = evaluate(config, state, { cost: s.cost }, now);
            const expected = s.cost <= capacityOf(config) && model.clone().offer(now, s.cost);
            expect(r.decision.allowed).toBe(expected);
            if (expected) {
              model.offer(now, s.cost);
              state = r.state;
            } else if (s.cost <= capacityOf(config)) {
              // retryAfterMs: the first ms at which the reference admits the same cells.
              let lo = 1;
              let hi = r.decision.retryAfterMs;
              expect(model.clone().offer(now + hi, s.cost)).toBe(true);
              while (lo < hi) {
                const mid = lo + Math.floor((hi - lo) / 2);
                if (model.clone().offer(now + mid, s.cost)) hi = mid;
                else lo = mid + 1;
              }
              expect(r.decision.retryAfterMs).toBe(lo);
            } else {
              expect(r.decision.retryAfterMs).toBe(RETRY_NEVER);
            }
            expect(r.decision.resetAt).toBe(model.resetAt(now));
            if (capacityOf(config) <= 64) {
              // remaining: how many single cells would still conform right now.
              const probe = model.clone();
              let more = 0;
              while (probe.offer(now, 1)) more++;
              expect(r.decision.remaining).toBe(more);
            }
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it("lets exactly burst requests through at once, then one per emission interval", () => {
    // T = 1000 / 4 = 250 ms, burst 3: τ = 500 ms.
    const config: RateLimitConfig = { algorithm: "gcra", limit: 4, windowMs: 1000, burst: 3 };
    let state: number[] | undefined;
    const at = (now: number) => {
      const r = evaluate(config, state, { cost: 1 }, now);
      if (r.decision.allowed) state = r.state;
      return r.decision;
    };
    expect([at(0), at(0), at(0)].map((d) => d.allowed)).toEqual([true, true, true]);
    expect(at(0)).toMatchObject({ allowed: false, retryAfterMs: 250, resetAt: 750 });
    expect(at(249).allowed).toBe(false);
    expect(at(250).allowed).toBe(true);
    expect(at(250).allowed).toBe(false);
    // T = 1000 / 3 ms, not an integer: kept exact, never rounded to 333 or 334.
    const third: RateLimitConfig = { algorithm: "gcra", limit: 3, windowMs: 1000, burst: 1 };
    let s = evaluate(third, undefined, { cost: 1 }, 0).state; // TAT = 333⅓
    expect(evaluate(third, s, { cost: 1 }, 333).decision).toMatchObject({ allowed: false, retryAfterMs: 1 });
    s = evaluate(third, s, { cost: 1 }, 334).state; // TAT = 667⅓
    expect(evaluate(third, s, { cost: 1 }, 666).decision).toMatchObject({ allowed: false, retryAfterMs: 2 });
    expect(evaluate(third, s, { cost: 1 }, 667).decision.allowed).toBe(false);
    expect(evaluate(third, s, { cost: 1 }, 668).decision.allowed).toBe(true);
    // Three cells at once (burst 3) move TAT to exactly 1000; a fourth fits once TAT − now ≤ 2T.
    const three: RateLimitConfig = { algorithm: "gcra", limit: 3, windowMs: 1000, burst: 3 };
    const full = evaluate(three, undefined, { cost: 3 }, 0);
    expect(full.decision).toMatchObject({ allowed: true, remaining: 0, resetAt: 1000 });
    expect(evaluate(three, full.state, { cost: 1 }, 333).decision).toMatchObject({
      allowed: false,
      retryAfterMs: 1,
    });
    expect(evaluate(three, full.state, { cost: 1 }, 334).decision).toMatchObject({
      allowed: true,
      remaining: 0,
    });
    expect(evaluate(three, full.state, { cost: 3 }, 999).decision.allowed).toBe(false);
    expect(evaluate(three, full.state, { cost: 3 }, 1000).decision.allowed).toBe(true);
  });

  it("decides exactly as token_bucket with the same capacity and rate, forced costs included", () => {
    fc.assert(
      fc.property(
        any("gcra").chain((c) =>
          fc.tuple(
            fc.constant(c),
            start,
            steps(c),
            fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 80, maxLength: 80 }),
          ),
        ),
        ([config, t0, seq, forces]) => {
          const bucketConfig: RateLimitConfig = { ...config, algorithm: "token_bucket" };
          let g: number[] | undefined;
          let b: number[] | undefined;
          let now = t0;
          for (const [i, s] of seq.entries()) {
            now += s.advance;
            // Now and then a forced charge or refund (a reconciled estimate).
            const f = forces[i]!;
            const request = f === 0 ? { cost: s.cost } : { cost: f * s.cost, force: true };
            const rg = evaluate(config, g, request, now);
            const rb = evaluate(bucketConfig, b, request, now);
            expect(rg.decision).toEqual(rb.decision);
            if (rg.decision.allowed || request.force === true) {
              g = rg.state;
              b = rb.state;
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("ratelimit: burst", () => {
  it("is token_bucket with the burst capacity: identical decisions and states", () => {
    fc.assert(
      fc.property(
        any("burst").chain((c) => fc.tuple(fc.constant(c), start, steps(c))),
        ([config, t0, seq]) => {
          let a: number[] | undefined;
          let b: number[] | undefined;
          let now = t0;
          for (const s of seq) {
            now += s.advance;
            const ra = evaluate(config, a, { cost: s.cost }, now);
            const rb = evaluate({ ...config, algorithm: "token_bucket" }, b, { cost: s.cost }, now);
            expect(ra).toEqual(rb);
            if (ra.decision.allowed) {
              a = ra.state;
              b = rb.state;
            }
          }
        },
      ),
    );
  });

  it("denies a cost above the burst whole, even when the sustained limit is larger", () => {
    const config: RateLimitConfig = { algorithm: "burst", limit: 100, windowMs: 60_000, burst: 10 };
    expect(evaluate(config, undefined, { cost: 11 }, 0).decision).toMatchObject({
      allowed: false,
      limit: 10,
      remaining: 10,
      retryAfterMs: RETRY_NEVER,
    });
    const r = evaluate(config, undefined, { cost: 10 }, 0);
    expect(r.decision).toMatchObject({ allowed: true, remaining: 0, resetAt: 6_000 });
  });
});

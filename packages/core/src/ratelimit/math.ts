import { assert } from "../errors.js";
import type { RateLimitConfig, RateLimitRequest, RateLimitResult } from "./types.js";

/**
 * The bounds that keep every rate-limit computation an exact integer below 2^53 (so that doubles, in
 * JavaScript and in Redis Lua, never round). Derivations are in README.md.
 */
export const rateLimitBounds = {
  /** Longest window: longer periods are quotas' job. */
  windowMsMax: 86_400_000,
  /**
   * Largest `limit` or `burst`. A window's usage saturates at 2 × limit, and a sliding window sums 9
   * sub-buckets each clamped to that: 18 × 2^48 < 2^53.
   */
  limitMax: 2 ** 48,
  /**
   * token_bucket, gcra, burst: (capacity + limit) × windowMs must not exceed this. Their state counts
   * in units of 1/windowMs token (or 1/limit ms) and ranges over (capacity + limit) × windowMs units.
   */
  scaledMax: 2 ** 52,
  /** Largest `now` (epoch ms): year 142,000, leaves room for now + scaled offsets below 2^53. */
  nowMax: 2 ** 52,
  /** Sub-buckets of a sliding window: the window counts up to windowMs / 8 ms of extra history. */
  slidingSubBuckets: 8,
} as const;

export interface ConfigProblem {
  path: string;
  message: string;
}

const algorithms = new Set(["sliding_window", "token_bucket", "fixed_window", "gcra", "burst"]);

/** Every problem with a rate-limit config, with its field path; empty when the config is usable. */
export function rateLimitConfigProblems(config: RateLimitConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const { limitMax, windowMsMax, scaledMax } = rateLimitBounds;
  if (!algorithms.has(config.algorithm)) {
    problems.push({ path: "algorithm", message: `unknown algorithm ${JSON.stringify(config.algorithm)}` });
  }
  const positive = (value: unknown, max: number, path: string): boolean => {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
      problems.push({ path, message: `must be an integer from 1 to ${max}` });
      return false;
    }
    return true;
  };
  const limitOk = positive(config.limit, limitMax, "limit");
  const windowOk = positive(config.windowMs, windowMsMax, "windowMs");
  const burstOk = config.burst === undefined || positive(config.burst, limitMax, "burst");
  const bucket =
    config.algorithm === "token_bucket" || config.algorithm === "gcra" || config.algorithm === "burst";
  if (bucket && limitOk && windowOk && burstOk) {
    const capacity = config.burst ?? config.limit;
    if ((capacity + config.limit) * config.windowMs > scaledMax) {
      problems.push({
        path: config.burst === undefined ? "limit" : "burst",
        message: `(burst + limit) × windowMs must not exceed 2^52 (at most ${Math.floor(
          scaledMax / config.windowMs,
        )} for this window)`,
      });
    }
  }
  return problems;
}

/** Preconditions every algorithm relies on; the engine validates requests before they get here. */
export function assertInput(request: RateLimitRequest, now: number): void {
  assert(Number.isSafeInteger(now) && now >= 0 && now <= rateLimitBounds.nowMax, "now out of range");
  assert(Number.isSafeInteger(request.cost), "cost must be a safe integer");
  assert(request.cost >= 0 || request.force === true, "a negative cost needs force");
}

export function assertStateLength(state: ArrayLike<number>, size: number): void {
  // The message is built only on failure: this runs on every evaluation.
  if (state.length !== size) assert(false, `rate-limit state must have ${size} entries, got ${state.length}`);
}

/**
 * floor(a / b) for integers, b > 0, |a| < 2^53. Exact with doubles: when a / b is not an integer it is
 * at least 1/b away from one, while rounding moves it by at most |a / b| × 2^-53 < 1/b.
 */
export function floorDiv(a: number, b: number): number {
  return Math.floor(a / b) + 0; // + 0: never -0
}

/** ceil(a / b) for integers, b > 0, |a| < 2^53; exact for the same reason. */
export function ceilDiv(a: number, b: number): number {
  return Math.ceil(a / b) + 0;
}

/** a mod b in [0, b) for integers, b > 0. */
export function mod(a: number, b: number): number {
  return a - floorDiv(a, b) * b;
}

export function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high);
}

/** A stored number that should be an integer; anything else (NaN from a broken store) reads as `fallback`. */
export function integerOr(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isSafeInteger(value) ? value : fallback;
}

/**
 * An evaluation's answer: a new result holding `state`, or, with an `out` (see RateLimitFunction),
 * `out` with its decision written (`state` is then `out.state`, already filled: see `pairState`).
 */
export function rateResult(
  out: RateLimitResult | undefined,
  state: number[],
  allowed: boolean,
  limit: number,
  remaining: number,
  resetAt: number,
  retryAfterMs: number,
): RateLimitResult {
  if (out === undefined) return { state, decision: { allowed, limit, remaining, resetAt, retryAfterMs } };
  const d = out.decision;
  d.allowed = allowed;
  d.limit = limit;
  d.remaining = remaining;
  d.resetAt = resetAt;
  d.retryAfterMs = retryAfterMs;
  return out;
}

/** A two-entry state `[a, b]`: a new array, or `out.state` with them written. */
export function pairState(out: RateLimitResult | undefined, a: number, b: number): number[] {
  if (out === undefined) return [a, b];
  out.state[0] = a;
  out.state[1] = b;
  return out.state;
}

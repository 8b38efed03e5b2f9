/** The dispatcher: one entry per algorithm. */
import { assert } from "../errors.js";
import { BURST_STATE_SIZE, burst, burstExpiresAt } from "./burst.js";
import { FIXED_WINDOW_STATE_SIZE, fixedWindow, fixedWindowExpiresAt } from "./fixed-window.js";
import { GCRA_STATE_SIZE, gcra, gcraExpiresAt } from "./gcra.js";
import { SLIDING_WINDOW_STATE_SIZE, slidingWindow, slidingWindowExpiresAt } from "./sliding-window.js";
import { TOKEN_BUCKET_STATE_SIZE, tokenBucket, tokenBucketExpiresAt } from "./token-bucket.js";
import type {
  RateLimitAlgorithm,
  RateLimitConfig,
  RateLimitDecision,
  RateLimitFunction,
  RateLimitRequest,
  RateLimitResult,
  RateLimitState,
} from "./types.js";

export interface AlgorithmEntry {
  evaluate: RateLimitFunction;
  stateSize: number;
  expiresAt: (config: RateLimitConfig, state: RateLimitState) => number;
}

const algorithms: Record<RateLimitAlgorithm, AlgorithmEntry> = {
  sliding_window: {
    evaluate: slidingWindow,
    stateSize: SLIDING_WINDOW_STATE_SIZE,
    expiresAt: slidingWindowExpiresAt,
  },
  token_bucket: {
    evaluate: tokenBucket,
    stateSize: TOKEN_BUCKET_STATE_SIZE,
    expiresAt: tokenBucketExpiresAt,
  },
  fixed_window: {
    evaluate: fixedWindow,
    stateSize: FIXED_WINDOW_STATE_SIZE,
    expiresAt: fixedWindowExpiresAt,
  },
  gcra: { evaluate: gcra, stateSize: GCRA_STATE_SIZE, expiresAt: gcraExpiresAt },
  burst: { evaluate: burst, stateSize: BURST_STATE_SIZE, expiresAt: burstExpiresAt },
};

/** The algorithm's functions (a table looks them up once, rather than on every request). */
export function algorithmOf(algorithm: RateLimitAlgorithm): Readonly<AlgorithmEntry> {
  // The message only when it is needed: a template literal per call costs more than the lookup.
  if (!Object.hasOwn(algorithms, algorithm))
    assert(false, `unknown rate-limit algorithm ${String(algorithm)}`);
  return algorithms[algorithm];
}

/**
 * Decide one request against one limit. Pure: the input state is never mutated; store `result.state`
 * only if the request is committed (the engine evaluates every applicable limit first and stores the
 * new states only when all of them allow). `config` must pass `rateLimitConfigProblems`.
 */
export function evaluate(
  config: RateLimitConfig,
  state: RateLimitState | undefined,
  request: RateLimitRequest,
  now: number,
): RateLimitResult {
  return algorithmOf(config.algorithm).evaluate(config, state, request, now);
}

/**
 * The decision a cost-0 request would get — for headers and dashboards: allowed unless the key is over
 * its limit (after forced costs). Changes nothing, like any evaluation whose state is not stored.
 */
export function peek(
  config: RateLimitConfig,
  state: RateLimitState | undefined,
  now: number,
): RateLimitDecision {
  return evaluate(config, state, { cost: 0 }, now).decision;
}

/** Number of integers in the algorithm's state. */
export function stateSize(algorithm: RateLimitAlgorithm): number {
  return algorithmOf(algorithm).stateSize;
}

/** The largest state of any algorithm: a slab sized by it holds every algorithm's state. */
export const STATE_SIZE_MAX = Math.max(...Object.values(algorithms).map((a) => a.stateSize));

/**
 * The instant from which `state` decides exactly as a fresh key (`undefined`) would — the limit is
 * fully available and nothing is counted — so a store may evict it then without changing any decision.
 */
export function expiresAt(config: RateLimitConfig, state: RateLimitState): number {
  return algorithmOf(config.algorithm).expiresAt(config, state);
}

/**
 * The shapes every rate-limit algorithm shares. An algorithm is a pure function
 * `(config, state, request, now) -> { state, decision }`: it never mutates its input state, never
 * reads a clock, and keeps its state as a short fixed-length array of exact integers, so that a store
 * can keep it in a Float64Array slab or a Redis hash and a Lua script can re-implement it.
 */

export type RateLimitAlgorithm = "sliding_window" | "token_bucket" | "fixed_window" | "gcra" | "burst";

export interface RateLimitConfig {
  algorithm: RateLimitAlgorithm;
  /**
   * Amount allowed per window: requests when every request costs 1, or a token count.
   * A positive integer.
   * @example 60
   */
  limit: number;
  /**
   * Length of the window in milliseconds, a positive integer of at most one day.
   * @example 60_000
   */
  windowMs: number;
  /**
   * How much may pass at once (the bucket's capacity) for token_bucket, gcra and burst; ignored by
   * the window algorithms. A positive integer.
   * @default limit
   * @example 10
   */
  burst?: number;
}

/**
 * An algorithm's state for one key: a fixed-length array of integers (see each algorithm's layout),
 * or `undefined` for a key never seen (or evicted). Read-only to the algorithms.
 */
export type RateLimitState = ArrayLike<number>;

export interface RateLimitRequest {
  /**
   * Amount this request uses: 1 to count requests, or a token count. A non-negative safe integer,
   * unless `force` is set.
   */
  cost: number;
  /**
   * Apply the cost even if it does not fit (reconciling an estimate with the actual amount after the
   * fact); with a negative cost, refund (never below empty). The decision then describes the state
   * after the cost was applied.
   * @default false
   */
  force?: boolean;
}

export interface RateLimitDecision {
  /**
   * Whether the request fits. A forced request is applied either way; `allowed` then tells whether the
   * key is still within its limit afterwards.
   */
  allowed: boolean;
  /** The most that can pass at once: `limit` for the window algorithms, the capacity for the buckets. */
  limit: number;
  /** Amount still available right after this request, ≥ 0. */
  remaining: number;
  /**
   * Epoch ms at which the full `limit` is available again (nothing counted any more); the end of the
   * current window for fixed_window.
   */
  resetAt: number;
  /**
   * 0 when allowed. When denied: exactly how many ms until the same request would be admitted (one ms
   * earlier it would still be denied), assuming nothing else happens meanwhile; for a forced request,
   * how long until the key is back within its limit. `RETRY_NEVER` (-1) when the cost exceeds what the
   * configuration can ever admit at once.
   */
  retryAfterMs: number;
}

export interface RateLimitResult {
  /**
   * The state to store if the caller commits this request (a new array, or `out.state` when an `out`
   * was given; the input is untouched).
   */
  state: number[];
  decision: RateLimitDecision;
}

/**
 * An algorithm. With `out` (a result whose `state` has the algorithm's state size and is not `state`
 * itself), the answer is written into `out` and `out` returned, so that a caller evaluating many
 * requests allocates nothing per request; the values are the same as without it.
 */
export type RateLimitFunction = (
  config: RateLimitConfig,
  state: RateLimitState | undefined,
  request: RateLimitRequest,
  now: number,
  out?: RateLimitResult,
) => RateLimitResult;

/** `retryAfterMs` for a cost above the limit (or capacity): no amount of waiting admits it. */
export const RETRY_NEVER = -1;

/**
 * Rate limiting: pure algorithms over small integer states. See README.md for the semantics, the
 * trade-offs of each algorithm and the bounds that keep the arithmetic exact.
 */
export { BURST_STATE_SIZE, burst, burstCapacity, burstExpiresAt } from "./burst.js";
export {
  type AlgorithmEntry,
  algorithmOf,
  evaluate,
  expiresAt,
  peek,
  STATE_SIZE_MAX,
  stateSize,
} from "./dispatch.js";
export { FIXED_WINDOW_STATE_SIZE, fixedWindow, fixedWindowExpiresAt } from "./fixed-window.js";
export { GCRA_STATE_SIZE, gcra, gcraCapacity, gcraExpiresAt } from "./gcra.js";
export { type ConfigProblem, rateLimitBounds, rateLimitConfigProblems } from "./math.js";
export {
  SLIDING_WINDOW_STATE_SIZE,
  slidingWindow,
  slidingWindowBucketMs,
  slidingWindowExpiresAt,
} from "./sliding-window.js";
export { RateLimitTable, type RateLimitTableOptions } from "./table.js";
export {
  TOKEN_BUCKET_STATE_SIZE,
  tokenBucket,
  tokenBucketCapacity,
  tokenBucketExpiresAt,
} from "./token-bucket.js";
export * from "./types.js";

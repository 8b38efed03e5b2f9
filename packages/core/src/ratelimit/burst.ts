import { bucket, bucketExpiresAt } from "./token-bucket.js";
import type { RateLimitConfig, RateLimitFunction, RateLimitState } from "./types.js";

/**
 * burst: a named preset of token_bucket for a burst guard — a bucket sized by `burst` (default: limit)
 * that refills at the sustained rate limit / windowMs. A cost above the burst capacity is denied
 * outright (RETRY_NEVER), never split. Same state layout as token_bucket: `[level, updatedAt]`.
 */
export const BURST_STATE_SIZE = 2;

export function burstCapacity(config: RateLimitConfig): number {
  return config.burst ?? config.limit;
}

export const burst: RateLimitFunction = (config, state, request, now, out) =>
  bucket(config, burstCapacity(config), state, request, now, out);

export function burstExpiresAt(config: RateLimitConfig, state: RateLimitState): number {
  return bucketExpiresAt(config, burstCapacity(config), state);
}

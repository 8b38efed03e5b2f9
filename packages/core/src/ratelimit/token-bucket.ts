import {
  assertInput,
  assertStateLength,
  ceilDiv,
  clamp,
  floorDiv,
  integerOr,
  pairState,
  rateResult,
} from "./math.js";
import {
  type RateLimitConfig,
  type RateLimitFunction,
  type RateLimitRequest,
  type RateLimitResult,
  type RateLimitState,
  RETRY_NEVER,
} from "./types.js";

/**
 * token_bucket: a bucket of `capacity` = burst ?? limit tokens that refills `limit` tokens per windowMs,
 * continuously and exactly; a request takes `cost` tokens or is denied whole.
 *
 * Tokens are counted in units of 1/windowMs token, so one ms refills exactly `limit` units and no
 * fraction is ever rounded: after k idle ms an empty bucket holds exactly floor(k × limit / windowMs)
 * whole tokens.
 *
 * State (2 integers): `[level, updatedAt]` — `level` = tokens × windowMs at `updatedAt` (epoch ms), from
 * −limit × windowMs (one window of debt, reachable only by forced costs) to capacity × windowMs.
 */
export const TOKEN_BUCKET_STATE_SIZE = 2;

export function tokenBucketCapacity(config: RateLimitConfig): number {
  return config.burst ?? config.limit;
}

export const tokenBucket: RateLimitFunction = (config, state, request, now, out) =>
  bucket(config, tokenBucketCapacity(config), state, request, now, out);

/** The bucket behind token_bucket and burst. */
export function bucket(
  config: RateLimitConfig,
  capacity: number,
  state: RateLimitState | undefined,
  request: RateLimitRequest,
  now: number,
  out?: RateLimitResult,
): RateLimitResult {
  assertInput(request, now);
  const { limit, windowMs } = config;
  const full = capacity * windowMs;
  const debtMax = limit * windowMs;
  let level = full;
  let updatedAt = now;
  if (state !== undefined) {
    assertStateLength(state, TOKEN_BUCKET_STATE_SIZE);
    level = clamp(integerOr(state[0], full), -debtMax, full);
    const stored = integerOr(state[1], now);
    // A clock slightly behind the last write: no refill until it catches up. Further ahead than a
    // window (another config, a broken clock): the level is kept, re-anchored now.
    updatedAt = stored <= now + windowMs ? stored : now;
  }
  const at = Math.max(now, updatedAt);
  const elapsed = at - updatedAt;
  // Compare before multiplying: elapsed × limit could pass 2^53 after a long idle time.
  const available = elapsed >= ceilDiv(full - level, limit) ? full : level + elapsed * limit;

  const { cost } = request;
  const force = request.force === true;
  // A module function rather than a closure: under tsx (keepNames) a closure made per call is costly.
  const b: BucketView = { limit, windowMs, capacity, full, at, out };
  if (!force && cost > capacity) return decideBucket(b, available, false, RETRY_NEVER);
  // A forced cost beyond capacity + limit saturates anyway; clamping first keeps the product exact.
  const taken = force ? clamp(cost, -(capacity + limit), capacity + limit) * windowMs : cost * windowMs;
  if (!force && available < taken) {
    return decideBucket(b, available, false, at + ceilDiv(taken - available, limit) - now);
  }
  const next = force ? clamp(available - taken, -debtMax, full) : available - taken;
  const allowed = next >= 0;
  return decideBucket(b, next, allowed, allowed ? 0 : at + ceilDiv(-next, limit) - now);
}

interface BucketView {
  limit: number;
  windowMs: number;
  capacity: number;
  full: number;
  at: number;
  /** Where to write the result (see RateLimitFunction). */
  out: RateLimitResult | undefined;
}

function decideBucket(b: BucketView, next: number, allowed: boolean, retryAfterMs: number): RateLimitResult {
  return rateResult(
    b.out,
    pairState(b.out, next, b.at),
    allowed,
    b.capacity,
    next > 0 ? floorDiv(next, b.windowMs) : 0,
    b.at + ceilDiv(b.full - next, b.limit),
    retryAfterMs,
  );
}

/** From this instant on the state decides exactly as a fresh key would (the bucket is full again). */
export function bucketExpiresAt(config: RateLimitConfig, capacity: number, state: RateLimitState): number {
  assertStateLength(state, TOKEN_BUCKET_STATE_SIZE);
  const full = capacity * config.windowMs;
  const level = clamp(integerOr(state[0], full), -config.limit * config.windowMs, full);
  return integerOr(state[1], 0) + ceilDiv(full - level, config.limit);
}

export function tokenBucketExpiresAt(config: RateLimitConfig, state: RateLimitState): number {
  return bucketExpiresAt(config, tokenBucketCapacity(config), state);
}

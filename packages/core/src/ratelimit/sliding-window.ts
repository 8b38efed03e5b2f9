import {
  assertInput,
  assertStateLength,
  ceilDiv,
  clamp,
  floorDiv,
  integerOr,
  mod,
  rateLimitBounds,
  rateResult,
} from "./math.js";
import {
  type RateLimitConfig,
  type RateLimitFunction,
  type RateLimitResult,
  type RateLimitState,
  RETRY_NEVER,
} from "./types.js";

/**
 * sliding_window: never admits more than `limit` within any windowMs, counted conservatively over
 * sub-buckets.
 *
 * Time is cut into sub-buckets of `width` = ceil(windowMs / 8) ms aligned to the epoch; bucket j holds
 * what was admitted during [j × width, (j + 1) × width). At `now` every bucket that overlaps
 * (now − windowMs, now] counts in full — at most 9 of them — so whatever was admitted within the last
 * windowMs is always counted (the bound is true, unlike the weighted two-window estimate), and an
 * amount stays counted for at most windowMs + width − 1 ms (the precision: it may under-admit).
 *
 * State (10 integers): `[newest, ring_0 … ring_8]` — `newest` = the bucket of the last write; bucket j,
 * for newest − 8 ≤ j ≤ newest, is at ring index j mod 9; buckets that left the window are zero.
 */
const SUB_BUCKETS = rateLimitBounds.slidingSubBuckets;
const RING = SUB_BUCKETS + 1;
export const SLIDING_WINDOW_STATE_SIZE = 1 + RING;

/** Sub-bucket width in ms for a window. */
export function slidingWindowBucketMs(windowMs: number): number {
  return ceilDiv(windowMs, SUB_BUCKETS);
}

export const slidingWindow: RateLimitFunction = (config, state, request, now, out): RateLimitResult => {
  assertInput(request, now);
  const { limit, windowMs } = config;
  const saturation = 2 * limit;
  const width = slidingWindowBucketMs(windowMs);
  let newest = floorDiv(now, width);
  let stored: number | undefined;
  let carried = 0;
  if (state !== undefined) {
    assertStateLength(state, SLIDING_WINDOW_STATE_SIZE);
    stored = integerOr(state[0], newest);
    if (stored > newest + SUB_BUCKETS) {
      // Further ahead than a window (another config, a broken clock): keep the amount, re-anchored now.
      for (let i = 0; i < RING; i++) carried += clamp(integerOr(state[1 + i], 0), 0, saturation);
      stored = undefined;
    } else {
      // A clock slightly behind the last write: time stands still at the start of that bucket.
      newest = Math.max(newest, stored);
    }
  }
  const at = Math.max(now, newest * width);
  const oldest = floorDiv(at - windowMs + 1, width);
  // The new state, built in place: next[1 + mod(j, RING)] holds bucket j for the buckets of the
  // window only (older ones are dropped). A literal: one packed allocation, no copy at the end.
  const next: number[] =
    out === undefined ? [newest, 0, 0, 0, 0, 0, 0, 0, 0, 0] : emptyRing(out.state, newest);
  if (state !== undefined && stored !== undefined) {
    const from = Math.max(oldest, stored - SUB_BUCKETS);
    // The slot of bucket j, stepped along with j (one division for the loop, not one per bucket).
    let slot = 1 + mod(from, RING);
    for (let j = from; j <= stored; j++, slot = slot === RING ? 1 : slot + 1) {
      next[slot] = clamp(integerOr(state[slot], 0), 0, saturation);
    }
  }
  const newestSlot = 1 + mod(newest, RING);
  next[newestSlot] = Math.min(saturation, next[newestSlot]! + carried);
  let used = 0;
  for (let j = oldest, slot = 1 + mod(oldest, RING); j <= newest; j++, slot = slot === RING ? 1 : slot + 1)
    used += next[slot]!;
  // The helpers below are module functions rather than closures: under tsx (keepNames) a closure
  // made per call costs a defineProperty call, and these made an evaluation about 3x slower.
  const w: WindowView = { next, oldest, newest, width, windowMs, at, out };

  const { cost } = request;
  const force = request.force === true;
  if (!force && cost > limit) return result(w, limit, used, false, RETRY_NEVER);
  if (!force && used + cost > limit)
    return result(w, limit, used, false, admitAt(w, used + cost - limit) - now);
  if (cost >= 0) {
    const added = force ? Math.min(cost, Math.max(0, saturation - used)) : cost;
    next[newestSlot]! += added;
    used += added;
  } else {
    // A refund cancels the oldest counts first: the credit then expires no later than the charge it
    // cancels would have, so a refund never makes more available than undoing that charge would.
    let refund = Math.min(-cost, used);
    used -= refund;
    for (let j = oldest; j <= newest && refund > 0; j++) {
      const slot = 1 + mod(j, RING);
      const take = Math.min(next[slot]!, refund);
      next[slot]! -= take;
      refund -= take;
    }
  }
  const allowed = used <= limit;
  return result(w, limit, used, allowed, allowed ? 0 : admitAt(w, used - limit) - now);
};

/**
 * The counted buckets of one evaluation: `next[1 + mod(j, RING)]` for oldest ≤ j ≤ newest (the loops
 * step the slot along with j instead of dividing for each bucket).
 */
interface WindowView {
  /** The new state: `[newest, ring_0 … ring_8]`. */
  next: number[];
  oldest: number;
  newest: number;
  width: number;
  windowMs: number;
  at: number;
  /** Where to write the result (see RateLimitFunction); `next` is then `out.state`. */
  out: RateLimitResult | undefined;
}

/** `ring` as a fresh state would start: the newest bucket index, then every bucket empty. */
function emptyRing(ring: number[], newest: number): number[] {
  ring[0] = newest;
  for (let i = 1; i < SLIDING_WINDOW_STATE_SIZE; i++) ring[i] = 0;
  return ring;
}

/** The first instant at which the buckets still counting have freed `excess` (hold at most `limit - cost`). */
function admitAt(w: WindowView, excess: number): number {
  let freed = 0;
  for (let j = w.oldest, slot = 1 + mod(j, RING); j <= w.newest; j++, slot = slot === RING ? 1 : slot + 1) {
    freed += w.next[slot]!;
    if (freed >= excess) return (j + 1) * w.width + w.windowMs - 1;
  }
  return w.at; // unreachable: excess ≤ used
}

/** When the newest non-empty bucket leaves the window. */
function resetAt(w: WindowView): number {
  for (let j = w.newest, slot = 1 + mod(j, RING); j >= w.oldest; j--, slot = slot === 1 ? RING : slot - 1) {
    if (w.next[slot]! > 0) return (j + 1) * w.width + w.windowMs - 1;
  }
  return w.at;
}

function result(
  w: WindowView,
  limit: number,
  used: number,
  allowed: boolean,
  retryAfterMs: number,
): RateLimitResult {
  return rateResult(w.out, w.next, allowed, limit, Math.max(0, limit - used), resetAt(w), retryAfterMs);
}

/** From this instant on the state decides exactly as a fresh key would: a table may evict it. */
export function slidingWindowExpiresAt(config: RateLimitConfig, state: RateLimitState): number {
  assertStateLength(state, SLIDING_WINDOW_STATE_SIZE);
  const width = slidingWindowBucketMs(config.windowMs);
  const newest = integerOr(state[0], 0);
  for (
    let j = newest, slot = 1 + mod(j, RING);
    j >= newest - SUB_BUCKETS;
    j--, slot = slot === 1 ? RING : slot - 1
  ) {
    if (integerOr(state[slot], 0) > 0) return (j + 1) * width + config.windowMs - 1;
  }
  return 0;
}

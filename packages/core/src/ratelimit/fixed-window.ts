import { assertInput, assertStateLength, clamp, floorDiv, integerOr, pairState, rateResult } from "./math.js";
import {
  type RateLimitConfig,
  type RateLimitFunction,
  type RateLimitResult,
  type RateLimitState,
  RETRY_NEVER,
} from "./types.js";

/**
 * fixed_window: one counter per window, windows aligned to multiples of windowMs since the epoch.
 *
 * State (2 integers): `[window, used]` — `window` = floor(t / windowMs) of the last write, `used` = amount
 * admitted in it (up to 2 × limit after forced costs).
 *
 * Cheapest and easiest to explain, but a burst at the end of one window and another at the start of
 * the next can admit up to 2 × limit within windowMs.
 */
export const FIXED_WINDOW_STATE_SIZE = 2;

export const fixedWindow: RateLimitFunction = (config, state, request, now, out): RateLimitResult => {
  assertInput(request, now);
  const { limit, windowMs } = config;
  const saturation = 2 * limit;
  const current = floorDiv(now, windowMs);
  let window = current;
  let used = 0;
  if (state !== undefined) {
    assertStateLength(state, FIXED_WINDOW_STATE_SIZE);
    const stored = integerOr(state[0], current);
    const amount = clamp(integerOr(state[1], 0), 0, saturation);
    if (stored === current || stored === current + 1) {
      // The same window, or the next one on a clock slightly ahead: time stands still until we get there.
      window = stored;
      used = amount;
    } else if (stored > current) {
      // Further ahead than a window can be (another config, a broken clock): keep the amount, re-anchored now.
      used = amount;
    }
  }
  const resetAt = (window + 1) * windowMs;
  const { cost } = request;
  const force = request.force === true;
  // A module function rather than a closure: under tsx (keepNames) a closure made per call is costly.
  if (!force && cost > limit) return windowResult(window, used, false, limit, resetAt, RETRY_NEVER, out);
  if (!force && used + cost > limit)
    return windowResult(window, used, false, limit, resetAt, resetAt - now, out);
  const next = force ? clamp(used + clamp(cost, -saturation, saturation), 0, saturation) : used + cost;
  const allowed = next <= limit;
  return windowResult(window, next, allowed, limit, resetAt, allowed ? 0 : resetAt - now, out);
};

/** The state [window, used] and its decision, in a new result or written into `out`. */
function windowResult(
  window: number,
  used: number,
  allowed: boolean,
  limit: number,
  resetAt: number,
  retryAfterMs: number,
  out: RateLimitResult | undefined,
): RateLimitResult {
  const state = pairState(out, window, used);
  return rateResult(out, state, allowed, limit, Math.max(0, limit - used), resetAt, retryAfterMs);
}

/** From this instant on the state decides exactly as a fresh key would: a table may evict it. */
export function fixedWindowExpiresAt(config: RateLimitConfig, state: RateLimitState): number {
  assertStateLength(state, FIXED_WINDOW_STATE_SIZE);
  const used = integerOr(state[1], 0);
  return used > 0 ? (integerOr(state[0], 0) + 1) * config.windowMs : 0;
}

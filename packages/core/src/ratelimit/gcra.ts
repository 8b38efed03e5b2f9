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
  type RateLimitResult,
  type RateLimitState,
  RETRY_NEVER,
} from "./types.js";

/**
 * gcra: the Generic Cell Rate Algorithm, virtual-scheduling form (ITU-T I.371), with emission interval
 * T = windowMs / limit and burst tolerance τ = (B − 1) × T, where B = burst ?? limit, so that B cells
 * pass at once. A request of cost n is n cells arriving together, admitted whole or not at all: with
 * TAT the theoretical arrival time,
 *
 *   conforming  ⇔  max(TAT, now) + n × T − now ≤ τ + T  (= B × T);   then TAT ← max(TAT, now) + n × T,
 *
 * which is exactly "each of the n cells conforms in turn" (cell k: now ≥ TAT_k − τ). A non-conforming
 * request leaves TAT unchanged.
 *
 * Times are kept exact in units of 1/limit ms, where T is the integer windowMs. TAT itself would not
 * fit below 2^53 in those units, so it is split: TAT = tatMs + tatFrac / limit.
 *
 * State (2 integers): `[tatMs, tatFrac]` with 0 ≤ tatFrac < limit. TAT − now stays within
 * (B + limit) × T: forced costs may run one window of debt beyond the burst tolerance.
 */
export const GCRA_STATE_SIZE = 2;

export function gcraCapacity(config: RateLimitConfig): number {
  return config.burst ?? config.limit;
}

export const gcra: RateLimitFunction = (config, state, request, now, out): RateLimitResult => {
  assertInput(request, now);
  const { limit, windowMs } = config;
  const capacity = gcraCapacity(config);
  const tolerance = capacity * windowMs; // τ + T, in 1/limit ms
  const horizon = (capacity + limit) * windowMs;
  // backlog = (max(TAT, now) − now) × limit
  let backlog = 0;
  if (state !== undefined) {
    assertStateLength(state, GCRA_STATE_SIZE);
    const tatMs = integerOr(state[0], 0);
    const tatFrac = clamp(integerOr(state[1], 0), 0, limit - 1);
    if (tatMs >= now) {
      const ahead = tatMs - now;
      backlog = ahead >= ceilDiv(horizon, limit) ? horizon : Math.min(horizon, ahead * limit + tatFrac);
    }
  }
  const { cost } = request;
  const force = request.force === true;
  // A module function rather than a closure: under tsx (keepNames) a closure made per call is costly.
  const g: GcraView = { now, limit, windowMs, capacity, tolerance, out };
  if (!force && cost > capacity) return decide(g, backlog, false, RETRY_NEVER);
  const increment = force ? clamp(cost, -(capacity + limit), capacity + limit) * windowMs : cost * windowMs;
  if (!force && backlog + increment > tolerance) {
    // Earliest t with (TAT − t) × limit + increment ≤ tolerance.
    return decide(g, backlog, false, ceilDiv(backlog + increment - tolerance, limit));
  }
  const next = force ? clamp(backlog + increment, 0, horizon) : backlog + increment;
  const allowed = next <= tolerance;
  return decide(g, next, allowed, allowed ? 0 : ceilDiv(next - tolerance, limit));
};

interface GcraView {
  now: number;
  limit: number;
  windowMs: number;
  capacity: number;
  tolerance: number;
  /** Where to write the result (see RateLimitFunction). */
  out: RateLimitResult | undefined;
}

function decide(g: GcraView, next: number, allowed: boolean, retryAfterMs: number): RateLimitResult {
  const tatMs = g.now + floorDiv(next, g.limit);
  return rateResult(
    g.out,
    pairState(g.out, tatMs, next - (tatMs - g.now) * g.limit),
    allowed,
    g.capacity,
    next < g.tolerance ? floorDiv(g.tolerance - next, g.windowMs) : 0,
    g.now + ceilDiv(next, g.limit),
    retryAfterMs,
  );
}

/** From this instant on the state decides exactly as a fresh key would: TAT has passed. */
export function gcraExpiresAt(_config: RateLimitConfig, state: RateLimitState): number {
  assertStateLength(state, GCRA_STATE_SIZE);
  return integerOr(state[0], 0) + (integerOr(state[1], 0) > 0 ? 1 : 0);
}

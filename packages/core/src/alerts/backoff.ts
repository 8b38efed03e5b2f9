/**
 * The retry schedule of webhook deliveries: exponential backoff with jitter, for at least
 * `retryForMs` (24 h by default). Pure: the random source is injected (tests pass a seeded one).
 *
 * Attempt n (1-based) failed → the next attempt waits a delay drawn uniformly from
 * [nominal/2, nominal], nominal = min(baseMs · 2^(n-1), capMs) ("equal jitter": receivers that come
 * back are not hit by every sender at once, and no delay collapses to zero). A delivery gives up only
 * after an attempt that failed at least `retryForMs` after its round began, so the promise "retried for
 * at least 24 hours" holds whatever the jitter draws; `attemptsMax` bounds the attempts of a round.
 */
export interface BackoffPolicy {
  /** @default 15_000 */
  baseMs: number;
  /** @default 7_200_000 (2 h) */
  capMs: number;
  /** @default 86_400_000 (24 h) */
  retryForMs: number;
  /** Upper bound on attempts per round, far above what the schedule needs. @default 60 */
  attemptsMax: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  baseMs: 15_000,
  capMs: 2 * 3_600_000,
  retryForMs: 24 * 3_600_000,
  attemptsMax: 60,
};

/** The delay before the attempt that follows failed attempt `attempt` (1-based). `random` gives [0, 1). */
export function retryDelay(
  attempt: number,
  random: () => number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
): number {
  const exp = Math.min(Math.max(attempt - 1, 0), 40);
  const nominal = Math.min(policy.baseMs * 2 ** exp, policy.capMs);
  const r = random();
  const u = r >= 0 && r < 1 ? r : 0;
  return Math.ceil(nominal / 2 + u * (nominal / 2));
}

export type NextStep = { state: "pending"; nextAttemptAt: number } | { state: "failed"; nextAttemptAt: null };

/**
 * After a failed attempt: when to try again, or give up. `attemptInRound` counts the attempts of the
 * current round (1 after the first); `roundStartedAt` is when the round began (the alert, or a manual
 * redelivery).
 */
export function afterFailure(
  attemptInRound: number,
  roundStartedAt: number,
  now: number,
  random: () => number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
): NextStep {
  if (now - roundStartedAt >= policy.retryForMs || attemptInRound >= policy.attemptsMax) {
    return { state: "failed", nextAttemptAt: null };
  }
  return { state: "pending", nextAttemptAt: now + retryDelay(attemptInRound, random, policy) };
}

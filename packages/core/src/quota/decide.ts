import type { Enforcement } from "./definitions.js";

export interface QuotaState {
  amount: number;
  /** Committed usage in the window. */
  used: number;
  /** Usage held by open reservations. */
  held: number;
}

export interface QuotaDecision {
  /** Whether this limit lets the request through (soft and shadow always do). */
  allowed: boolean;
  /** Whether the request would take usage past the amount. */
  exceeded: boolean;
  remaining: number;
}

/**
 * A hard quota admits a request when used + held + cost stays within the amount. A request that
 * brings no estimate (cost 0) is refused once the quota is used up, so an exhausted quota stops new
 * work even when callers don't estimate. Soft and shadow limits never deny; they report `exceeded`.
 */
export function decideQuota(state: QuotaState, cost: number, enforcement: Enforcement): QuotaDecision {
  const taken = state.used + state.held;
  const exceeded = cost === 0 ? taken >= state.amount : taken + cost > state.amount;
  const remainingBefore = Math.max(0, state.amount - taken);
  const remaining = exceeded ? remainingBefore : Math.max(0, remainingBefore - cost);
  return { allowed: !exceeded || enforcement !== "hard", exceeded, remaining };
}

export type LimitState = "ok" | "warning" | "critical" | "exceeded";

/** ok below the first threshold, warning from it, critical from the last, exceeded at 100 %. */
export function limitState(percentUsed: number, thresholds: number[]): LimitState {
  if (percentUsed >= 100) return "exceeded";
  if (thresholds.length === 0) return "ok";
  if (thresholds.length > 1 && percentUsed >= thresholds[thresholds.length - 1]!) return "critical";
  if (percentUsed >= thresholds[0]!) return "warning";
  return "ok";
}

/** Percent of the amount used, two decimals, for display only (counters stay integers). */
export function percentUsed(used: number, amount: number): number {
  if (amount <= 0) return used > 0 ? 100 : 0;
  return Math.floor((used * 10_000) / amount) / 100;
}

/**
 * Threshold crossing: which alert levels a quota's usage has reached. Pure and exact (integers only).
 *
 * A quota's `thresholds` (percent, ascending; default 80 and 95) map to levels the way
 * GET /v1/customers/{id}/limits maps them to states: every threshold but the last is a `warning`, the
 * last (when there are two or more) is `critical`, and 100 % is `exceeded`. A threshold of 100 is
 * the `exceeded` level itself, so it adds no level of its own.
 */

export type LimitAlertType = "limit.warning" | "limit.critical" | "limit.exceeded";

export interface LevelReached {
  type: LimitAlertType;
  /** The percent that was reached: the threshold, or 100 for `limit.exceeded`. */
  threshold: number;
}

/**
 * Every level that `used` out of `amount` has reached, lowest first. A quota of amount 0 is
 * exceeded by any use. `thresholds` need not be sorted.
 */
export function levelsReached(thresholds: readonly number[], used: number, amount: number): LevelReached[] {
  if (used <= 0) return [];
  // Quotas keep their thresholds sorted and distinct: take them as they are when they are.
  let sorted = thresholds;
  for (let i = 0; i < thresholds.length; i++) {
    const t = thresholds[i]!;
    if (!(t > 0 && t < 100) || (i > 0 && t <= thresholds[i - 1]!)) {
      sorted = [...new Set(thresholds)].filter((x) => x > 0 && x < 100).sort((a, b) => a - b);
      break;
    }
  }
  if (!reaches(used, amount, sorted.length > 0 ? sorted[0]! : 100)) return [];
  const out: LevelReached[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i]!;
    if (!reaches(used, amount, t)) break;
    const last = i === sorted.length - 1 && sorted.length > 1;
    out.push({ type: last ? "limit.critical" : "limit.warning", threshold: t });
  }
  if (reaches(used, amount, 100)) out.push({ type: "limit.exceeded", threshold: 100 });
  return out;
}

/** used / amount >= percent / 100, exactly. */
export function reaches(used: number, amount: number, percent: number): boolean {
  if (used <= 0) return false;
  if (amount <= 0) return true;
  // used * 100 and percent * amount stay exact below 2^53; past that, compare as BigInts.
  if (used <= 90_071_992_547_409 && amount <= 90_071_992_547_409) return used * 100 >= percent * amount;
  return BigInt(used) * 100n >= BigInt(percent) * BigInt(amount);
}

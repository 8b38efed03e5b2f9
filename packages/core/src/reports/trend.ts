/**
 * Change and trend of a series of exact totals, for dashboard views. Percentages and slopes are
 * statistics, so they are numbers (rounded to 2 decimals); the totals they come from stay exact.
 */

/** Percent change from `previous` to `current`; null when there is no previous usage to compare with. */
export function percentChange(previous: bigint, current: bigint): number | null {
  if (previous === 0n) return null;
  // Exact to 2 decimals: the ratio in hundredths of a percent, rounded half away from zero.
  const diff = (current - previous) * 20_000n;
  const q = diff / previous;
  const rounded = q >= 0n ? (q + 1n) / 2n : (q - 1n) / 2n;
  return Number(rounded) / 100;
}

/** Share of `part` in `whole`, in percent with 2 decimals (0 when whole is 0). */
export function percentShare(part: bigint, whole: bigint): number {
  if (whole === 0n) return 0;
  return Number(((part * 20_000n) / whole + 1n) / 2n) / 100;
}

/** Least-squares slope of `values` over their index (per period), and its direction. */
export function linearTrend(values: bigint[]): { slope: number; direction: "up" | "down" | "flat" } {
  const n = values.length;
  if (n < 2) return { slope: 0, direction: "flat" };
  // slope = (n Σxy − Σx Σy) / (n Σx² − (Σx)²), computed exactly in bigints, divided once.
  let sx = 0n;
  let sy = 0n;
  let sxy = 0n;
  let sxx = 0n;
  for (let i = 0; i < n; i++) {
    const x = BigInt(i);
    const y = values[i]!;
    sx += x;
    sy += y;
    sxy += x * y;
    sxx += x * x;
  }
  const N = BigInt(n);
  const num = N * sxy - sx * sy;
  const den = N * sxx - sx * sx;
  const slope = Number((num * 100n) / den) / 100;
  return { slope, direction: num > 0n ? "up" : num < 0n ? "down" : "flat" };
}

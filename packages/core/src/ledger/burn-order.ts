/** What decides which grant a debit spends first. */
export interface BurnKey {
  /** null = never expires. */
  expiresAt: number | null;
  /** Lower is spent first. */
  priority: number;
  /** Order granted (older first). */
  seq: number;
}

/**
 * Burn order: the grant expiring soonest first (grants that never expire last), then the higher
 * priority (lower number) first, then the older first. Negative when `a` is spent before `b`.
 *
 * Spending what expires first wastes the least; the order is total (seq is unique), so a replay
 * always spends the same grants.
 */
export function compareBurnOrder(a: BurnKey, b: BurnKey): number {
  if (a.expiresAt !== b.expiresAt) {
    if (a.expiresAt === null) return 1;
    if (b.expiresAt === null) return -1;
    return a.expiresAt < b.expiresAt ? -1 : 1;
  }
  if (a.priority !== b.priority) return a.priority < b.priority ? -1 : 1;
  return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0;
}

/** Index at which `key` goes in `sorted` (burn order) so that it stays sorted. */
export function burnInsertionIndex(sorted: readonly BurnKey[], key: BurnKey): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBurnOrder(sorted[mid]!, key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

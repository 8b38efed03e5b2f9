import { Ledger, type LedgerOptions } from "./ledger.js";
import type { LedgerEntry, LedgerResult, LedgerView } from "./types.js";

/**
 * Replays a log in order through `Ledger.apply`, exactly as the entries were first applied: the same
 * results and the same state. An entry that fails (say a debit the log should not hold) changes
 * nothing, as it did live, so a log of every attempt derives the same ledger as a log of the
 * applied entries only (tested). `results[i]` is entry i's result.
 */
export function replayLedger(
  entries: Iterable<LedgerEntry>,
  options: LedgerOptions = {},
): { ledger: Ledger; results: LedgerResult[] } {
  const ledger = new Ledger(options);
  const results: LedgerResult[] = [];
  for (const entry of entries) results.push(ledger.apply(entry));
  return { ledger, results };
}

/**
 * The balance as of `now`, derived from the log: balance = credited − debited − expired,
 * available = balance − held. `minimumBalance` applies until a `minimum_balance` entry sets another.
 */
export function deriveLedger(entries: Iterable<LedgerEntry>, now: number, minimumBalance = 0): LedgerView {
  return replayLedger(entries, { minimumBalance }).ledger.view(now);
}

/**
 * The credit ledger: grants spent in burn order, debits, and holds as pending transfers, derived
 * from append-only entries with idempotency keys. See README.md for the rules and invariants.
 */
export { type BurnKey, compareBurnOrder } from "./burn-order.js";
export { deriveLedger, replayLedger } from "./derive.js";
export { LEDGER_BEGINNING, Ledger, type LedgerOptions, ledgerIntegerToJson } from "./ledger.js";
export * from "./types.js";

import type { TollgateError } from "../errors.js";
import { bounds } from "../limits.js";

/**
 * The ledger's own bounds. Amounts are integer credits: every amount in an entry is a non-negative
 * safe integer (≤ 2^53 − 1); sums (balance, held, totals) are bigint, so they are exact however many
 * entries add up.
 */
export const ledgerBounds = {
  /** Highest priority (spent first among grants with the same expiry). */
  priorityMin: 0,
  /** Lowest priority (spent last among grants with the same expiry). */
  priorityMax: 100,
  /** A credit without `priority`. */
  priorityDefault: 50,
  /** Length of an idempotency key, grant id or hold id. */
  idLengthMax: bounds.idLengthMax,
  /** Length of a credit's or debit's description. */
  descriptionLengthMax: 1_024,
  /** Largest amount in one entry: JSON numbers are exact up to 2^53 − 1. */
  amountMax: Number.MAX_SAFE_INTEGER,
} as const;

// ---- entries (append-only; the balance is derived from them) --------------------------------------

/** Adds credits: a grant, spent by debits in burn order, whose unspent part expires at `expiresAt`. */
export interface CreditEntry {
  kind: "credit";
  /** Once per ledger, shared by every kind of entry. */
  idempotencyKey: string;
  /** Epoch ms the entry was made. */
  at: number;
  /** Credits granted, 1 … 2^53 − 1. */
  amount: number;
  /** Epoch ms from which the unspent part is gone (usable while `t < expiresAt`); none = never. */
  expiresAt?: number | null;
  /** 0 … 100, lower is spent first among grants with the same expiry. @default 50 */
  priority?: number;
  /** @default the idempotency key */
  grantId?: string;
  description?: string;
}

/** Spends credits now, all or nothing: denied if it would take `available` below the minimum. */
export interface DebitEntry {
  kind: "debit";
  idempotencyKey: string;
  at: number;
  /** 0 … 2^53 − 1. */
  amount: number;
  description?: string;
}

/** Reserves credits (a pending transfer) until committed, released, or `expiresAt` passes. */
export interface HoldEntry {
  kind: "hold";
  idempotencyKey: string;
  at: number;
  /** Unique per ledger; commit and release name it. */
  holdId: string;
  /** 0 … 2^53 − 1. */
  amount: number;
  /** Epoch ms (the TTL's end) from which the hold no longer counts; must be after `at`. */
  expiresAt: number;
}

/** Debits the actual usage of a hold and ends the hold. Never denied for lack of balance. */
export interface CommitEntry {
  kind: "commit";
  idempotencyKey: string;
  at: number;
  holdId: string;
  /** 0 … 2^53 − 1; may be more or less than the hold. */
  actualAmount: number;
  description?: string;
}

/** Ends a hold without spending anything. */
export interface ReleaseEntry {
  kind: "release";
  idempotencyKey: string;
  at: number;
  holdId: string;
}

/**
 * Sets the floor that debits and holds may not take `available` below (negative allows overdraft).
 * It has no idempotency key: setting a value is idempotent by nature (`PUT`).
 */
export interface MinimumBalanceEntry {
  kind: "minimum_balance";
  at: number;
  /** −(2^53 − 1) … 2^53 − 1. */
  minimumBalance: number;
}

/**
 * Recorded usage turned into credits by a debit rule: `units` of a meter at `creditsPerUnit` credits
 * per `unit` units. The fraction below one credit is carried to the rule's next usage entry (per
 * rule), so many small events are charged exactly what one big one would be. Usage already happened:
 * it is debited even below the minimum (never denied), like a commit.
 */
export interface UsageEntry {
  kind: "usage";
  idempotencyKey: string;
  at: number;
  /** The debit rule's id: the carry is kept per rule. */
  rule: string;
  /** 0 … 2^53 − 1 meter units (tokens, pico-USD of cost, …). */
  units: number;
  /** 1 … 2^53 − 1 credits per `unit` units. */
  creditsPerUnit: number;
  /** 1 … 2^53 − 1 units. */
  unit: number;
  description?: string;
}

export type LedgerEntry =
  | CreditEntry
  | DebitEntry
  | UsageEntry
  | HoldEntry
  | CommitEntry
  | ReleaseEntry
  | MinimumBalanceEntry;

export type LedgerEntryKind = LedgerEntry["kind"];

// ---- results --------------------------------------------------------------------------------------

/** Part of a debit or commit taken from one grant. */
export interface Allocation {
  grantId: string;
  amount: number;
}

export interface CreditOutcome {
  kind: "credit";
  grantId: string;
  amount: number;
  /** The part that paid back an earlier overdraft (a negative `unallocated`); it is not spendable. */
  repaid: number;
  /** What the grant holds after that: amount − repaid. */
  remaining: number;
}

export interface DebitOutcome {
  kind: "debit";
  amount: number;
  /** Grants spent, in burn order. */
  allocations: Allocation[];
  /** The part no grant covered, added to the overdraft (`unallocated` goes down by it). */
  overdrawn: number;
}

export interface UsageOutcome {
  kind: "usage";
  rule: string;
  units: number;
  /** Credits debited: whole credits of (carry + units × creditsPerUnit) / unit. */
  amount: number;
  /** The rule's carry after this entry, in units × creditsPerUnit (below `unit`). */
  carry: bigint;
  allocations: Allocation[];
  overdrawn: number;
}

export interface HoldOutcome {
  kind: "hold";
  holdId: string;
  amount: number;
  expiresAt: number;
}

export interface CommitOutcome {
  kind: "commit";
  holdId: string;
  /** What the hold still held and this commit let go: its amount, or 0 when its TTL had passed. */
  released: number;
  /** Whether the hold's TTL had passed before the commit (the usage is debited all the same). */
  holdExpired: boolean;
  actualAmount: number;
  allocations: Allocation[];
  overdrawn: number;
}

export interface ReleaseOutcome {
  kind: "release";
  holdId: string;
  /** What returned to `available`: the hold's amount, or 0 if it had expired or was already released. */
  released: number;
}

export interface MinimumBalanceOutcome {
  kind: "minimum_balance";
}

export type LedgerOutcome =
  | CreditOutcome
  | DebitOutcome
  | UsageOutcome
  | HoldOutcome
  | CommitOutcome
  | ReleaseOutcome
  | MinimumBalanceOutcome;

/** The ledger's figures right after an entry, at its effective time. */
export interface LedgerTotals {
  balance: bigint;
  available: bigint;
  held: bigint;
  minimumBalance: bigint;
  /** available < minimumBalance: only expiry, a commit or a raised minimum can cause it (README). */
  belowMinimum: boolean;
  /** max(0, minimumBalance − available). */
  shortfall: bigint;
}

export type LedgerApplied = LedgerOutcome &
  LedgerTotals & {
    ok: true;
    /** True when this is a retry: the first result, returned again; nothing changed. */
    replayed: boolean;
    /** When the entry took effect: its `at`, or the ledger's clock if `at` was earlier. */
    at: number;
  };

/**
 * Errors are values (codes from the catalogue), never thrown, so a replay can report each entry:
 * INVALID_REQUEST (malformed, `details.field`), CONFLICT (idempotency key reused for another entry,
 * id taken, hold already finished), NOT_FOUND (unknown hold), INSUFFICIENT_BALANCE (402). A failed
 * entry changes nothing.
 */
export type LedgerResult = LedgerApplied | { ok: false; error: TollgateError };

// ---- views (plain data for GET /v1/customers/{id}/balance) ----------------------------------------

export type GrantStatus = "active" | "spent" | "expired";

export interface LedgerGrant {
  id: string;
  amount: number;
  /** Spendable now; 0 once spent or expired. */
  remaining: number;
  /** The part that expired unspent (0 until `expiresAt`). */
  expired: number;
  /** The part that paid back an overdraft when it was granted. */
  repaid: number;
  expiresAt: number | null;
  priority: number;
  grantedAt: number;
  status: GrantStatus;
  description?: string;
}

export type HoldStatus = "active" | "committed" | "released" | "expired";

export interface LedgerHold {
  id: string;
  amount: number;
  heldAt: number;
  expiresAt: number;
  status: HoldStatus;
}

export interface LedgerExpiry {
  grantId: string;
  amount: number;
  /** The grant's expiresAt. */
  at: number;
}

export interface LedgerView extends LedgerTotals {
  /** The instant described (never before the last entry's effective time). */
  at: number;
  /** ≤ 0: debits no grant covered, not yet paid back by later credits. */
  unallocated: bigint;
  /** Lifetime sums; balance = credited − debited − expired. */
  credited: bigint;
  debited: bigint;
  expired: bigint;
  /** Every grant, in the order granted. */
  grants: LedgerGrant[];
  /** Holds that count at `at`, in the order made. */
  holds: LedgerHold[];
}

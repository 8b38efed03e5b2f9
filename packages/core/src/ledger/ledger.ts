/**
 * One customer's credit ledger: grants, debits and holds (pending transfers) over integer credits.
 * The state is derived from append-only entries; see README.md for the rules and invariants.
 */
import { assert, conflict, invalid, notFound, TollgateError } from "../errors.js";
import { burnInsertionIndex } from "./burn-order.js";
import {
  type Allocation,
  type CommitEntry,
  type CreditEntry,
  type DebitEntry,
  type GrantStatus,
  type HoldEntry,
  type HoldStatus,
  type LedgerApplied,
  type LedgerEntry,
  type LedgerExpiry,
  type LedgerGrant,
  type LedgerHold,
  type LedgerOutcome,
  type LedgerResult,
  type LedgerView,
  ledgerBounds,
  type ReleaseEntry,
  type UsageEntry,
} from "./types.js";
import { entryProblem, fingerprint } from "./validate.js";

/** The clock of a ledger that has applied nothing yet. */
export const LEDGER_BEGINNING = Number.MIN_SAFE_INTEGER;

export interface LedgerOptions {
  /**
   * The minimum balance until a `minimum_balance` entry sets another. Negative allows overdraft.
   * @default 0
   * @example -500
   */
  minimumBalance?: number;
}

/** A bigint for JSON: a number when it is a safe integer (always, in practice), else a decimal string. */
export function ledgerIntegerToJson(value: bigint): number | string {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value.toString();
}

interface Grant {
  id: string;
  /** Order granted: the last tie-break of the burn order. */
  seq: number;
  amount: number;
  remaining: number;
  expired: number;
  repaid: number;
  expiresAt: number | null;
  priority: number;
  grantedAt: number;
  status: GrantStatus;
  description: string | undefined;
}

interface Hold {
  id: string;
  amount: number;
  heldAt: number;
  expiresAt: number;
  /** "active" may be past its TTL until the clock is advanced over it. */
  status: HoldStatus;
}

interface KeyRecord {
  fingerprint: string;
  result: LedgerApplied;
}

/** What passes between the ledger's clock and `t`: grants and holds that expire by then. */
interface Due {
  /** The first `grants` of the burn order expire (they are a prefix: burn order is expiry first). */
  grants: number;
  grantAmount: bigint;
  holds: Hold[];
  holdAmount: bigint;
}

type Failure = { ok: false; error: TollgateError };
const fail = (error: TollgateError): Failure => ({ ok: false, error });

const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/**
 * A ledger in memory. `apply` is atomic: an entry is applied whole, or (any error) nothing changes —
 * not the clock, not the idempotency keys. `view`, `check`, `hold` and `expiries` never change it.
 *
 * Mutable for speed (replaying a long log is linear); `clone()` gives an independent copy, so a
 * caller wanting `(state, entry) -> { state, result }` can clone first.
 */
export class Ledger {
  private clockMs = LEDGER_BEGINNING;
  private minimum: bigint;
  private balance = 0n;
  private held = 0n;
  private unallocated = 0n;
  private credited = 0n;
  private debited = 0n;
  private expired = 0n;
  private seq = 0;
  /** Every grant, in the order granted. */
  private grants: Grant[] = [];
  private grantById = new Map<string, Grant>();
  /** Grants with remaining > 0, in burn order. */
  private active: Grant[] = [];
  private holds = new Map<string, Hold>();
  /** Holds with status "active", in the order made. */
  private activeHolds = new Map<string, Hold>();
  private keys = new Map<string, KeyRecord>();
  /** Per debit rule: the fraction of a credit not yet charged, in units × creditsPerUnit. */
  private carries = new Map<string, { creditsPerUnit: number; unit: number; remainder: bigint }>();
  private trusted = false;

  constructor(options: LedgerOptions = {}) {
    const m = options.minimumBalance ?? 0;
    if (!Number.isSafeInteger(m)) {
      throw invalid("minimumBalance must be a safe integer", { field: "minimumBalance" });
    }
    this.minimum = BigInt(m);
  }

  /** The effective time of the last applied entry; later entries never take effect before it. */
  get clock(): number {
    return this.clockMs;
  }

  get minimumBalance(): bigint {
    return this.minimum;
  }

  /**
   * Applies an entry from a stored log: one that was admitted when it was made. Debits and holds are
   * not admitted again (entries of one customer may be stored in another order than they were applied
   * live, and a replay must not drop a hold that was granted).
   */
  restore(entry: LedgerEntry): LedgerResult {
    this.trusted = true;
    try {
      return this.apply(entry);
    } finally {
      this.trusted = false;
    }
  }

  /** Applies one entry at `max(clock, entry.at)`. Never throws for a bad entry: see LedgerResult. */
  apply(entry: LedgerEntry): LedgerResult {
    const problem = entryProblem(entry);
    if (problem) return fail(problem);
    const t = Math.max(this.clockMs, entry.at);
    if (entry.kind === "minimum_balance") {
      this.advance(t);
      this.minimum = BigInt(entry.minimumBalance);
      return this.applied({ kind: "minimum_balance" }, t);
    }
    const print = fingerprint(entry);
    const prior = this.keys.get(entry.idempotencyKey);
    if (prior !== undefined) {
      if (prior.fingerprint === print) return { ...prior.result, replayed: true };
      return fail(
        conflict("idempotency key already used for a different entry", {
          field: "idempotencyKey",
          idempotencyKey: entry.idempotencyKey,
          kind: prior.result.kind,
        }),
      );
    }
    let result: LedgerApplied | Failure;
    switch (entry.kind) {
      case "credit":
        result = this.credit(entry, t);
        break;
      case "debit":
        result = this.debit(entry, t);
        break;
      case "usage":
        result = this.usage(entry, t);
        break;
      case "hold":
        result = this.hold(entry, t);
        break;
      case "commit":
        result = this.commit(entry, t);
        break;
      case "release":
        result = this.release(entry, t);
        break;
    }
    if (result.ok) this.keys.set(entry.idempotencyKey, { fingerprint: print, result });
    return result;
  }

  /**
   * Whether a debit or hold of `amount` at `at` would be admitted, changing nothing: the engine's
   * check without reserve. `shortfall` is how many more credits it would need (0 when allowed).
   */
  check(amount: number, at: number): { allowed: boolean; available: bigint; shortfall: bigint } {
    assert(Number.isSafeInteger(amount) && amount >= 0, "check amount must be a non-negative safe integer");
    const available = this.availableAt(Math.max(this.clockMs, at));
    const after = available - BigInt(amount);
    return {
      allowed: after >= this.minimum,
      available,
      shortfall: after >= this.minimum ? 0n : this.minimum - after,
    };
  }

  /** The ledger as of `now` (clamped to the clock): expiries and hold TTLs up to then are applied. */
  view(now: number = this.clockMs): LedgerView {
    const t = Math.max(this.clockMs, now);
    const due = this.due(t);
    const expiring = new Set(this.active.slice(0, due.grants));
    const lapsing = new Set(due.holds);
    const balance = this.balance - due.grantAmount;
    const held = this.held - due.holdAmount;
    const available = balance - held;
    return {
      at: t,
      balance,
      available,
      held,
      minimumBalance: this.minimum,
      belowMinimum: available < this.minimum,
      shortfall: available < this.minimum ? this.minimum - available : 0n,
      unallocated: this.unallocated,
      credited: this.credited,
      debited: this.debited,
      expired: this.expired + due.grantAmount,
      grants: this.grants.map((g) => grantView(g, expiring.has(g))),
      holds: [...this.activeHolds.values()].filter((h) => !lapsing.has(h)).map((h) => holdView(h, h.status)),
    };
  }

  /** One hold as of `now` (an active hold past its TTL shows as "expired"). */
  holdAt(holdId: string, now: number = this.clockMs): LedgerHold | undefined {
    const h = this.holds.get(holdId);
    if (h === undefined) return undefined;
    const t = Math.max(this.clockMs, now);
    return holdView(h, h.status === "active" && h.expiresAt <= t ? "expired" : h.status);
  }

  /** Every expiry up to `now`, oldest first: derived from the grants, never stored as entries. */
  expiries(now: number = this.clockMs): LedgerExpiry[] {
    const t = Math.max(this.clockMs, now);
    const out: LedgerExpiry[] = [];
    for (const g of this.grants) {
      if (g.expired > 0) out.push({ grantId: g.id, amount: g.expired, at: g.expiresAt! });
    }
    for (const g of this.active.slice(0, this.due(t).grants)) {
      out.push({ grantId: g.id, amount: g.remaining, at: g.expiresAt! });
    }
    return out.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  /** An independent copy. */
  clone(): Ledger {
    const copy = new Ledger({ minimumBalance: 0 });
    copy.clockMs = this.clockMs;
    copy.minimum = this.minimum;
    copy.balance = this.balance;
    copy.held = this.held;
    copy.unallocated = this.unallocated;
    copy.credited = this.credited;
    copy.debited = this.debited;
    copy.expired = this.expired;
    copy.seq = this.seq;
    const grants = new Map<Grant, Grant>();
    for (const g of this.grants) grants.set(g, { ...g });
    copy.grants = this.grants.map((g) => grants.get(g)!);
    copy.grantById = new Map(copy.grants.map((g) => [g.id, g]));
    copy.active = this.active.map((g) => grants.get(g)!);
    copy.holds = new Map([...this.holds].map(([id, h]) => [id, { ...h }]));
    copy.activeHolds = new Map([...this.activeHolds.keys()].map((id) => [id, copy.holds.get(id)!]));
    copy.keys = new Map(this.keys);
    copy.carries = new Map([...this.carries].map(([rule, c]) => [rule, { ...c }]));
    return copy;
  }

  // ---- entries --------------------------------------------------------------------------------------

  private credit(entry: CreditEntry, t: number): LedgerApplied | Failure {
    const expiresAt = entry.expiresAt ?? null;
    if (expiresAt !== null && expiresAt <= t) {
      return fail(invalid("expiresAt must be after the credit takes effect", { field: "expiresAt", at: t }));
    }
    const grantId = entry.grantId ?? entry.idempotencyKey;
    if (this.grantById.has(grantId)) {
      return fail(conflict(`grant ${grantId} already exists`, { field: "grantId", grantId }));
    }
    this.advance(t);
    const amount = BigInt(entry.amount);
    // An overdraft is paid back first: credits never sit unspent next to a debt.
    const repaid = min(amount, -this.unallocated);
    this.unallocated += repaid;
    const remaining = entry.amount - Number(repaid);
    const grant: Grant = {
      id: grantId,
      seq: this.seq++,
      amount: entry.amount,
      remaining,
      expired: 0,
      repaid: Number(repaid),
      expiresAt,
      priority: entry.priority ?? ledgerBounds.priorityDefault,
      grantedAt: t,
      status: remaining > 0 ? "active" : "spent",
      description: entry.description,
    };
    this.grants.push(grant);
    this.grantById.set(grantId, grant);
    if (remaining > 0) this.active.splice(burnInsertionIndex(this.active, grant), 0, grant);
    this.balance += amount;
    this.credited += amount;
    return this.applied(
      { kind: "credit", grantId, amount: entry.amount, repaid: Number(repaid), remaining },
      t,
    );
  }

  private debit(entry: DebitEntry, t: number): LedgerApplied | Failure {
    const denied = this.admit(entry.amount, t);
    if (denied) return denied;
    this.advance(t);
    const { allocations, overdrawn } = this.burn(entry.amount);
    return this.applied({ kind: "debit", amount: entry.amount, allocations, overdrawn }, t);
  }

  /** Usage charged by a debit rule: never denied (it already happened); fractions carry over. */
  private usage(entry: UsageEntry, t: number): LedgerApplied | Failure {
    const prior = this.carries.get(entry.rule);
    // A rule whose rate changed starts a fresh carry: a fraction at the old rate means nothing at the new.
    const remainder =
      prior && prior.creditsPerUnit === entry.creditsPerUnit && prior.unit === entry.unit
        ? prior.remainder
        : 0n;
    const total = remainder + BigInt(entry.units) * BigInt(entry.creditsPerUnit);
    const amount = total / BigInt(entry.unit);
    if (amount > BigInt(ledgerBounds.amountMax)) {
      return fail(invalid("usage is worth more than 2^53 - 1 credits in one entry", { field: "units" }));
    }
    this.advance(t);
    const carry = total % BigInt(entry.unit);
    this.carries.set(entry.rule, {
      creditsPerUnit: entry.creditsPerUnit,
      unit: entry.unit,
      remainder: carry,
    });
    const { allocations, overdrawn } = this.burn(Number(amount));
    return this.applied(
      {
        kind: "usage",
        rule: entry.rule,
        units: entry.units,
        amount: Number(amount),
        carry,
        allocations,
        overdrawn,
      },
      t,
    );
  }

  private hold(entry: HoldEntry, t: number): LedgerApplied | Failure {
    if (this.holds.has(entry.holdId)) {
      return fail(conflict(`hold ${entry.holdId} already exists`, { field: "holdId", holdId: entry.holdId }));
    }
    if (entry.expiresAt <= t) {
      return fail(invalid("expiresAt must be after the hold takes effect", { field: "expiresAt", at: t }));
    }
    const denied = this.admit(entry.amount, t);
    if (denied) return denied;
    this.advance(t);
    const hold: Hold = {
      id: entry.holdId,
      amount: entry.amount,
      heldAt: t,
      expiresAt: entry.expiresAt,
      status: "active",
    };
    this.holds.set(hold.id, hold);
    this.activeHolds.set(hold.id, hold);
    this.held += BigInt(hold.amount);
    const { holdId, amount, expiresAt } = entry;
    return this.applied({ kind: "hold", holdId, amount, expiresAt }, t);
  }

  /** Real usage that already happened: debited even below the minimum (reported, never denied). */
  private commit(entry: CommitEntry, t: number): LedgerApplied | Failure {
    const hold = this.finishable(entry.holdId, "commit");
    if (hold instanceof TollgateError) return fail(hold);
    if (hold.status === "released") {
      return fail(conflict(`hold ${hold.id} was released`, { field: "holdId", holdId: hold.id }));
    }
    this.advance(t);
    const holdExpired = hold.status === "expired";
    const released = this.close(hold, "committed");
    const { allocations, overdrawn } = this.burn(entry.actualAmount);
    return this.applied(
      {
        kind: "commit",
        holdId: hold.id,
        released,
        holdExpired,
        actualAmount: entry.actualAmount,
        allocations,
        overdrawn,
      },
      t,
    );
  }

  private release(entry: ReleaseEntry, t: number): LedgerApplied | Failure {
    const hold = this.finishable(entry.holdId, "release");
    if (hold instanceof TollgateError) return fail(hold);
    this.advance(t);
    const released = this.close(hold, "released");
    return this.applied({ kind: "release", holdId: hold.id, released }, t);
  }

  // ---- mechanics ------------------------------------------------------------------------------------

  /** The hold a commit or release may finish, or why not (unknown, already committed). */
  private finishable(holdId: string, action: "commit" | "release"): Hold | TollgateError {
    const hold = this.holds.get(holdId);
    if (hold === undefined) return notFound("hold", holdId);
    if (hold.status === "committed") {
      return conflict(`hold ${holdId} was already committed; cannot ${action} it`, {
        field: "holdId",
        holdId,
      });
    }
    return hold;
  }

  /** Ends a hold (the clock is already advanced); returns what it still held. */
  private close(hold: Hold, status: "committed" | "released"): number {
    let released = 0;
    if (hold.status === "active") {
      released = hold.amount;
      this.held -= BigInt(hold.amount);
      this.activeHolds.delete(hold.id);
    }
    hold.status = status;
    return released;
  }

  /** INSUFFICIENT_BALANCE unless `available − amount ≥ minimum` at `t`. */
  private admit(amount: number, t: number): Failure | undefined {
    if (this.trusted) return undefined;
    const available = this.availableAt(t);
    const after = available - BigInt(amount);
    if (after >= this.minimum) return undefined;
    return fail(
      new TollgateError("INSUFFICIENT_BALANCE", "insufficient balance", {
        amount,
        available: ledgerIntegerToJson(available),
        minimumBalance: ledgerIntegerToJson(this.minimum),
        shortfall: ledgerIntegerToJson(this.minimum - after),
      }),
    );
  }

  /** Spends `amount` from the grants in burn order; what they do not cover is overdraft. */
  private burn(amount: number): { allocations: Allocation[]; overdrawn: number } {
    const allocations: Allocation[] = [];
    let rest = amount;
    let spent = 0;
    while (rest > 0 && spent < this.active.length) {
      const grant = this.active[spent]!;
      const take = Math.min(rest, grant.remaining);
      grant.remaining -= take;
      rest -= take;
      allocations.push(Object.freeze({ grantId: grant.id, amount: take }));
      if (grant.remaining > 0) break;
      grant.status = "spent";
      spent++;
    }
    this.active.splice(0, spent);
    this.unallocated -= BigInt(rest);
    this.balance -= BigInt(amount);
    this.debited += BigInt(amount);
    return { allocations, overdrawn: rest };
  }

  private due(t: number): Due {
    let grants = 0;
    let grantAmount = 0n;
    for (const g of this.active) {
      if (g.expiresAt === null || g.expiresAt > t) break;
      grantAmount += BigInt(g.remaining);
      grants++;
    }
    const holds: Hold[] = [];
    let holdAmount = 0n;
    for (const h of this.activeHolds.values()) {
      if (h.expiresAt <= t) {
        holds.push(h);
        holdAmount += BigInt(h.amount);
      }
    }
    return { grants, grantAmount, holds, holdAmount };
  }

  private availableAt(t: number): bigint {
    const due = this.due(t);
    return this.balance - due.grantAmount - (this.held - due.holdAmount);
  }

  /** Moves the clock to `t`: unspent grants whose expiresAt ≤ t expire, holds past their TTL lapse. */
  private advance(t: number): void {
    assert(t >= this.clockMs, "ledger clock runs backwards");
    const due = this.due(t);
    for (const g of this.active.splice(0, due.grants)) {
      g.expired = g.remaining;
      this.expired += BigInt(g.remaining);
      this.balance -= BigInt(g.remaining);
      g.remaining = 0;
      g.status = "expired";
    }
    for (const h of due.holds) {
      h.status = "expired";
      this.held -= BigInt(h.amount);
      this.activeHolds.delete(h.id);
    }
    this.clockMs = t;
  }

  private applied(outcome: LedgerOutcome, t: number): LedgerApplied {
    const available = this.balance - this.held;
    if ("allocations" in outcome) Object.freeze(outcome.allocations);
    return Object.freeze({
      ...outcome,
      ok: true as const,
      replayed: false,
      at: t,
      balance: this.balance,
      available,
      held: this.held,
      minimumBalance: this.minimum,
      belowMinimum: available < this.minimum,
      shortfall: available < this.minimum ? this.minimum - available : 0n,
    });
  }
}

function grantView(g: Grant, expiring: boolean): LedgerGrant {
  const view: LedgerGrant = {
    id: g.id,
    amount: g.amount,
    remaining: expiring ? 0 : g.remaining,
    expired: expiring ? g.remaining : g.expired,
    repaid: g.repaid,
    expiresAt: g.expiresAt,
    priority: g.priority,
    grantedAt: g.grantedAt,
    status: expiring ? "expired" : g.status,
  };
  if (g.description !== undefined) view.description = g.description;
  return view;
}

function holdView(h: Hold, status: HoldStatus): LedgerHold {
  return { id: h.id, amount: h.amount, heldAt: h.heldAt, expiresAt: h.expiresAt, status };
}

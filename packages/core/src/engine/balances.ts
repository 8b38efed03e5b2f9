import { invalid } from "../errors.js";
import { Ledger, ledgerIntegerToJson } from "../ledger/ledger.js";
import type { LedgerApplied, LedgerEntry, LedgerView, UsageEntry } from "../ledger/types.js";
import { meterMatches, meterValue } from "../meter/meter.js";
import type { LedgerLock, Store } from "../ports/store.js";
import { parsePicoUsd } from "../pricing/money.js";
import { formatInstant, parseInstant } from "../time.js";
import type { MeterDef, UsageEvent } from "../types.js";
import { KeyedQueue } from "./keyed-queue.js";
import type { LimitOutcome } from "./limiter.js";

/** A debit rule: recorded usage of a meter becomes credits spent, `creditsPerUnit` per `unit`. */
export interface BalanceRule {
  id: string;
  meter: string;
  creditsPerUnit: number;
  /** Meter units per `creditsPerUnit` credits (for a meter over cost: pico-USD). */
  unit: number;
}

export interface BalanceRuleInput {
  meter: string;
  credits_per_unit: number;
  /** Meter units; for a meter over `cost`, a decimal USD string ("0.001") is accepted. @default 1 */
  unit?: number | string;
}

export interface CreditInput {
  amount: number;
  idempotency_key: string;
  expires_at?: string;
  priority?: number;
  description?: string;
}

export interface DebitInput {
  amount: number;
  idempotency_key: string;
  description?: string;
}

interface Account {
  ledger: Ledger;
  /** Resolves when every entry applied so far is durable: a replayed answer waits for it. */
  durable: Promise<void>;
  /** Shared store: the seq of the last stored entry this ledger has applied. */
  seq: number;
}

interface Loading {
  promise: Promise<Account>;
  /** Usage committed while the log was being read: applied (idempotently) once it is loaded. */
  late: LedgerEntry[];
}

/**
 * Customers' credit balances: one Ledger per customer in memory (replayed from the stored log the
 * first time it is needed), every change appended to the log before it is acknowledged. Admission
 * (a debit or hold below the minimum) is decided by the in-memory ledger in one synchronous step, so
 * concurrent reservations in one process can never overdraw.
 *
 * On a store that several processes share (one with `lockLedger`, PostgreSQL), the ledger in memory
 * is a cache: every admission (a hold, a debit, a credit's idempotency) is decided under the
 * customer's ledger lock, on the ledger caught up with what every process stored, and appended before
 * the lock is let go; reads catch up first. Within a process, a customer's locked sections run one
 * at a time, so that waiting for the lock takes one connection per customer.
 */
export class Balances {
  private readonly accounts = new Map<string, Map<string, Account>>();
  private readonly loading = new Map<string, Loading>();
  /** Shared store: per customer, the locked sections of this process, one at a time. */
  private readonly queue = new KeyedQueue();
  /** Told of every change of a customer's balance (balance.low alerts). */
  onChange: ((workspaceId: string, customer: string, view: LedgerView) => void) | null = null;
  /** Whether other processes write the same ledgers (the store has `lockLedger`). */
  readonly shared: boolean;

  constructor(private readonly store: Store) {
    this.shared = store.lockLedger !== undefined;
  }

  /** The customer's ledger, loaded if needed. */
  async account(workspaceId: string, customer: string): Promise<Account> {
    const hit = this.accounts.get(workspaceId)?.get(customer);
    if (hit) return hit;
    const key = `${workspaceId}\u0000${customer}`;
    let l = this.loading.get(key);
    if (!l) {
      const late: LedgerEntry[] = [];
      const promise = (async () => {
        const ledger = new Ledger();
        let seq = 0;
        if (this.shared) {
          for (const row of await this.entriesAfter(workspaceId, customer, 0)) {
            ledger.restore(row.entry);
            seq = row.seq;
          }
        } else {
          for (const e of await this.store.loadLedger(workspaceId, customer)) ledger.restore(e);
          // Usage that committed during the read may or may not be in it: replays are harmless.
          for (const e of late) ledger.restore(e);
        }
        const account: Account = { ledger, durable: Promise.resolve(), seq };
        let inWs = this.accounts.get(workspaceId);
        if (!inWs) {
          inWs = new Map();
          this.accounts.set(workspaceId, inWs);
        }
        inWs.set(customer, account);
        return account;
      })();
      l = { promise, late };
      this.loading.set(key, l);
      promise.finally(() => this.loading.delete(key)).catch(() => {});
    }
    return l.promise;
  }

  /** Shared store: every stored entry after `after`, in order (paged). */
  private async entriesAfter(workspaceId: string, customer: string, after: number) {
    const out: { seq: number; entry: LedgerEntry }[] = [];
    for (;;) {
      const page = await this.store.listLedger(workspaceId, customer, { after, limit: 10_000 });
      out.push(...page);
      if (page.length < 10_000) return out;
      after = page[page.length - 1]!.seq;
    }
  }

  /** Applies stored entries the ledger has not seen yet (shared store), in stored order. */
  private catchUp(account: Account, rows: { seq: number; entry: LedgerEntry }[]): boolean {
    let changed = false;
    for (const row of rows) {
      if (row.seq <= account.seq) continue;
      account.ledger.restore(row.entry);
      account.seq = row.seq;
      changed = true;
    }
    return changed;
  }

  /** The customer's ledger with everything stored so far (shared store: caught up). */
  private async fresh(workspaceId: string, customer: string): Promise<Account> {
    const account = await this.account(workspaceId, customer);
    if (this.shared && this.catchUp(account, await this.entriesAfter(workspaceId, customer, account.seq)))
      this.changed(workspaceId, customer, account.ledger);
    return account;
  }

  /**
   * Runs `fn` on the customer's ledger under its lock (shared store), caught up first. `fn` appends
   * what it admits with `write`, which commits and lets the lock go; otherwise it is let go after.
   */
  async locked<T>(
    workspaceId: string,
    customer: string,
    fn: (account: Account, write: (entry: LedgerEntry) => Promise<void>) => Promise<T>,
  ): Promise<T> {
    return this.queue.run(`${workspaceId}\u0000${customer}`, async () => {
      const account = await this.account(workspaceId, customer);
      const lock: LedgerLock = await this.store.lockLedger!(workspaceId, customer);
      try {
        if (this.catchUp(account, await lock.since(account.seq)))
          this.changed(workspaceId, customer, account.ledger);
        return await fn(account, async (entry) => {
          try {
            account.seq = await lock.append([entry]);
          } catch (error) {
            this.evict(workspaceId, customer);
            throw error;
          }
          this.changed(workspaceId, customer, account.ledger);
        });
      } finally {
        await lock.release();
      }
    });
  }

  /** The loaded ledger, or undefined (the hot path loads it first with `account`). */
  peek(workspaceId: string, customer: string): Ledger | undefined {
    return this.accounts.get(workspaceId)?.get(customer)?.ledger;
  }

  /** Forgets a customer's ledger (after a failed write): the next use replays the stored log. */
  private evict(workspaceId: string, customer: string): void {
    this.accounts.get(workspaceId)?.delete(customer);
  }

  // ---- writes ----------------------------------------------------------------------------------

  /** Applies an entry and makes it durable; throws the ledger's error (402, 409, 400) otherwise. */
  async apply(workspaceId: string, customer: string, entry: LedgerEntry): Promise<LedgerApplied> {
    if (this.shared) {
      return this.locked(workspaceId, customer, async (account, write) => {
        const result = account.ledger.apply(entry);
        if (!result.ok) throw result.error;
        if (!result.replayed) await write(entry);
        return result;
      });
    }
    const account = await this.account(workspaceId, customer);
    const result = account.ledger.apply(entry);
    if (!result.ok) throw result.error;
    if (result.replayed) {
      await account.durable;
      return result;
    }
    await this.persist(workspaceId, customer, account, entry);
    return result;
  }

  /**
   * Stores an entry the in-memory ledger just applied; answers once it is durable. A failed write
   * drops the ledger from memory, so the next use replays what the store really holds.
   */
  private async persist(workspaceId: string, customer: string, account: Account, entry: LedgerEntry) {
    const write = this.store.appendLedger(workspaceId, customer, [entry]);
    account.durable = write.catch(() => {});
    try {
      await write;
    } catch (error) {
      this.evict(workspaceId, customer);
      throw error;
    }
    this.changed(workspaceId, customer, account.ledger);
  }

  async credit(workspaceId: string, customer: string, input: CreditInput, now: number) {
    const entry: LedgerEntry = {
      kind: "credit",
      idempotencyKey: input.idempotency_key,
      at: now,
      amount: input.amount,
      ...(input.expires_at !== undefined ? { expiresAt: parseInstant(input.expires_at, "expires_at") } : {}),
      ...(input.priority !== undefined ? { priority: input.priority } : {}),
      ...(input.description !== undefined ? { description: input.description } : {}),
    };
    return this.apply(workspaceId, customer, entry);
  }

  async debit(workspaceId: string, customer: string, input: DebitInput, now: number) {
    return this.apply(workspaceId, customer, {
      kind: "debit",
      idempotencyKey: input.idempotency_key,
      at: now,
      amount: input.amount,
      ...(input.description !== undefined ? { description: input.description } : {}),
    });
  }

  async setMinimum(workspaceId: string, customer: string, minimumBalance: number, now: number) {
    return this.apply(workspaceId, customer, { kind: "minimum_balance", at: now, minimumBalance });
  }

  /** Ends a reservation's hold (commit: after its usage was recorded; release; idempotent). */
  async endHold(workspaceId: string, customer: string, holdId: string, now: number): Promise<void> {
    const entry: LedgerEntry = { kind: "release", idempotencyKey: `end/${holdId}`, at: now, holdId };
    if (this.shared) {
      return this.locked(workspaceId, customer, async (account, write) => {
        if (!account.ledger.holdAt(holdId)) return;
        const result = account.ledger.apply(entry);
        if (!result.ok) {
          if (result.error.code === "CONFLICT" || result.error.code === "NOT_FOUND") return;
          throw result.error;
        }
        if (!result.replayed) await write(entry);
      });
    }
    const account = await this.account(workspaceId, customer);
    if (!account.ledger.holdAt(holdId)) return;
    const result = account.ledger.apply(entry);
    if (!result.ok) {
      // Already committed or released by an earlier attempt: nothing to do.
      if (result.error.code === "CONFLICT" || result.error.code === "NOT_FOUND") return;
      throw result.error;
    }
    if (result.replayed) return account.durable;
    await this.persist(workspaceId, customer, account, entry);
  }

  // ---- usage -----------------------------------------------------------------------------------

  /** The usage entries an event gives under the workspace's debit rules (none for other meters). */
  usageEntries(rules: readonly BalanceRule[], meters: Map<string, MeterDef>, event: UsageEvent, now: number) {
    const out: UsageEntry[] = [];
    for (const rule of rules) {
      const meter = meters.get(rule.meter);
      if (!meter || !meterMatches(meter, event)) continue;
      out.push({
        kind: "usage",
        idempotencyKey: `usage/${rule.id}/${event.id}`,
        at: now,
        rule: rule.id,
        units: meterValue(meter, event),
        creditsPerUnit: rule.creditsPerUnit,
        unit: rule.unit,
      });
    }
    return out.length > 0 ? out : undefined;
  }

  /**
   * Usage entries just committed with their events: applied to loaded ledgers (and to ledgers being
   * loaded, idempotently); a ledger not in memory reads them from the store when it loads.
   */
  applyCommitted(workspaceId: string, customer: string, entries: LedgerEntry[]): void {
    if (this.shared) {
      // Read back in stored order (entries of other processes may sit in between), when loaded.
      if (this.accounts.get(workspaceId)?.has(customer))
        this.fresh(workspaceId, customer).catch(() => this.evict(workspaceId, customer));
      return;
    }
    const account = this.accounts.get(workspaceId)?.get(customer);
    if (account) {
      for (const e of entries) account.ledger.restore(e);
      this.changed(workspaceId, customer, account.ledger);
      return;
    }
    const loading = this.loading.get(`${workspaceId}\u0000${customer}`);
    if (loading) loading.late.push(...entries);
  }

  /** Credits an event would cost under the rules, rounded up (a hold never holds too little). */
  estimate(rules: readonly BalanceRule[], meters: Map<string, MeterDef>, event: UsageEvent): number | null {
    let total: bigint | null = null;
    for (const rule of rules) {
      const meter = meters.get(rule.meter);
      if (!meter || !meterMatches(meter, event)) continue;
      const units = BigInt(meterValue(meter, event)) * BigInt(rule.creditsPerUnit);
      const unit = BigInt(rule.unit);
      total = (total ?? 0n) + (units + unit - 1n) / unit;
    }
    if (total === null) return null;
    return total > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(total);
  }

  /**
   * The balance as a check sees it: evaluated (and, reserving, held) inside the limiter's atomic
   * step. The ledger must be loaded (`account`) before.
   */
  gate(
    workspaceId: string,
    customer: string,
    amount: number,
    /** Shared store: the locked section's writer (Balances.locked); the hold is appended through it. */
    write?: (entry: LedgerEntry) => Promise<void>,
  ) {
    const account = this.accounts.get(workspaceId)?.get(customer);
    if (!account) throw new Error("balance gate on a ledger that is not loaded");
    const ledger = account.ledger;
    return {
      evaluate: (t: number): LimitOutcome => {
        const c = ledger.check(amount, t);
        const available = c.available - ledger.minimumBalance;
        return {
          id: "balance",
          kind: "balance",
          enforcement: "hard",
          allowed: c.allowed,
          exceeded: !c.allowed,
          limit: Number(c.available),
          remaining: available > 0n ? Number(available) : 0,
          resetAt: null,
          retryAfterMs: null,
        };
      },
      hold: (holdId: string, t: number, expiresAt: number): Promise<void> => {
        const entry: LedgerEntry = {
          kind: "hold",
          idempotencyKey: `hold/${holdId}`,
          at: t,
          holdId,
          amount,
          expiresAt,
        };
        const result = ledger.apply(entry);
        if (!result.ok) return Promise.reject(result.error);
        if (write) return write(entry);
        return this.persist(workspaceId, customer, account, entry);
      },
    };
  }

  // ---- reads -----------------------------------------------------------------------------------

  async view(workspaceId: string, customer: string, now: number) {
    const account = await this.fresh(workspaceId, customer);
    return presentView(account.ledger.view(now));
  }

  async transactions(workspaceId: string, customer: string, page: { cursor?: string; limit: number }) {
    let after: number | undefined;
    if (page.cursor !== undefined) {
      after = Number(page.cursor);
      if (!/^\d{1,16}$/.test(page.cursor) || !Number.isSafeInteger(after)) {
        throw invalid("cursor is not valid", { field: "cursor" });
      }
    }
    const rows = await this.store.listLedger(workspaceId, customer, { after, limit: page.limit + 1 });
    const data = rows.slice(0, page.limit).map((r) => presentEntry(r.seq, r.entry));
    return {
      data,
      ...(rows.length > page.limit ? { next_cursor: String(rows[page.limit - 1]!.seq) } : {}),
    };
  }

  private changed(workspaceId: string, customer: string, ledger: Ledger): void {
    this.onChange?.(workspaceId, customer, ledger.view());
  }
}

/** Validates a debit rule against the workspace's meters. */
export function toBalanceRule(id: string, input: BalanceRuleInput, meter: MeterDef | undefined): BalanceRule {
  if (!meter) throw invalid(`meter ${input.meter} does not exist`, { field: "meter" });
  if (meter.aggregation !== "sum" && meter.aggregation !== "count") {
    throw invalid("a debit rule charges a sum or count meter", { field: "meter" });
  }
  let unit: number;
  if (typeof input.unit === "string") {
    if (!meter.value.includes("cost")) {
      throw invalid("unit is a number of meter units (a USD string only for a meter over cost)", {
        field: "unit",
      });
    }
    const pico = parsePicoUsd(input.unit, { field: "unit" });
    if (pico < 1n || pico > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw invalid("unit must be from 0.000000000001 to 9007.199254740991 USD", { field: "unit" });
    }
    unit = Number(pico);
  } else {
    unit = input.unit ?? 1;
  }
  if (!Number.isSafeInteger(unit) || unit < 1)
    throw invalid("unit must be a positive integer", { field: "unit" });
  return { id, meter: input.meter, creditsPerUnit: input.credits_per_unit, unit };
}

export function presentView(v: LedgerView) {
  return {
    balance: ledgerIntegerToJson(v.balance),
    available: ledgerIntegerToJson(v.available),
    held: ledgerIntegerToJson(v.held),
    minimum_balance: ledgerIntegerToJson(v.minimumBalance),
    credited: ledgerIntegerToJson(v.credited),
    debited: ledgerIntegerToJson(v.debited),
    expired: ledgerIntegerToJson(v.expired),
    overdraft: ledgerIntegerToJson(v.unallocated < 0n ? -v.unallocated : 0n),
    grants: v.grants.map((g) => ({
      id: g.id,
      amount: g.amount,
      remaining: g.remaining,
      expired: g.expired,
      expires_at: g.expiresAt === null ? null : formatInstant(g.expiresAt),
      priority: g.priority,
      granted_at: formatInstant(g.grantedAt),
      status: g.status,
      ...(g.description !== undefined ? { description: g.description } : {}),
    })),
    holds: v.holds.map((h) => ({
      id: h.id,
      amount: h.amount,
      expires_at: formatInstant(h.expiresAt),
      status: h.status,
    })),
  };
}

function presentEntry(seq: number, e: LedgerEntry) {
  const base = { seq, kind: e.kind, at: formatInstant(e.at) };
  switch (e.kind) {
    case "credit":
      return {
        ...base,
        idempotency_key: e.idempotencyKey,
        amount: e.amount,
        expires_at: e.expiresAt == null ? null : formatInstant(e.expiresAt),
        priority: e.priority ?? 50,
        ...(e.description !== undefined ? { description: e.description } : {}),
      };
    case "debit":
      return {
        ...base,
        idempotency_key: e.idempotencyKey,
        amount: e.amount,
        ...(e.description !== undefined ? { description: e.description } : {}),
      };
    case "usage":
      return {
        ...base,
        idempotency_key: e.idempotencyKey,
        rule: e.rule,
        units: e.units,
        credits_per_unit: e.creditsPerUnit,
        unit: e.unit,
      };
    case "hold":
      return {
        ...base,
        idempotency_key: e.idempotencyKey,
        hold: e.holdId,
        amount: e.amount,
        expires_at: formatInstant(e.expiresAt),
      };
    case "commit":
      return { ...base, idempotency_key: e.idempotencyKey, hold: e.holdId, amount: e.actualAmount };
    case "release":
      return { ...base, idempotency_key: e.idempotencyKey, hold: e.holdId };
    case "minimum_balance":
      return { ...base, minimum_balance: e.minimumBalance };
  }
}

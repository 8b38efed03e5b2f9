import { canonicalJson } from "../canonical.js";
import type { Clock } from "../clock.js";
import { type ErrorCode, notFound, TollgateError } from "../errors.js";
import { meterMatches, meterValue } from "../meter/meter.js";
import { periodWindow } from "../period/index.js";
import type { ReservationRecord, Store } from "../ports/store.js";
import { decideQuota } from "../quota/decide.js";
import type {
  ConcurrencyLimit,
  Enforcement,
  QuotaLimit,
  RateLimit,
  RateScope,
} from "../quota/definitions.js";
import {
  evaluate as evaluateRate,
  type RateLimitConfig,
  RateLimitTable,
  RETRY_NEVER,
} from "../ratelimit/index.js";
import type { MeterDef, UsageEvent } from "../types.js";
import type { CompiledBook, LimitBook, LimitSet } from "./book.js";
import { MinHeap } from "./heap.js";

/** What a check is about: the event the caller expects to record (estimates). */
export interface CheckEvent {
  type: string;
  customer: string;
  values: Record<string, number>;
  dimensions: Record<string, string>;
}

export interface LimitOutcome {
  id: string;
  kind: "quota" | "rate" | "concurrency" | "balance";
  enforcement: Enforcement;
  allowed: boolean;
  /** The request would take usage past the limit (soft: overage; shadow: would have denied). */
  exceeded: boolean;
  limit: number;
  remaining: number;
  used?: number;
  reserved?: number;
  resetAt: number | null;
  retryAfterMs: number | null;
  group?: Record<string, string | null>;
}

export interface CheckResult {
  allowed: boolean;
  code?: ErrorCode;
  limits: LimitOutcome[];
  reservation?: { id: string; expiresAt: number };
}

/** The customer's balance, evaluated and held inside the atomic step (see Balances.gate). */
export interface BalanceGate {
  evaluate(t: number): LimitOutcome;
  hold(holdId: string, t: number, expiresAt: number): Promise<void>;
}

export interface CustomerContext {
  id: string;
  plan: string | null;
  timezone: string;
  billingAnchor: number | null;
  /**
   * The check plan of the limiter that last checked this customer (Limiter.planOf): kept on the
   * context itself, so that a check finds it without a lookup. Opaque outside the limiter.
   */
  checkPlan?: object | undefined;
}

/**
 * Told, after each commit of events, of every quota counter the commit changed (once per limit and
 * group per batch): alerts compute threshold crossings from it, outside the limiter.
 */
export interface UsageObserver {
  onUsage(workspaceId: string, change: UsageChange): void;
}

export interface UsageChange {
  limit: QuotaLimit;
  meter: MeterDef;
  customer: CustomerContext;
  group: Record<string, string | null>;
  groupKey: string;
  /** Usage now in the window of the events; null when the counter is not in memory (see counterUsage). */
  used: number | null;
  /** The calendar window counted; null for rolling periods. */
  window: { start: number; end: number | null } | null;
}

interface CalendarFamily {
  kind: "calendar";
  /** The store snapshot the family was loaded from: later commits add to it, earlier ones are in it. */
  asOfSeq: number;
  start: number;
  end: number | null;
  groups: Map<string, number>;
}
interface RollingFamily {
  kind: "rolling";
  asOfSeq: number;
  windowMs: number;
  bucketMs: number;
  /** group → bucket start → amount */
  groups: Map<string, Map<number, number>>;
}
type Family = CalendarFamily | RollingFamily;

interface QuotaItem {
  limit: QuotaLimit;
  meter: MeterDef;
  familyKey: string;
  /** The loaded family, when it was loaded before the check (else looked up after loading). */
  family?: Family | undefined;
  groupKey: string;
  group: Record<string, string | null>;
  cost: number;
}

/** A customer's limit set under one book, and what its rate limits need (see Limiter.planOf). */
interface CheckPlan {
  /** The limiter whose tables the plan's rate limits point into. */
  limiter: Limiter;
  book: CompiledBook;
  workspaceId: string;
  set: LimitSet;
  rates: RatePlan[];
  /** The set's quotas whose meter exists, each with its counter family as last resolved. */
  quotas: QuotaPlan[];
}
interface QuotaPlan {
  limit: QuotaLimit;
  meter: MeterDef;
  /** The family key and the window it holds for (familyMemoOf); null until the first check. */
  memo: FamilyMemo | null;
  /** families.get(memo.key) when familiesGen was this.familiesGen. */
  family: Family | undefined;
  familiesGen: number;
}
interface RatePlan {
  limit: RateLimit;
  table: RateLimitTable;
  prefix: string;
  /** The subject when it is the customer or the workspace ("*"); null: per event (dimensions.key). */
  subject: string | null;
}
const NO_QUOTAS: QuotaItem[] = [];
const NO_SLOTS: { limit: ConcurrencyLimit; key: string }[] = [];
const NO_GROUP: Record<string, string | null> = Object.freeze({}) as Record<string, string | null>;
const NO_EVENT: Pick<CheckEvent, "dimensions"> = { dimensions: {} };

const ROLLING_BUCKETS = 60;
const FAMILY_MEMOS_PER_CUSTOMER = 16;

interface FamilyMemo {
  limit: QuotaLimit;
  meter: MeterDef;
  workspaceId: string;
  /** The key holds for at in [from, until). */
  from: number;
  until: number;
  key: string;
}
const FAMILIES_MAX = 200_000;

/**
 * Check, reserve, commit, release. The decision math is in quota/decide.ts and ratelimit/; this class
 * keeps the hot state (usage counters, holds, concurrency leases, rate-limit states) in memory and
 * persists reservations, so that quota usage and holds come back exactly after a restart (usage is
 * recomputed from the durable raw events; holds from the stored reservations). Rate-limit windows
 * live in memory only and start empty after a restart.
 *
 * Atomicity: a check evaluates and applies every limit in one synchronous step (no await between
 * evaluating and holding), so in one process no other check can interleave.
 */
export class Limiter {
  private readonly families = new Map<string, Family>();
  /** Changes whenever a family is loaded, replaced or dropped (check plans hold families directly). */
  private familiesGen = 0;
  private readonly loading = new Map<string, Promise<void>>();
  /** hold key (family + group) → amount held by active reservations */
  private readonly held = new Map<string, number>();
  /** lease key → reservation id → when its slot frees itself */
  private readonly leases = new Map<string, Map<string, number>>();
  /**
   * One state table per rate limit's key prefix and configuration (a state only means something under
   * its config), keyed by subject alone: a check finds its state without building a key string, and a
   * key costs its subject's characters only.
   */
  private readonly rateTables = new Map<string, RateLimitTable>();
  private readonly active = new Map<string, { workspaceId: string; record: ReservationRecord }>();
  private readonly expiry = new MinHeap<{ at: number; id: string }>((a, b) => a.at - b.at);
  private readonly committing = new Map<string, Promise<unknown>>();
  /** Per customer context: the family key of each quota, for the window it stays valid (familyKey). */
  private readonly familyMemo = new WeakMap<CustomerContext, FamilyMemo[]>();
  /**
   * Per rate limit (the book's objects, replaced whenever definitions change): its state table and the
   * constant prefix of its keys, so that a check neither serializes the config nor rebuilds the prefix.
   */
  private readonly rateMemo = new WeakMap<
    RateLimit,
    { workspaceId: string; table: RateLimitTable; prefix: string }
  >();
  /** The quotas a check decides when it decides at once (checkIn; reused by every such check). */
  private readonly quotaItems: QuotaItem[] = [];
  /** The rate limits a check evaluated, their subjects and costs (decide; reused by every check). */
  private readonly pendingRates: RatePlan[] = [];
  private readonly pendingSubjects: string[] = [];
  private readonly pendingCosts: number[] = [];
  /** The request a check evaluates its rate limits with (decide sets its cost). */
  private readonly rateRequest = { cost: 0 };

  constructor(
    private readonly store: Store,
    private readonly book: LimitBook,
    private readonly clock: Clock,
    private readonly newId: () => string,
    private readonly observer?: UsageObserver,
  ) {}

  /** Reloads the holds of every active reservation (at start). */
  async restore(): Promise<number> {
    const rows = await this.store.listActiveReservations();
    for (const { workspaceId, reservation } of rows) this.activate(workspaceId, reservation);
    return rows.length;
  }

  // ---- check ------------------------------------------------------------------------------------

  /**
   * Decides a check. Answers synchronously when everything it needs is in memory (the book, the
   * customer's counters) and nothing is reserved; otherwise a promise (loading first, or storing the
   * reservation after). Either way the decision is the one synchronous step of `decide`.
   */
  check(
    workspaceId: string,
    customer: CustomerContext,
    event: CheckEvent,
    reserve: { ttlMs: number } | null,
    balance: BalanceGate | null = null,
  ): CheckResult | Promise<CheckResult> {
    const book = this.book.peek(workspaceId);
    if (book === undefined)
      return this.book
        .get(workspaceId)
        .then((loaded) => this.checkIn(loaded, workspaceId, customer, event, reserve, balance));
    return this.checkIn(book, workspaceId, customer, event, reserve, balance);
  }

  private checkIn(
    book: CompiledBook,
    workspaceId: string,
    customer: CustomerContext,
    event: CheckEvent,
    reserve: { ttlMs: number } | null,
    balance: BalanceGate | null,
  ): CheckResult | Promise<CheckResult> {
    const now = this.clock.now();
    const plan = this.planOf(book, workspaceId, customer, now);
    this.expireDue(now);

    // Resolve what applies, and load the usage counters it needs, before the atomic step. The items
    // are the limiter's own, reused by every check that decides at once (nothing interleaves with a
    // synchronous step); a check that must load first takes copies of its own across the await.
    let quotas: QuotaItem[] = NO_QUOTAS;
    let count = 0;
    let missing = false;
    if (plan.quotas.length > 0) {
      quotas = this.quotaItems;
      for (const qp of plan.quotas) {
        const limit = qp.limit;
        if (!this.quotaApplies(limit, qp.meter, event)) continue;
        let memo = qp.memo;
        if (memo === null || now < memo.from || now >= memo.until) {
          memo = this.familyMemoOf(workspaceId, limit, qp.meter, customer, now);
          qp.memo = memo;
          qp.familiesGen = -1;
        }
        // The family itself, looked up again only when the loaded families changed.
        if (qp.familiesGen !== this.familiesGen) {
          qp.family = this.families.get(memo.key);
          qp.familiesGen = this.familiesGen;
        }
        const grouped = limit.groupBy.length > 0;
        const group = grouped ? groupOf(limit, event.dimensions) : NO_GROUP;
        const groupKey = grouped ? canonicalJson(group) : "{}";
        const cost = meterValue(qp.meter, event as UsageEvent);
        const item = quotas[count];
        if (item === undefined)
          quotas[count] = {
            limit,
            meter: qp.meter,
            familyKey: memo.key,
            family: qp.family,
            group,
            groupKey,
            cost,
          };
        else {
          item.limit = limit;
          item.meter = qp.meter;
          item.familyKey = memo.key;
          item.family = qp.family;
          item.group = group;
          item.groupKey = groupKey;
          item.cost = cost;
        }
        count++;
        if (qp.family === undefined) missing = true;
      }
    }
    if (missing) {
      const own = quotas.slice(0, count).map((q) => ({ ...q }));
      return Promise.all(
        own.map((q) => this.loadFamily(workspaceId, q.limit, q.meter, q.familyKey, customer, now)),
      ).then(() =>
        this.decide(plan, workspaceId, customer, event, reserve, balance, own, own.length, this.clock.now()),
      );
    }
    // Nothing was awaited: the decision is taken at the instant the check began.
    return this.decide(plan, workspaceId, customer, event, reserve, balance, quotas, count, now);
  }

  /**
   * The customer's limit set under this book, with each rate limit's table and key prefix (and, for
   * per-customer and workspace-wide subjects, the whole key): cached per customer context, so that a
   * steady-state check builds no key string and serializes nothing to find its state.
   */
  private planOf(book: CompiledBook, workspaceId: string, customer: CustomerContext, now: number): CheckPlan {
    const hit = customer.checkPlan as CheckPlan | undefined;
    if (
      hit !== undefined &&
      hit.limiter === this &&
      hit.book === book &&
      hit.workspaceId === workspaceId &&
      (hit.set.validUntil === Number.POSITIVE_INFINITY || now < hit.set.validUntil)
    )
      return hit;
    const set = book.effective(customer.id, customer.plan);
    const rates: RatePlan[] = [];
    for (const limit of set.rates) {
      const memo = this.rateMemoOf(workspaceId, limit);
      rates.push({
        limit,
        table: memo.table,
        prefix: memo.prefix,
        subject: limit.subject === "key" ? null : subjectOf(limit, customer.id, NO_EVENT)!,
      });
    }
    const quotas: QuotaPlan[] = [];
    for (const limit of set.quotas) {
      const meter = book.meters.get(limit.meter);
      if (meter) quotas.push({ limit, meter, memo: null, family: undefined, familiesGen: -1 });
    }
    const plan: CheckPlan = { limiter: this, book, workspaceId, set, rates, quotas };
    customer.checkPlan = plan;
    return plan;
  }

  /** The atomic step: evaluate everything, then apply only if every hard limit allows. */
  private decide(
    plan: CheckPlan,
    workspaceId: string,
    customer: CustomerContext,
    event: CheckEvent,
    reserve: { ttlMs: number } | null,
    balance: BalanceGate | null,
    quotas: QuotaItem[],
    /** quotas[0, quotaCount) are this check's. */
    quotaCount: number,
    t: number,
  ): CheckResult | Promise<CheckResult> {
    const outcomes: LimitOutcome[] = [];
    // The first denial's code. (No closure to set it: under tsx, whose keepNames wraps every named
    // closure in a defineProperty call, a closure made per check is expensive.)
    let code: ErrorCode | undefined;

    // Each rate limit evaluated, with its subject and cost: its new state waits in its table
    // (RateLimitTable.evaluate) and is stored only once every hard limit allowed. The lists are the
    // limiter's own, reused by every check (this step is synchronous: no other check interleaves).
    const rates = this.pendingRates;
    const subjects = this.pendingSubjects;
    const costs = this.pendingCosts;
    let pending = 0; // entries [0, pending) are this check's (not truncated: setting length costs)
    const request = this.rateRequest;
    for (const r of plan.rates) {
      const limit = r.limit;
      if (limit.eventType !== null && limit.eventType !== event.type) continue;
      const subject = r.subject ?? event.dimensions.key;
      if (subject === undefined) continue;
      const cost = limit.value ? (event.values[limit.value] ?? 0) : 1;
      request.cost = cost;
      const d = r.table.evaluate(subject, request, t).decision;
      const allowed = d.allowed || limit.enforcement !== "hard";
      if (!allowed) code ??= "RATE_LIMIT_EXCEEDED";
      outcomes.push({
        id: limit.id,
        kind: "rate",
        enforcement: limit.enforcement,
        allowed,
        exceeded: !d.allowed,
        limit: d.limit,
        remaining: d.remaining,
        resetAt: d.resetAt,
        retryAfterMs: d.allowed ? null : d.retryAfterMs === RETRY_NEVER ? null : d.retryAfterMs,
      });
      rates[pending] = r;
      subjects[pending] = subject;
      costs[pending] = cost;
      pending++;
    }

    let slots: { limit: ConcurrencyLimit; key: string }[] = NO_SLOTS;
    if (plan.set.concurrency.length > 0) {
      slots = [];
      for (const c of plan.set.concurrency) {
        if (c.eventType !== null && c.eventType !== event.type) continue;
        const key = subjectKey(workspaceId, "cc", c, customer.id, event);
        if (key !== null) slots.push({ limit: c, key });
      }
    }
    for (const { limit, key } of slots) {
      const inUse = this.liveLeases(key, t);
      const exceeded = inUse >= limit.max;
      const allowed = !exceeded || limit.enforcement !== "hard";
      if (!allowed) code ??= "CONCURRENCY_LIMIT_EXCEEDED";
      outcomes.push({
        id: limit.id,
        kind: "concurrency",
        enforcement: limit.enforcement,
        allowed,
        exceeded,
        limit: limit.max,
        used: inUse,
        remaining: Math.max(0, limit.max - inUse - (reserve && !exceeded ? 1 : 0)),
        resetAt: null,
        retryAfterMs: exceeded ? this.earliestLeaseEnd(key, t) : null,
      });
    }

    for (let i = 0; i < quotaCount; i++) {
      const q = quotas[i]!;
      const family = q.family ?? this.families.get(q.familyKey)!;
      const used = usedOf(family, q.groupKey, t);
      const heldNow = this.held.size === 0 ? 0 : (this.held.get(holdKey(q.familyKey, q.groupKey)) ?? 0);
      const d = decideQuota({ amount: q.limit.amount, used, held: heldNow }, q.cost, q.limit.enforcement);
      if (!d.allowed) code ??= "LIMIT_EXCEEDED";
      const resetAt = family.kind === "calendar" ? family.end : t + family.windowMs;
      const outcome: LimitOutcome = {
        id: q.limit.id,
        kind: "quota",
        enforcement: q.limit.enforcement,
        allowed: d.allowed,
        exceeded: d.exceeded,
        limit: q.limit.amount,
        used,
        reserved: heldNow,
        remaining: d.remaining,
        resetAt,
        retryAfterMs: d.exceeded ? quotaRetryAfter(family, q, heldNow, t) : null,
      };
      if (q.limit.groupBy.length) outcome.group = q.group;
      outcomes.push(outcome);
    }

    if (balance) {
      const b = balance.evaluate(t);
      if (!b.allowed) code ??= "INSUFFICIENT_BALANCE";
      outcomes.push(b);
    }

    const allowed = code === undefined;
    if (!allowed) return { allowed, code, limits: outcomes };

    for (let i = 0; i < pending; i++) rates[i]!.table.commit(subjects[i]!);
    if (!reserve) return { allowed, limits: outcomes };

    const rateCharges: ReservationRecord["rateCharges"] = [];
    for (let i = 0; i < pending; i++) {
      const r = rates[i]!;
      if (r.limit.value !== null)
        rateCharges.push({
          // The same key as before tables were per prefix (subjectKey), and its subject.
          key: r.prefix + subjects[i]!,
          subject: subjects[i]!,
          value: r.limit.value,
          cost: costs[i]!,
          config: rateConfig(r.limit),
        });
    }
    const record: ReservationRecord = {
      id: this.newId(),
      state: "active",
      customer: customer.id,
      event: { type: event.type, values: event.values, dimensions: event.dimensions },
      holds: distinctHolds(quotas, quotaCount),
      leases: slots.map((s) => ({ key: s.key, expiresAt: t + Math.min(reserve.ttlMs, s.limit.leaseTtlMs) })),
      rateCharges,
      createdAt: t,
      expiresAt: t + reserve.ttlMs,
    };
    if (balance) record.balanceHold = true;
    this.activate(workspaceId, record);
    return this.keep(workspaceId, record, balance, t, {
      allowed,
      limits: outcomes,
      reservation: { id: record.id, expiresAt: record.expiresAt },
    });
  }

  /** Stores an admitted reservation (and its balance hold); undone if that fails. */
  private async keep(
    workspaceId: string,
    record: ReservationRecord,
    balance: BalanceGate | null,
    t: number,
    result: CheckResult,
  ): Promise<CheckResult> {
    try {
      await Promise.all([
        this.store.saveReservation(workspaceId, record),
        balance?.hold(record.id, t, record.expiresAt),
      ]);
    } catch (error) {
      this.deactivate(record);
      throw error;
    }
    return result;
  }

  // ---- commit / release -------------------------------------------------------------------------

  /**
   * Finishes a reservation once: `record` stores the actual event (and with it the usage); the hold
   * is released only after that, so at no instant is the usage counted by neither. A retried commit
   * gets the first answer.
   */
  async commit<T>(workspaceId: string, id: string, record: (r: ReservationRecord) => Promise<T>): Promise<T> {
    const inflight = this.committing.get(id);
    if (inflight) return (await inflight) as T;
    const work = (async () => {
      const r = await this.reservation(workspaceId, id);
      if (r.state === "committed") return r.result as T;
      if (r.state === "released")
        throw new TollgateError("CONFLICT", `reservation ${id} was released`, { id });
      const result = await record(r);
      const finished: ReservationRecord = { ...r, state: "committed", result };
      this.deactivate(r);
      await this.store.saveReservation(workspaceId, finished);
      return result;
    })();
    this.committing.set(id, work);
    try {
      return await work;
    } finally {
      this.committing.delete(id);
    }
  }

  /** Reconciles value-based rate limits with the actual amounts (applied even past the limit). */
  reconcileRates(r: ReservationRecord, actual: Record<string, number>): void {
    const now = this.clock.now();
    for (const charge of r.rateCharges) {
      const delta = (actual[charge.value] ?? 0) - charge.cost;
      if (delta === 0) continue;
      const { prefix, subject } = splitRateKey(charge);
      const table = this.rateTable(charge.config as ReturnType<typeof rateConfig>, prefix);
      const res = evaluateRate(table.config, table.get(subject), { cost: delta, force: true }, now);
      table.set(subject, res.state);
    }
  }

  async release(workspaceId: string, id: string): Promise<ReservationRecord> {
    const r = await this.reservation(workspaceId, id);
    if (r.state === "committed")
      throw new TollgateError("CONFLICT", `reservation ${id} was committed`, { id });
    if (r.state !== "active") return r;
    const released: ReservationRecord = { ...r, state: "released" };
    this.deactivate(r);
    await this.store.saveReservation(workspaceId, released);
    return released;
  }

  async getReservation(workspaceId: string, id: string): Promise<ReservationRecord> {
    return this.reservation(workspaceId, id);
  }

  private async reservation(workspaceId: string, id: string): Promise<ReservationRecord> {
    this.expireDue(this.clock.now());
    const live = this.active.get(id);
    if (live && live.workspaceId === workspaceId) return live.record;
    const stored = await this.store.getReservation(workspaceId, id);
    if (!stored) throw notFound("reservation", id);
    return stored;
  }

  // ---- recording usage ---------------------------------------------------------------------------

  /**
   * Prepares counter increments for a batch about to be stored; the returned function applies them
   * for the events the store newly inserted, synchronously after the commit.
   */
  async prepareIncrements(
    workspaceId: string,
    events: UsageEvent[],
    customers: (id: string) => Promise<CustomerContext>,
  ): Promise<(inserted: number[], commitSeq: number) => void> {
    const book = await this.book.get(workspaceId);
    const contexts = new Map<string, CustomerContext>();
    for (const e of events)
      if (!contexts.has(e.customer)) contexts.set(e.customer, await customers(e.customer));
    return (inserted, commitSeq) =>
      this.applyIncrements(workspaceId, book, events, contexts, inserted, commitSeq);
  }

  /**
   * Counts recorded events in the quota counters in memory and tells the observer of every counter
   * that changed (once per limit and group per batch): what prepareIncrements' function does after a
   * commit, for the events at the indices `inserted` (null: every event). `contexts` has each
   * event's customer. Synchronous; the simulation's direct recording calls it as well.
   */
  applyIncrements(
    workspaceId: string,
    book: CompiledBook,
    events: readonly UsageEvent[],
    contexts: ReadonlyMap<string, CustomerContext>,
    inserted: readonly number[] | null,
    commitSeq: number,
  ): void {
    // limit → family and group → what the observer is told once the batch is counted
    const touched = this.observer ? new Map<QuotaLimit, Map<string, Map<string, TouchedChange>>>() : null;
    const counted = this.counted;
    const n = inserted === null ? events.length : inserted.length;
    for (let k = 0; k < n; k++) {
      const e = events[inserted === null ? k : inserted[k]!]!;
      const customer = contexts.get(e.customer)!;
      // Limits over the same meter, filter, grouping, period and subject share one family: count
      // the event in it once, however many of them there are.
      counted.length = 0;
      const quotas = this.planOf(book, workspaceId, customer, this.clock.now()).quotas;
      for (let j = 0; j < quotas.length; j++) {
        const qp = quotas[j]!;
        const limit = qp.limit;
        const meter = qp.meter;
        if (!this.quotaApplies(limit, meter, e)) continue;
        // The check plan's family (and its key) when the event is in the window it was resolved for.
        let memo = qp.memo;
        let family: Family | undefined;
        if (memo !== null && memo.from <= e.timestamp && e.timestamp < memo.until) {
          if (qp.familiesGen !== this.familiesGen) {
            qp.family = this.families.get(memo.key);
            qp.familiesGen = this.familiesGen;
          }
          family = qp.family;
        } else {
          memo = this.familyMemoOf(workspaceId, limit, meter, customer, e.timestamp);
          family = this.families.get(memo.key);
        }
        const familyKey = memo.key;
        if (touched) noteTouched(touched, limit, meter, customer, familyKey, e.dimensions);
        if (counted.includes(familyKey)) continue;
        counted.push(familyKey);
        // Not loaded: a later load reads this event from the store. Loaded from a snapshot that
        // already holds this commit: counted there.
        if (!family || family.asOfSeq >= commitSeq) continue;
        const groupKey = limit.groupBy.length === 0 ? "{}" : canonicalJson(groupOf(limit, e.dimensions));
        addUsage(family, groupKey, e.timestamp, meterValue(meter, e));
      }
    }
    counted.length = 0;
    if (touched) this.tellObserver(workspaceId, touched);
  }

  /** applyIncrements' scratch list of the families an event was counted in. */
  private readonly counted: string[] = [];

  private tellObserver(
    workspaceId: string,
    touched: Map<QuotaLimit, Map<string, Map<string, TouchedChange>>>,
  ): void {
    const now = this.clock.now();
    for (const families of touched.values()) {
      for (const groups of families.values()) {
        for (const { familyKey, change } of groups.values()) {
          const family = this.families.get(familyKey);
          if (family) {
            change.used = usedOf(family, change.groupKey, now);
            change.window = family.kind === "calendar" ? { start: family.start, end: family.end } : null;
          }
          this.observer!.onUsage(workspaceId, change);
        }
      }
    }
  }

  /**
   * The current usage of one quota counter, loading it from the store if it is not in memory (for
   * alerts, off the hot path), and its calendar window (null for rolling periods).
   */
  async counterUsage(
    workspaceId: string,
    customer: CustomerContext,
    limit: QuotaLimit,
    meter: MeterDef,
    groupKey: string,
  ): Promise<{ used: number; window: { start: number; end: number | null } | null }> {
    const now = this.clock.now();
    const familyKey = this.familyKey(workspaceId, limit, meter, customer, now);
    await this.loadFamily(workspaceId, limit, meter, familyKey, customer, now);
    const family = this.families.get(familyKey)!;
    return {
      used: usedOf(family, groupKey, now),
      window: family.kind === "calendar" ? { start: family.start, end: family.end } : null,
    };
  }

  // ---- state for GET /customers/{id}/limits ------------------------------------------------------

  async quotaUsage(
    workspaceId: string,
    customer: CustomerContext,
    limit: QuotaLimit,
    meter: MeterDef,
  ): Promise<
    { group: Record<string, string | null>; used: number; reserved: number; resetAt: number | null }[]
  > {
    const now = this.clock.now();
    this.expireDue(now);
    const familyKey = this.familyKey(workspaceId, limit, meter, customer, now);
    await this.loadFamily(workspaceId, limit, meter, familyKey, customer, now);
    const family = this.families.get(familyKey)!;
    const groups = new Set<string>(family.groups.keys());
    const prefix = `${familyKey}\u0002`;
    for (const k of this.held.keys()) if (k.startsWith(prefix)) groups.add(k.slice(prefix.length));
    if (groups.size === 0) groups.add(canonicalJson(groupOf(limit, {})));
    const resetAt = family.kind === "calendar" ? family.end : now + family.windowMs;
    return [...groups].sort().map((g) => ({
      group: JSON.parse(g) as Record<string, string | null>,
      used: usedOf(family, g, now),
      reserved: this.held.get(holdKey(familyKey, g)) ?? 0,
      resetAt,
    }));
  }

  concurrencyInUse(workspaceId: string, limit: ConcurrencyLimit, customerId: string): number {
    const key = subjectKey(workspaceId, "cc", limit, customerId, { dimensions: {} } as CheckEvent);
    return key ? this.liveLeases(key, this.clock.now()) : 0;
  }

  rateState(workspaceId: string, limit: RateLimit, customerId: string) {
    const subject = subjectOf(limit, customerId, NO_EVENT);
    if (subject === undefined) return null;
    const { table } = this.rateMemoOf(workspaceId, limit);
    return evaluateRate(table.config, table.get(subject), { cost: 0 }, this.clock.now()).decision;
  }

  // ---- expiry ------------------------------------------------------------------------------------

  /** Frees the holds of reservations whose TTL has passed. Called on every check and by a timer. */
  expireDue(now: number): number {
    let n = 0;
    for (;;) {
      const top = this.expiry.peek();
      if (!top || top.at > now) return n;
      this.expiry.pop();
      const live = this.active.get(top.id);
      if (!live || live.record.expiresAt !== top.at) continue;
      const expired: ReservationRecord = { ...live.record, state: "expired" };
      this.deactivate(live.record);
      n++;
      // A crash before this is stored is harmless: at restart the reservation is past its TTL anyway.
      this.store.saveReservation(live.workspaceId, expired).catch(() => {});
    }
  }

  activeReservations(): number {
    return this.active.size;
  }

  /**
   * Drops the workspace's loaded quota counters: the next check reloads them from the store (after
   * stored events were changed in place, e.g. repriced). Holds stay.
   */
  forgetFamilies(workspaceId: string): void {
    const prefix = `${workspaceId}\u0001`;
    for (const key of this.families.keys()) if (key.startsWith(prefix)) this.families.delete(key);
    this.familiesGen++;
  }

  sweep(now: number): void {
    this.expireDue(now);
    for (const table of this.rateTables.values()) table.sweep(now);
    if (this.families.size > FAMILIES_MAX) this.evictFamilies(now);
  }

  // ---- internals ---------------------------------------------------------------------------------

  private rateMemoOf(workspaceId: string, limit: RateLimit) {
    let memo = this.rateMemo.get(limit);
    if (memo === undefined || memo.workspaceId !== workspaceId) {
      // Flattened once (a template literal gives a rope).
      const prefix = flat(keyPrefix(workspaceId, "rate", limit));
      memo = { workspaceId, table: this.rateTable(rateConfig(limit), prefix), prefix };
      this.rateMemo.set(limit, memo);
    }
    return memo;
  }

  private rateTable(config: ReturnType<typeof rateConfig>, prefix: string): RateLimitTable {
    const key = `${canonicalJson(config)}\u0003${prefix}`;
    let table = this.rateTables.get(key);
    if (!table) {
      // A table per limit and workspace: start small (the slab doubles as keys come).
      table = new RateLimitTable(config, { initialCapacity: 16 });
      this.rateTables.set(key, table);
    }
    return table;
  }

  private activate(workspaceId: string, r: ReservationRecord): void {
    this.active.set(r.id, { workspaceId, record: r });
    for (const h of r.holds) this.held.set(h.key, (this.held.get(h.key) ?? 0) + h.amount);
    for (const l of r.leases) {
      let slots = this.leases.get(l.key);
      if (!slots) {
        slots = new Map();
        this.leases.set(l.key, slots);
      }
      slots.set(r.id, Math.min(l.expiresAt, r.expiresAt));
    }
    this.expiry.push({ at: r.expiresAt, id: r.id });
  }

  private deactivate(r: ReservationRecord): void {
    if (!this.active.delete(r.id)) return;
    for (const h of r.holds) {
      const left = (this.held.get(h.key) ?? 0) - h.amount;
      if (left > 0) this.held.set(h.key, left);
      else this.held.delete(h.key);
    }
    for (const l of r.leases) {
      const slots = this.leases.get(l.key);
      slots?.delete(r.id);
      if (slots?.size === 0) this.leases.delete(l.key);
    }
  }

  /** Slots in use at `now`: a lease past its lease_ttl frees its slot even while its reservation lives. */
  private liveLeases(key: string, now: number): number {
    const slots = this.leases.get(key);
    if (!slots) return 0;
    for (const [id, until] of slots) if (until <= now) slots.delete(id);
    if (slots.size === 0) this.leases.delete(key);
    return slots.size;
  }

  private earliestLeaseEnd(key: string, now: number): number | null {
    let best: number | null = null;
    for (const until of this.leases.get(key)?.values() ?? []) if (best === null || until < best) best = until;
    return best === null ? null : Math.max(0, best - now);
  }

  private quotaApplies(
    limit: QuotaLimit,
    meter: MeterDef,
    event: Pick<UsageEvent, "type" | "dimensions">,
  ): boolean {
    if (!meterMatches(meter, event as UsageEvent)) return false;
    for (const k in limit.filter) if (event.dimensions[k] !== limit.filter[k]) return false;
    return true;
  }

  private familyKey(
    workspaceId: string,
    limit: QuotaLimit,
    meter: MeterDef,
    customer: CustomerContext,
    at: number,
  ): string {
    return this.familyMemoOf(workspaceId, limit, meter, customer, at).key;
  }

  /** The family key of a quota at `at`, with the window [from, until) it holds for. */
  private familyMemoOf(
    workspaceId: string,
    limit: QuotaLimit,
    meter: MeterDef,
    customer: CustomerContext,
    at: number,
  ): FamilyMemo {
    // Memoized per customer context and limit while `at` stays in the window: a check then reuses
    // one string (whose hash V8 keeps) instead of serializing the identity, computing the window
    // and hashing a fresh concatenation for every Map lookup.
    let memos = this.familyMemo.get(customer);
    if (memos !== undefined) {
      for (const m of memos) {
        if (m.limit !== limit) continue;
        if (m.meter === meter && m.workspaceId === workspaceId && m.from <= at && at < m.until) return m;
        break;
      }
    } else {
      memos = [];
      this.familyMemo.set(customer, memos);
    }
    const subject = limit.scope.kind === "workspace" ? "*" : customer.id;
    // The meter's definition is part of the identity: redefining a meter starts counters that count
    // by the new definition (reloaded from the raw events) instead of adding to the old ones.
    const identity = canonicalJson([meterIdentity(meter), limit.filter, limit.groupBy, limit.period]);
    let memo: FamilyMemo;
    if (typeof limit.period === "object") {
      const key = `${workspaceId}\u0001${identity}\u0001${subject}\u0001r`;
      memo = { limit, meter, workspaceId, from: -Infinity, until: Infinity, key };
    } else {
      const zone = limit.scope.kind === "workspace" ? "UTC" : customer.timezone;
      const anchor = limit.scope.kind === "workspace" ? null : customer.billingAnchor;
      const w = periodWindow(limit.period, at, { timezone: zone, billingAnchor: anchor });
      const key = `${workspaceId}\u0001${identity}\u0001${subject}\u0001${w.start}\u0001${w.end ?? ""}`;
      // Calendar windows are half-open [start, end); all_time has no end.
      memo = { limit, meter, workspaceId, from: w.start, until: w.end ?? Infinity, key };
    }
    const i = memos.findIndex((m) => m.limit === limit);
    if (i >= 0) memos[i] = memo;
    else if (memos.length < FAMILY_MEMOS_PER_CUSTOMER) memos.push(memo);
    else memos.splice(0, memos.length, memo); // limits of older books linger: start over
    return memo;
  }

  private async loadFamily(
    workspaceId: string,
    limit: QuotaLimit,
    meter: MeterDef,
    familyKey: string,
    customer: CustomerContext,
    now: number,
  ): Promise<void> {
    if (this.families.has(familyKey)) return;
    let pending = this.loading.get(familyKey);
    if (!pending) {
      pending = this.scanFamily(workspaceId, limit, meter, familyKey, customer, now).finally(() =>
        this.loading.delete(familyKey),
      );
      this.loading.set(familyKey, pending);
    }
    await pending;
  }

  private async scanFamily(
    workspaceId: string,
    limit: QuotaLimit,
    meter: MeterDef,
    familyKey: string,
    customer: CustomerContext,
    now: number,
  ): Promise<void> {
    let family: Family;
    let from: number | undefined;
    let to: number | undefined;
    if (typeof limit.period === "object") {
      const windowMs = limit.period.rolling_seconds * 1000;
      const bucketMs = Math.max(1000, Math.ceil(windowMs / ROLLING_BUCKETS / 1000) * 1000);
      family = { kind: "rolling", asOfSeq: 0, windowMs, bucketMs, groups: new Map() };
      from = Math.floor((now - windowMs) / bucketMs) * bucketMs;
    } else {
      const parts = familyKey.split("\u0001");
      const start = Number(parts[3]);
      const end = parts[4] === "" ? null : Number(parts[4]);
      family = { kind: "calendar", asOfSeq: 0, start, end, groups: new Map() };
      from = limit.period === "all_time" ? undefined : start;
      to = end ?? undefined;
    }
    const subject = limit.scope.kind === "workspace" ? undefined : customer.id;
    const scanned: Family = family;
    // Raw events, and for the hours a retention purge deleted, the hourly rollups (keyed by
    // dimensions, so meter filters, limit filters and group_by apply to them exactly; not `run`).
    const { asOfSeq } = await this.store.scanUsage(
      workspaceId,
      { types: [meter.eventType], customer: subject, from, to },
      (e) => {
        if (!this.quotaApplies(limit, meter, e)) return;
        addUsage(scanned, canonicalJson(groupOf(limit, e.dimensions)), e.timestamp, meterValue(meter, e));
      },
      (r) => {
        if (!this.quotaApplies(limit, meter, r)) return;
        const amount =
          meter.aggregation === "count" ? r.events : meterValue(meter, r as unknown as UsageEvent);
        addUsage(scanned, canonicalJson(groupOf(limit, r.dimensions)), r.bucket, amount);
      },
    );
    // The scan's snapshot may already hold commits whose afterCommit has not run yet (the writer
    // thread commits before the main thread hears of it): prepareIncrements skips commits up to
    // asOfSeq, so each event is counted exactly once. A concurrent load of the same family was
    // single-flighted.
    family.asOfSeq = asOfSeq;
    this.families.set(familyKey, family);
    this.familiesGen++;
  }

  private evictFamilies(now: number): void {
    for (const [key, f] of this.families) {
      if (f.kind === "calendar" && f.end !== null && f.end < now) this.families.delete(key);
    }
    if (this.families.size > FAMILIES_MAX) this.families.clear();
    this.familiesGen++;
  }
}

function rateConfig(limit: RateLimit): RateLimitConfig {
  return {
    algorithm: limit.algorithm,
    limit: limit.limit,
    windowMs: limit.windowMs,
    ...(limit.burst !== null ? { burst: limit.burst } : {}),
  };
}

function subjectOf(
  limit: { subject: RateScope },
  customerId: string,
  event: Pick<CheckEvent, "dimensions">,
): string | undefined {
  return limit.subject === "key" ? event.dimensions.key : limit.subject === "customer" ? customerId : "*";
}

/** The same characters as a flat (sequential) string rather than a concatenation rope. */
function flat(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

function subjectKey(
  workspaceId: string,
  prefix: string,
  limit: { id: string; subject: RateScope; scope: QuotaLimit["scope"] },
  customerId: string,
  event: Pick<CheckEvent, "dimensions">,
): string | null {
  const subject = subjectOf(limit, customerId, event);
  if (subject === undefined) return null;
  return `${keyPrefix(workspaceId, prefix, limit)}${subject}`;
}

/**
 * A rate charge's table prefix and subject: its key is prefix + subject. Charges stored before
 * `subject` was recorded are split after the prefix's fifth separator.
 */
function splitRateKey(charge: { key: string; subject?: string }): { prefix: string; subject: string } {
  const { key, subject } = charge;
  if (subject !== undefined && key.endsWith(subject))
    return { prefix: key.slice(0, key.length - subject.length), subject };
  let at = -1;
  for (let i = 0; i < 5; i++) {
    const next = key.indexOf("\u0001", at + 1);
    if (next < 0) break;
    at = next;
  }
  return { prefix: key.slice(0, at + 1), subject: key.slice(at + 1) };
}

function keyPrefix(
  workspaceId: string,
  prefix: string,
  limit: { id: string; subject: RateScope; scope: QuotaLimit["scope"] },
): string {
  const scope = limit.scope.kind === "workspace" ? "ws" : limit.scope.kind;
  return `${workspaceId}\u0001${prefix}\u0001${scope}\u0001${limit.id}\u0001${limit.subject}\u0001`;
}

/** A counter a batch changed, with its family's key (not the observer's business). */
interface TouchedChange {
  familyKey: string;
  change: UsageChange;
}

function noteTouched(
  touched: Map<QuotaLimit, Map<string, Map<string, TouchedChange>>>,
  limit: QuotaLimit,
  meter: MeterDef,
  customer: CustomerContext,
  familyKey: string,
  dimensions: Record<string, string>,
): void {
  const group = limit.groupBy.length === 0 ? null : groupOf(limit, dimensions);
  const groupKey = group === null ? "{}" : canonicalJson(group);
  let changes = touched.get(limit);
  if (!changes) {
    changes = new Map();
    touched.set(limit, changes);
  }
  // Keyed by family then group (nested): no key string is built per event.
  let groups = changes.get(familyKey);
  if (!groups) {
    groups = new Map();
    changes.set(familyKey, groups);
  }
  if (!groups.has(groupKey))
    groups.set(groupKey, {
      familyKey,
      change: { limit, meter, customer, group: group ?? {}, groupKey, used: null, window: null },
    });
}

function groupOf(limit: QuotaLimit, dimensions: Record<string, string>): Record<string, string | null> {
  const g: Record<string, string | null> = {};
  for (const d of limit.groupBy) g[d] = dimensions[d] ?? null;
  return g;
}

const meterIdentities = new WeakMap<MeterDef, string>();

/** What a meter counts (cached per definition object; the limit book reloads definitions on change). */
function meterIdentity(meter: MeterDef): string {
  let id = meterIdentities.get(meter);
  if (id === undefined) {
    id = canonicalJson([meter.id, meter.eventType, meter.aggregation, meter.value, meter.filter]);
    meterIdentities.set(meter, id);
  }
  return id;
}

const holdKey = (familyKey: string, groupKey: string) => `${familyKey}\u0002${groupKey}`;

/** One hold per counter: limits that share a family (and group) share the usage a hold stands for. */
function distinctHolds(quotas: QuotaItem[], count: number): { key: string; amount: number }[] {
  const holds = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const q = quotas[i]!;
    if (q.cost > 0) holds.set(holdKey(q.familyKey, q.groupKey), q.cost);
  }
  return [...holds].map(([key, amount]) => ({ key, amount }));
}

function addUsage(family: Family, groupKey: string, at: number, amount: number): void {
  if (family.kind === "calendar") {
    family.groups.set(groupKey, (family.groups.get(groupKey) ?? 0) + amount);
    return;
  }
  let buckets = family.groups.get(groupKey);
  if (!buckets) {
    buckets = new Map();
    family.groups.set(groupKey, buckets);
  }
  const b = Math.floor(at / family.bucketMs) * family.bucketMs;
  buckets.set(b, (buckets.get(b) ?? 0) + amount);
}

/** Usage in the window at `now`. Rolling windows count every bucket that overlaps (now - window, now]. */
function usedOf(family: Family, groupKey: string, now: number): number {
  if (family.kind === "calendar") return family.groups.get(groupKey) ?? 0;
  const buckets = family.groups.get(groupKey);
  if (!buckets) return 0;
  let total = 0;
  for (const [start, amount] of buckets) {
    if (start + family.bucketMs > now - family.windowMs) total += amount;
    else buckets.delete(start);
  }
  return total;
}

function quotaRetryAfter(family: Family, q: QuotaItem, held: number, now: number): number | null {
  if (q.limit.enforcement !== "hard") return null;
  if (family.kind === "calendar") return family.end === null ? null : family.end - now;
  // Rolling: the earliest instant at which enough old buckets have aged out for this request to fit.
  const buckets = [...(family.groups.get(q.groupKey) ?? new Map<number, number>()).entries()].sort(
    (a, b) => a[0] - b[0],
  );
  let used = buckets.reduce((s, [, v]) => s + v, 0);
  for (const [start, amount] of buckets) {
    used -= amount;
    const fits = q.cost === 0 ? used + held < q.limit.amount : used + held + q.cost <= q.limit.amount;
    if (fits) return Math.max(0, start + family.bucketMs + family.windowMs - now);
  }
  return null;
}

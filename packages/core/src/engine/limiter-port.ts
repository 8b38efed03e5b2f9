import type { Clock } from "../clock.js";
import type { ReservationRecord, Store } from "../ports/store.js";
import type { ConcurrencyLimit, QuotaLimit, RateLimit } from "../quota/definitions.js";
import type { RateLimitDecision } from "../ratelimit/index.js";
import type { MeterDef, UsageEvent } from "../types.js";
import type { LimitBook } from "./book.js";
import type { BalanceGate, CheckEvent, CheckResult, CustomerContext, UsageObserver } from "./limiter.js";

/**
 * What the Engine (and the server's sweeper and routes) use of a limiter: the in-memory Limiter of one
 * process (engine/limiter.ts, the default), or a shared one whose hot state lives in Redis
 * (@tollgate/store-redis) for several processes. The decisions are core's either way.
 */
export interface LimiterPort {
  /** Brings back what active reservations hold (at start). Returns how many. */
  restore(): Promise<number>;
  /**
   * Decides a check in one atomic step. May answer synchronously (the in-memory Limiter does when
   * everything is loaded and nothing is reserved): callers await the result either way.
   */
  check(
    workspaceId: string,
    customer: CustomerContext,
    event: CheckEvent,
    reserve: { ttlMs: number } | null,
    balance?: BalanceGate | null,
  ): CheckResult | Promise<CheckResult>;
  /** Finishes a reservation once (`record` stores the actual event); a retried commit gets the first answer. */
  commit<T>(workspaceId: string, id: string, record: (r: ReservationRecord) => Promise<T>): Promise<T>;
  /** Reconciles value-based rate limits with the actual amounts. */
  reconcileRates(r: ReservationRecord, actual: Record<string, number>): void | Promise<void>;
  release(workspaceId: string, id: string): Promise<ReservationRecord>;
  getReservation(workspaceId: string, id: string): Promise<ReservationRecord>;
  /** Counter increments for a batch about to be stored; the function runs right after its commit. */
  prepareIncrements(
    workspaceId: string,
    events: UsageEvent[],
    customers: (id: string) => Promise<CustomerContext>,
  ): Promise<(inserted: number[], commitSeq: number) => void>;
  counterUsage(
    workspaceId: string,
    customer: CustomerContext,
    limit: QuotaLimit,
    meter: MeterDef,
    groupKey: string,
  ): Promise<{ used: number; window: { start: number; end: number | null } | null }>;
  quotaUsage(
    workspaceId: string,
    customer: CustomerContext,
    limit: QuotaLimit,
    meter: MeterDef,
  ): Promise<
    { group: Record<string, string | null>; used: number; reserved: number; resetAt: number | null }[]
  >;
  concurrencyInUse(
    workspaceId: string,
    limit: ConcurrencyLimit,
    customerId: string,
  ): number | Promise<number>;
  rateState(
    workspaceId: string,
    limit: RateLimit,
    customerId: string,
  ): RateLimitDecision | null | Promise<RateLimitDecision | null>;
  /** Drops loaded quota counters of a workspace (stored events changed in place). */
  forgetFamilies(workspaceId: string): void | Promise<void>;
  /** A limiter with a shared state store: whether it is reachable now (checks are degraded if not). */
  connected?(): boolean;
  /** Expires reservations past their TTL and drops idle state; the server calls it every second. */
  sweep(now: number): void | Promise<void>;
}

/** What a limiter is built from: the Engine passes its own book, clock, id minter and observer. */
export interface LimiterContext {
  store: Store;
  book: LimitBook;
  clock: Clock;
  newId: () => string;
  observer?: UsageObserver;
}

export type LimiterFactory = (context: LimiterContext) => LimiterPort;

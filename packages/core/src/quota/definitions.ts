import { invalid } from "../errors.js";
import { formatInstant, parseInstant } from "../time.js";

/** Where a limit is defined: the whole workspace, every customer of a plan, or one customer. */
export type LimitScope =
  | { kind: "workspace" }
  | { kind: "plan"; plan: string }
  | { kind: "customer"; customer: string };

export type Enforcement = "hard" | "soft" | "shadow";
export type FailMode = "open" | "closed";
export type PeriodDef = "hour" | "day" | "week" | "month" | "all_time" | { rolling_seconds: number };

interface LimitBase {
  id: string;
  scope: LimitScope;
  enforcement: Enforcement;
  failMode: FailMode;
  /** Bumps whenever the definition changes, so counters of an old definition are never reused. */
  version: number;
  /**
   * A temporary raise: a customer's own limit that stops applying at this instant (epoch ms), when
   * the plan's (or no) limit of the same id applies again. Evaluated at check time (book.ts).
   */
  expiresAt?: number;
}

/** A quota: at most `amount` of a meter per period (per group), for a subject. */
export interface QuotaLimit extends LimitBase {
  kind: "quota";
  meter: string;
  amount: number;
  period: PeriodDef;
  groupBy: string[];
  filter: Record<string, string>;
  thresholds: number[];
}

export type RateScope = "key" | "customer" | "workspace";

export interface RateLimit extends LimitBase {
  kind: "rate";
  subject: RateScope;
  eventType: string | null;
  /** The value summed per request (tokens per minute); null counts requests. */
  value: string | null;
  limit: number;
  windowMs: number;
  algorithm: "sliding_window" | "token_bucket" | "fixed_window" | "gcra" | "burst";
  burst: number | null;
}

export interface ConcurrencyLimit extends LimitBase {
  kind: "concurrency";
  subject: RateScope;
  eventType: string | null;
  max: number;
  leaseTtlMs: number;
}

export type AnyLimit = QuotaLimit | RateLimit | ConcurrencyLimit;
export type LimitKind = AnyLimit["kind"];

export const DEFAULT_THRESHOLDS = [80, 95];
export const MAX_ROLLING_SECONDS = 366 * 86_400;
export const MAX_RATE_WINDOW_SECONDS = 86_400;
export const DEFAULT_LEASE_TTL_SECONDS = 300;

/** The record id a limit is stored under: one id may exist once per scope. */
export function scopeTag(scope: LimitScope): string {
  return scope.kind === "workspace"
    ? "ws"
    : scope.kind === "plan"
      ? `plan:${scope.plan}`
      : `customer:${scope.customer}`;
}
export const limitRecordId = (scope: LimitScope, id: string) => `${scopeTag(scope)}/${id}`;

export function scopeOf(input: { plan?: string | null; customer?: string | null }): LimitScope {
  if (input.plan && input.customer) throw invalid("give plan or customer, not both", { field: "plan" });
  if (input.plan) return { kind: "plan", plan: input.plan };
  if (input.customer) return { kind: "customer", customer: input.customer };
  return { kind: "workspace" };
}

// ---- API inputs (snake_case, already shape-checked by the boundary schema) ------------------------

export interface QuotaInput {
  plan?: string | null;
  customer?: string | null;
  meter: string;
  amount: number;
  period: PeriodDef;
  group_by?: string[];
  filter?: Record<string, string>;
  enforcement?: Enforcement;
  thresholds?: number[];
  fail_mode?: FailMode;
  /** A customer's limit only: a temporary raise until this instant. */
  expires_at?: string | null;
}

export interface RateLimitInput {
  plan?: string | null;
  customer?: string | null;
  scope: RateScope;
  event_type?: string | null;
  value?: string | null;
  limit: number;
  window_seconds: number;
  algorithm?: RateLimit["algorithm"];
  burst?: number | null;
  enforcement?: Enforcement;
  fail_mode?: FailMode;
  /** A customer's limit only: a temporary raise until this instant. */
  expires_at?: string | null;
}

export interface ConcurrencyLimitInput {
  plan?: string | null;
  customer?: string | null;
  scope: RateScope;
  event_type?: string | null;
  max: number;
  lease_ttl_seconds?: number;
  enforcement?: Enforcement;
  fail_mode?: FailMode;
  /** A customer's limit only: a temporary raise until this instant. */
  expires_at?: string | null;
}

export function toQuota(id: string, scope: LimitScope, input: QuotaInput, version: number): QuotaLimit {
  const thresholds = [...(input.thresholds ?? DEFAULT_THRESHOLDS)].sort((a, b) => a - b);
  if (new Set(thresholds).size !== thresholds.length) {
    throw invalid("thresholds must be distinct", { field: "thresholds" });
  }
  if (typeof input.period === "object" && input.period.rolling_seconds > MAX_ROLLING_SECONDS) {
    throw invalid(`rolling_seconds is at most ${MAX_ROLLING_SECONDS}`, { field: "period.rolling_seconds" });
  }
  return {
    kind: "quota",
    id,
    scope,
    version,
    meter: input.meter,
    amount: input.amount,
    period: input.period,
    groupBy: input.group_by ?? [],
    filter: input.filter ?? {},
    enforcement: input.enforcement ?? "hard",
    failMode: input.fail_mode ?? "closed",
    thresholds,
    ...expiryOf(scope, input.expires_at),
  };
}

export function toRateLimit(
  id: string,
  scope: LimitScope,
  input: RateLimitInput,
  version: number,
): RateLimit {
  if (input.burst != null && input.burst < 1) throw invalid("burst must be at least 1", { field: "burst" });
  return {
    kind: "rate",
    id,
    scope,
    version,
    subject: input.scope,
    eventType: input.event_type ?? null,
    value: input.value ?? null,
    limit: input.limit,
    windowMs: input.window_seconds * 1000,
    algorithm: input.algorithm ?? "sliding_window",
    burst: input.burst ?? null,
    enforcement: input.enforcement ?? "hard",
    failMode: input.fail_mode ?? "closed",
    ...expiryOf(scope, input.expires_at),
  };
}

export function toConcurrencyLimit(
  id: string,
  scope: LimitScope,
  input: ConcurrencyLimitInput,
  version: number,
): ConcurrencyLimit {
  return {
    kind: "concurrency",
    id,
    scope,
    version,
    subject: input.scope,
    eventType: input.event_type ?? null,
    max: input.max,
    leaseTtlMs: (input.lease_ttl_seconds ?? DEFAULT_LEASE_TTL_SECONDS) * 1000,
    enforcement: input.enforcement ?? "hard",
    failMode: input.fail_mode ?? "closed",
    ...expiryOf(scope, input.expires_at),
  };
}

/** `expires_at` makes a customer's limit a temporary raise; other scopes have no expiry. */
function expiryOf(scope: LimitScope, expiresAt: string | null | undefined): { expiresAt?: number } {
  if (expiresAt == null) return {};
  if (scope.kind !== "customer") {
    throw invalid("expires_at is for a customer's own limit (a temporary raise over its plan's)", {
      field: "expires_at",
    });
  }
  return { expiresAt: parseInstant(expiresAt, "expires_at") };
}

/** Back to the API's JSON. */
export function presentLimit(l: AnyLimit): Record<string, unknown> {
  const scope =
    l.scope.kind === "plan"
      ? { plan: l.scope.plan }
      : l.scope.kind === "customer"
        ? { customer: l.scope.customer }
        : {};
  const common = {
    id: l.id,
    ...scope,
    enforcement: l.enforcement,
    fail_mode: l.failMode,
    ...(l.expiresAt !== undefined ? { expires_at: formatInstant(l.expiresAt) } : {}),
  };
  switch (l.kind) {
    case "quota":
      return {
        ...common,
        meter: l.meter,
        amount: l.amount,
        period: l.period,
        group_by: l.groupBy,
        filter: l.filter,
        thresholds: l.thresholds,
      };
    case "rate":
      return {
        ...common,
        scope: l.subject,
        event_type: l.eventType,
        value: l.value,
        limit: l.limit,
        window_seconds: l.windowMs / 1000,
        algorithm: l.algorithm,
        burst: l.burst,
      };
    case "concurrency":
      return {
        ...common,
        scope: l.subject,
        event_type: l.eventType,
        max: l.max,
        lease_ttl_seconds: l.leaseTtlMs / 1000,
      };
  }
}

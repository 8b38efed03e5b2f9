/** The API's shapes as the SDK sends and receives them (snake_case JSON, as in docs/API.md). */

export type Values = Record<string, number>;
export type Dimensions = Record<string, string>;

export interface EventInput {
  /** Idempotency key per workspace; the SDK makes one when left out. */
  id?: string;
  type: string;
  customer: string;
  /** RFC 3339; defaults to the moment the event is recorded. */
  timestamp?: string;
  values?: Values;
  dimensions?: Dimensions;
}

/** What a check is about: the event the caller expects to record (estimates). */
export interface CheckEvent {
  type: string;
  customer: string;
  values?: Values;
  dimensions?: Dimensions;
}

export type LimitKind = "quota" | "rate" | "concurrency" | "balance";

export interface LimitOutcome {
  id: string;
  kind: LimitKind;
  allowed: boolean;
  exceeded?: boolean;
  enforcement?: "hard" | "soft" | "shadow";
  limit: number;
  remaining: number;
  used?: number;
  reserved?: number;
  reset_at: string | null;
  retry_after?: number;
  group?: Record<string, string | null>;
}

export type DenialCode =
  | "RATE_LIMIT_EXCEEDED"
  | "LIMIT_EXCEEDED"
  | "CONCURRENCY_LIMIT_EXCEEDED"
  | "INSUFFICIENT_BALANCE"
  | "FEATURE_NOT_INCLUDED"
  | "UNAVAILABLE";

export interface CheckResult {
  allowed: boolean;
  code?: DenialCode;
  limits: LimitOutcome[];
  reservation?: { id: string; expires_at: string };
  /**
   * Set when Tollgate was unreachable or slow and the answer comes from the fail mode instead
   * (`allowed` is then true for `open`, false for `closed`).
   */
  degraded?: boolean;
}

export interface CommitResult {
  reservation: string;
  state: "committed" | "queued";
  event_id: string;
  accepted?: number;
  duplicates?: number;
}

export interface ReleaseResult {
  reservation: string;
  state: string;
}

export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown>; status: number };
}

export interface Page<T> {
  data: T[];
  next_cursor?: string;
}

export interface CustomerBody {
  name?: string | null;
  plan?: string | null;
  timezone?: string | null;
  billing_anchor?: string | null;
  metadata?: Record<string, unknown> | null;
}

export interface MeterBody {
  event_type: string;
  aggregation: "sum" | "count" | "max" | "latest" | "unique_count";
  value?: string | string[];
  filter?: Record<string, string>;
}

export type Period = "hour" | "day" | "week" | "month" | "all_time" | { rolling_seconds: number };

export interface LimitBody {
  plan?: string;
  customer?: string;
  meter: string;
  amount: number;
  period: Period;
  group_by?: string[];
  filter?: Record<string, string>;
  enforcement?: "hard" | "soft" | "shadow";
  thresholds?: number[];
  fail_mode?: "open" | "closed";
}

export interface RateLimitBody {
  plan?: string;
  customer?: string;
  scope: "key" | "customer" | "workspace";
  event_type?: string;
  value?: string;
  limit: number;
  window_seconds: number;
  algorithm?: "sliding_window" | "token_bucket" | "fixed_window" | "gcra";
  burst?: number;
  enforcement?: "hard" | "soft" | "shadow";
}

export interface ConcurrencyLimitBody {
  plan?: string;
  customer?: string;
  scope: "key" | "customer" | "workspace";
  max: number;
  lease_ttl_seconds?: number;
  event_type?: string;
}

export interface PlanBody {
  name: string;
  retention_days?: number | null;
  limits?: ({ id: string } & Omit<LimitBody, "plan" | "customer">)[];
  rate_limits?: ({ id: string } & Omit<RateLimitBody, "plan" | "customer">)[];
  concurrency_limits?: ({ id: string } & Omit<ConcurrencyLimitBody, "plan" | "customer">)[];
}

export interface CustomerLimitState {
  id: string;
  kind: LimitKind;
  limit: number;
  used: number;
  reserved: number;
  remaining: number;
  percent_used: number;
  reset_at: string | null;
  enforcement: string;
  state: "ok" | "warning" | "critical" | "exceeded";
  group?: Record<string, string | null>;
}

export interface MeterQuery {
  customer?: string;
  from?: string;
  to?: string;
  window?: "hour" | "day" | "week" | "month";
  group_by?: string | string[];
}

export interface UsageQuery {
  from?: string;
  to?: string;
  granularity?: "hour" | "day" | "week" | "month";
  group_by?: string | string[];
  customer?: string;
}

export type Json = Record<string, unknown>;

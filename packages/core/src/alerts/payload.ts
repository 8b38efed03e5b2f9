/**
 * What an alert is, how its id is made, and the JSON a webhook delivery carries. Pure.
 *
 * Ids are deterministic: the same alert (limit, subject, group, window, level) raised twice, by a
 * retry, a second process or a re-evaluation after a restart, gets the same id, and the store keeps the
 * first (INSERT OR IGNORE). The id is also the Standard Webhooks `webhook-id` of every delivery of
 * it, so receivers drop duplicates by it.
 */
import { canonicalJson } from "../canonical.js";
import type { QuotaLimit } from "../quota/definitions.js";
import { scopeTag } from "../quota/definitions.js";
import { formatInstant } from "../time.js";
import type { LevelReached, LimitAlertType } from "./levels.js";

export const ALERT_TYPES = [
  "limit.warning",
  "limit.critical",
  "limit.exceeded",
  "balance.low",
  "usage.summary",
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

export const isAlertType = (s: string): s is AlertType => (ALERT_TYPES as readonly string[]).includes(s);

/** A stored alert: `data` is the webhook payload's `data`. */
export interface Alert {
  id: string;
  type: AlertType;
  /** The customer it is about; null for a workspace-wide limit. */
  customer: string | null;
  createdAt: number;
  data: Record<string, unknown>;
}

/** Hex digest of a string (the server injects SHA-256; ids only need to be stable and collision-free). */
export type Hash = (text: string) => string;

/** `alt_` + 32 hex digits of the hash of the alert's identity. */
export function alertId(hash: Hash, identity: readonly unknown[]): string {
  return `alt_${hash(canonicalJson(identity)).slice(0, 32)}`;
}

/** The window of a quota that alerts are deduplicated in. */
export interface AlertWindow {
  start: number;
  /** Null for all_time. */
  end: number | null;
}

/**
 * Rolling periods have no fixed window: their alerts are deduplicated per consecutive span of the
 * period's length (epoch-aligned), so a level fires at most once per such span.
 */
export function rollingAlertWindow(rollingSeconds: number, at: number): AlertWindow {
  const ms = rollingSeconds * 1000;
  const start = Math.floor(at / ms) * ms;
  return { start, end: start + ms };
}

export interface LimitAlertInput {
  workspaceId: string;
  limit: QuotaLimit;
  /** The customer whose usage counts; "*" for a workspace-wide limit. */
  subject: string;
  group: Record<string, string | null>;
  window: AlertWindow;
  level: LevelReached;
  used: number;
  /** What raised it: committed usage, or a check a soft/shadow limit let past the amount. */
  trigger: "usage" | "check";
  at: number;
}

export function limitAlert(hash: Hash, input: LimitAlertInput): Alert {
  const { limit, subject, group, window, level } = input;
  const identity = [
    input.workspaceId,
    "limit",
    scopeTag(limit.scope),
    limit.id,
    subject,
    group,
    window.start,
    level.type,
    level.threshold,
  ];
  return {
    id: alertId(hash, identity),
    type: level.type satisfies LimitAlertType,
    customer: subject === "*" ? null : subject,
    createdAt: input.at,
    data: {
      limit: {
        id: limit.id,
        ...(limit.scope.kind === "plan" ? { plan: limit.scope.plan } : {}),
        ...(limit.scope.kind === "customer" ? { customer: limit.scope.customer } : {}),
        meter: limit.meter,
        amount: limit.amount,
        period: limit.period,
        enforcement: limit.enforcement,
      },
      customer: subject === "*" ? null : subject,
      group,
      threshold: level.threshold,
      used: input.used,
      percent_used: percentUsedOf(input.used, limit.amount),
      window_start: formatInstant(window.start),
      window_end: window.end === null ? null : formatInstant(window.end),
      trigger: input.trigger,
    },
  };
}

function percentUsedOf(used: number, amount: number): number {
  if (amount <= 0) return used > 0 ? 100 : 0;
  return Number((BigInt(used) * 10_000n) / BigInt(amount)) / 100;
}

export interface BalanceLowInput {
  workspaceId: string;
  customer: string;
  /** Credits available now (balance - held), integer. */
  available: number;
  /** The level it fell under. */
  level: number;
  /**
   * What re-arms the alert: one alert per (customer, level, episode). Pass something that changes when
   * the balance is topped up (the id of the latest credit grant); without it, once per UTC day.
   */
  episode?: string;
  at: number;
}

export function balanceLowAlert(hash: Hash, input: BalanceLowInput): Alert {
  const episode = input.episode ?? formatInstant(Math.floor(input.at / 86_400_000) * 86_400_000);
  return {
    id: alertId(hash, [input.workspaceId, "balance.low", input.customer, input.level, episode]),
    type: "balance.low",
    customer: input.customer,
    createdAt: input.at,
    data: { customer: input.customer, available: input.available, level: input.level },
  };
}

export interface UsageSummaryInput {
  workspaceId: string;
  customer: string;
  period: "day" | "week";
  window: { start: number; end: number };
  events: number;
  /** Sums of every event value, by name (`cost` printed as decimal USD by the caller). */
  values: Record<string, number | string>;
  meters: Record<string, number | string>;
  at: number;
}

export function usageSummaryAlert(hash: Hash, input: UsageSummaryInput): Alert {
  return {
    id: alertId(hash, [input.workspaceId, "usage.summary", input.customer, input.period, input.window.start]),
    type: "usage.summary",
    customer: input.customer,
    createdAt: input.at,
    data: {
      customer: input.customer,
      period: input.period,
      window_start: formatInstant(input.window.start),
      window_end: formatInstant(input.window.end),
      events: input.events,
      values: input.values,
      meters: input.meters,
    },
  };
}

/**
 * The body of every delivery of an alert, byte for byte (Standard Webhooks' recommended shape:
 * `type`, `timestamp`, `data`), plus the alert's `id`.
 */
export function webhookPayload(alert: Alert): string {
  return JSON.stringify({
    id: alert.id,
    type: alert.type,
    timestamp: formatInstant(alert.createdAt),
    data: alert.data,
  });
}

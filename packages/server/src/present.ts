import type { ApiKeyRecord, Customer, MeterDef, MeterQueryRow, Plan } from "@tollgate/core";
import { formatInstant, presentPlanTerms, termsOf } from "@tollgate/core";

/** Domain objects → the API's JSON (snake_case, RFC 3339 times). */
const at = (ms: number | null) => (ms === null ? null : formatInstant(ms));

export const presentCustomer = (c: Customer) => ({
  id: c.id,
  name: c.name,
  plan: c.plan,
  timezone: c.timezone,
  billing_anchor: at(c.billingAnchor),
  metadata: c.metadata,
  created_at: at(c.createdAt),
  updated_at: at(c.updatedAt),
});

export const presentPlan = (p: Plan) => ({
  id: p.id,
  name: p.name,
  retention_days: p.retentionDays,
  limits: p.limits,
  rate_limits: p.rateLimits,
  concurrency_limits: p.concurrencyLimits,
  ...presentPlanTerms(termsOf(p)),
  created_at: at(p.createdAt),
  updated_at: at(p.updatedAt),
});

export const presentMeter = (m: MeterDef) => ({
  id: m.id,
  event_type: m.eventType,
  aggregation: m.aggregation,
  value: m.value.length === 1 ? m.value[0] : m.value.length === 0 ? undefined : m.value,
  filter: m.filter,
  created_at: at(m.createdAt),
  updated_at: at(m.updatedAt),
});

export const presentKey = (k: ApiKeyRecord) => ({
  id: k.id,
  name: k.name,
  role: k.role === "customer" ? undefined : k.role,
  customer: k.customerId ?? undefined,
  prefix: k.prefix,
  created_at: at(k.createdAt),
  last_used_at: at(k.lastUsedAt),
});

export const presentMeterRow = (r: MeterQueryRow) => ({
  window_start: at(r.windowStart),
  window_end: at(r.windowEnd),
  value: typeof r.value === "bigint" ? r.value.toString() : r.value,
  groups: r.groups,
});

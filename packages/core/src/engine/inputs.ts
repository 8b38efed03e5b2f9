/** Inputs as the API takes them (snake_case JSON), after schema validation at the boundary. */
export interface EventInput {
  id: string;
  type: string;
  customer: string;
  timestamp?: string;
  values?: Record<string, number>;
  dimensions?: Record<string, string>;
}

export interface CustomerInput {
  name?: string | null;
  plan?: string | null;
  timezone?: string | null;
  billing_anchor?: string | null;
  metadata?: Record<string, unknown> | null;
}

export interface MeterInput {
  event_type: string;
  aggregation: "sum" | "count" | "max" | "latest" | "unique_count";
  value?: string | string[];
  filter?: Record<string, string>;
}

export interface PlanInput {
  name: string;
  retention_days?: number | null;
  limits?: Record<string, unknown>[];
  rate_limits?: Record<string, unknown>[];
  concurrency_limits?: Record<string, unknown>[];
}

export interface MeterQueryInput {
  customer?: string;
  from?: string;
  to?: string;
  window?: "hour" | "day" | "week" | "month";
  group_by?: string;
}

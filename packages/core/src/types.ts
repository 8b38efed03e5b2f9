/** Domain types shared by the core, the stores and the server. Times are epoch milliseconds. */

export type Role = "admin" | "service";

export interface Workspace {
  id: string;
  name: string;
  createdAt: number;
}

/** A key as stored: never the plaintext, only its hash. */
export interface ApiKeyRecord {
  id: string;
  workspaceId: string;
  name: string;
  /** `admin`/`service` for workspace keys; `customer` for end-user keys. */
  role: Role | "customer";
  /** Set on end-user keys: whose usage the key carries. */
  customerId: string | null;
  /** The first characters of the key, safe to show ("tg_AbC1…"). */
  prefix: string;
  /** Hex SHA-256 of the full key. */
  hash: string;
  createdAt: number;
  lastUsedAt: number | null;
}

export interface Customer {
  id: string;
  name: string | null;
  plan: string | null;
  /** IANA zone where calendar periods begin. */
  timezone: string;
  /** Epoch ms; month/week periods start at this point of the cycle. */
  billingAnchor: number | null;
  metadata: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
}

export type Aggregation = "sum" | "count" | "max" | "latest" | "unique_count";

export interface MeterDef {
  id: string;
  eventType: string;
  aggregation: Aggregation;
  /** The value (or values, added per event) the meter aggregates; for unique_count a dimension or value. */
  value: string[];
  /** Dimension equality filter: every entry must match. */
  filter: Record<string, string>;
  createdAt: number;
  updatedAt: number;
}

export interface UsageEvent {
  id: string;
  type: string;
  customer: string;
  timestamp: number;
  /** Non-negative safe integers. */
  values: Record<string, number>;
  dimensions: Record<string, string>;
  /** The price row `values.cost` was computed with, when Tollgate priced the event. */
  priceRow?: string;
}

export interface Page<T> {
  data: T[];
  nextCursor?: string;
}

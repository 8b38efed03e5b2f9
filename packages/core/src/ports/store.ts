import type { Alert } from "../alerts/payload.js";
import type { LedgerEntry } from "../ledger/types.js";
import type { ApiKeyRecord, UsageEvent, Workspace } from "../types.js";

/**
 * The storage port. A store keeps state and provides atomicity; it makes no decisions (those live in
 * the core). Every adapter passes the conformance suite in packages/store-testkit.
 */
export interface StoreCapabilities {
  /** Acknowledged writes survive a process kill (SIGKILL) and, with fsync, a power loss. */
  readonly durable: boolean;
  /** Several server processes may share this store. */
  readonly shared: boolean;
}

/** Definitions and entities kept as JSON documents, one namespace per kind. */
export type RecordKind =
  | "customer"
  | "plan"
  | "meter"
  | "limit"
  | "rate_limit"
  | "concurrency_limit"
  | "price"
  | "balance_rule"
  | "setting"
  | "audit"
  | "webhook";

export interface StoredRecord<T = unknown> {
  id: string;
  body: T;
  createdAt: number;
  updatedAt: number;
}

/** An event as the store keeps it: `fingerprint` identifies its body, to tell a retry from a conflict. */
export interface EventToStore {
  event: UsageEvent;
  /**
   * Identifies the event's body as the client sent it (canonical: key order does not matter; an
   * omitted timestamp stays omitted). Equal fingerprints mean the same body.
   */
  fingerprint: string;
  /** Canonical JSON of `event.values` and `event.dimensions`, computed once for fingerprint and storage. */
  valuesJson: string;
  dimensionsJson: string;
  /** The price row `values.cost` was computed with; absent when the engine did not price the event. */
  priceRow?: string;
  /**
   * Ledger entries of the event's customer that exist because of this event (debit rules' usage):
   * stored in the same transaction, and only if the event is new (a duplicate adds none).
   */
  ledger?: LedgerEntry[];
}

export type AppendResult =
  | {
      ok: true;
      accepted: number;
      duplicates: number /** Indexes of the events newly stored. */;
      inserted: number[];
    }
  | { ok: false; conflictIndex: number; id: string };

export interface EventScan {
  types?: string[];
  customer?: string;
  /** Inclusive, epoch ms. */
  from?: number;
  /** Exclusive, epoch ms. */
  to?: number;
}

/** A reservation as kept durably: its holds come back exactly after a restart. */
export interface ReservationRecord {
  id: string;
  state: "active" | "committed" | "released" | "expired";
  customer: string;
  /** The estimate given at check. */
  event: { type: string; values: Record<string, number>; dimensions: Record<string, string> };
  /** Quota holds: counter key (family and group) and amount. */
  holds: { key: string; amount: number }[];
  /**
   * Concurrency slots taken: lease key and when the slot frees itself (the earlier of the
   * reservation's TTL and the limit's lease_ttl_seconds).
   */
  leases: { key: string; expiresAt: number }[];
  /** Value-based rate-limit charges at check, reconciled with the actual amount at commit. */
  rateCharges: {
    key: string;
    /** The part of `key` that names the subject (the in-process limiter's tables are per prefix). */
    subject?: string;
    value: string;
    cost: number;
    config: { algorithm: string; limit: number; windowMs: number; burst?: number };
  }[];
  createdAt: number;
  expiresAt: number;
  /** The customer's balance holds credits for it (hold id = reservation id) until it ends. */
  balanceHold?: boolean;
  /** The commit's answer, replayed to a retried commit. */
  result?: unknown;
}

export interface Store {
  readonly capabilities: StoreCapabilities;

  /** Creates the workspace if it does not exist; returns it and whether it was created. */
  ensureWorkspace(id: string, now: number): Promise<{ workspace: Workspace; created: boolean }>;
  getWorkspace(id: string): Promise<Workspace | undefined>;
  listWorkspaces(): Promise<Workspace[]>;

  insertApiKey(key: ApiKeyRecord): Promise<void>;
  findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(workspaceId: string, filter: { customerId?: string | null }): Promise<ApiKeyRecord[]>;
  /** True when a key was deleted. */
  deleteApiKey(workspaceId: string, id: string, customerId?: string | null): Promise<boolean>;
  touchApiKey(id: string, at: number): Promise<void>;

  /** Insert or replace; returns whether it was created. */
  putRecord<T>(
    workspaceId: string,
    kind: RecordKind,
    id: string,
    body: T,
    now: number,
  ): Promise<{ record: StoredRecord<T>; created: boolean }>;
  getRecord<T>(workspaceId: string, kind: RecordKind, id: string): Promise<StoredRecord<T> | undefined>;
  /** Ordered by id; `after` is exclusive. */
  listRecords<T>(
    workspaceId: string,
    kind: RecordKind,
    page: { after?: string; limit: number },
  ): Promise<StoredRecord<T>[]>;
  deleteRecord(workspaceId: string, kind: RecordKind, id: string): Promise<boolean>;

  /**
   * Appends a batch all-or-nothing, idempotent by event id. Resolves only once the batch is durable.
   * A repeated id with an equal fingerprint is a duplicate; with another fingerprint, a conflict, and
   * then nothing of the batch is stored.
   */
  appendEvents(
    workspaceId: string,
    events: EventToStore[],
    /**
     * Called once the batch is durable, before the promise resolves, with the indexes of the events
     * newly stored and the commit's sequence number (see scanEvents).
     */
    afterCommit?: (inserted: number[], commitSeq: number) => void,
  ): Promise<AppendResult>;
  /**
   * Calls `visit` for every matching event in (timestamp, storage order), from one consistent
   * snapshot, and resolves with that snapshot's sequence number: the snapshot includes exactly the
   * commits whose `commitSeq` is at most it. A cache built from a scan uses this to apply each later
   * commit exactly once.
   */
  scanEvents(
    workspaceId: string,
    scan: EventScan,
    visit: (event: UsageEvent, seq: number) => void,
  ): Promise<{ asOfSeq: number }>;

  /** Inserts or replaces a reservation; resolves once durable (grouped like event appends). */
  saveReservation(workspaceId: string, reservation: ReservationRecord): Promise<void>;
  getReservation(workspaceId: string, id: string): Promise<ReservationRecord | undefined>;
  /** Every reservation still active, in every workspace: reloaded at start. */
  listActiveReservations(): Promise<{ workspaceId: string; reservation: ReservationRecord }[]>;
  /** Deletes finished reservations that ended before `before`; returns how many. */
  purgeReservations(before: number): Promise<number>;

  // ---- balances (ledger) ----------------------------------------------------------------------
  /**
   * Appends entries to a customer's ledger, durably, in order. An entry whose idempotency key the
   * customer's ledger already holds is skipped (a retry). `minimum_balance` entries have no key.
   */
  appendLedger(workspaceId: string, customer: string, entries: LedgerEntry[]): Promise<void>;
  /** Every entry of the customer's ledger, in stored order (what a replay applies). */
  loadLedger(workspaceId: string, customer: string): Promise<LedgerEntry[]>;
  /** A page of the ledger in stored order: `after` is an exclusive `seq`. */
  listLedger(
    workspaceId: string,
    customer: string,
    page: { after?: number; limit: number },
  ): Promise<{ seq: number; entry: LedgerEntry }[]>;

  /**
   * Present on stores that several processes share (PostgreSQL). Takes the customer's ledger lock:
   * every ledger write of that customer, by any process (this lock's `append`, `appendLedger`, the
   * usage entries stored with events), waits for it, and a customer's entries are numbered (`seq`) in
   * the order they commit. So a ledger caught up under the lock (`since`) is the whole truth, and an
   * admission decided on it (a hold, a debit) cannot be overtaken by another process's.
   * Call `release` in every case (after `append`, it does nothing).
   */
  lockLedger?(workspaceId: string, customer: string): Promise<LedgerLock>;

  // ---- reports (rollups, retention) ------------------------------------------------------------
  // Rollups are usage pre-aggregated per UTC hour (and per UTC day) and per customer, event type and
  // dimensions without `run` (one row per agent run would make nearly every row unique; runs get a
  // table of their own). appendEvents maintains them in the same transaction as the insert, for newly
  // stored events only (a duplicate adds nothing). Raw events stay the source of truth; a retention
  // purge deletes raw events and leaves the rollups alone. See docs/reports.md.

  /**
   * Sums of rollup rows in [from, to) (multiples of the resolution), one per bucket, dimensions and
   * (with byCustomer) customer, ordered by bucket. Sums are exact (bigint).
   */
  queryRollups(workspaceId: string, query: RollupQuery): Promise<RollupTotals[]>;
  /**
   * scanEvents for quota loading, past retention: from one consistent snapshot, for each customer,
   * the hourly rollup rows of the hours before its purge horizon (visitRollup) and the raw events at
   * or after it (visitEvent). Hours are whole: a row's hour starts at or after `scan.from`.
   */
  scanUsage(
    workspaceId: string,
    scan: EventScan,
    visitEvent: (event: UsageEvent, seq: number) => void,
    visitRollup: (row: UsageRollupRow) => void,
  ): Promise<{ asOfSeq: number }>;
  /** Runs of one workflow that started in [from, to), by (startedAt, run), after `after`. */
  listWorkflowRuns(workspaceId: string, query: WorkflowRunQuery): Promise<WorkflowRunTotals[]>;
  /**
   * Retention: deletes the customer's raw events before `before` (a whole UTC hour) and records
   * `before` as its purge horizon (it only moves forward). Rollups stay. Returns how many were deleted.
   */
  purgeEvents(workspaceId: string, customer: string, before: number): Promise<number>;
  /** Recomputes every rollup from the raw events, except the hours before each purge horizon. */
  rebuildRollups(): Promise<{ events: number }>;

  // ---- alerts and webhooks (issue #6; types below the interface) ---------------------------------
  /**
   * Stores an alert and one pending delivery per subscribed endpoint in ONE transaction, only if no
   * alert with its id exists (then nothing is written and the answer is false). Deliveries are due
   * at `now`.
   */
  insertAlert(workspaceId: string, alert: Alert, deliveries: NewDelivery[], now: number): Promise<boolean>;
  /** Newest first; `before` is an exclusive cursor (a `seq` of an earlier page). */
  listAlerts(
    workspaceId: string,
    query: { type?: string; customer?: string; before?: number; limit: number },
  ): Promise<{ seq: number; alert: Alert }[]>;
  /** Insert or replace a webhook endpoint. */
  putWebhook(workspaceId: string, webhook: WebhookRecord): Promise<void>;
  getWebhook(workspaceId: string, id: string): Promise<WebhookRecord | undefined>;
  /** Ordered by creation. */
  listWebhooks(workspaceId: string): Promise<WebhookRecord[]>;
  /** Deletes the endpoint and cancels its pending deliveries; false when there is none. */
  deleteWebhook(workspaceId: string, id: string, now: number): Promise<boolean>;
  /** Pending deliveries due at `now` (in every workspace), earliest first, with what sending needs. */
  dueDeliveries(now: number, limit: number): Promise<DueDelivery[]>;
  /** Logs one attempt and moves the delivery to `next`, in one transaction. */
  saveAttempt(
    workspaceId: string,
    deliveryId: string,
    attempt: DeliveryAttempt,
    next: { state: DeliveryState; nextAttemptAt: number | null },
  ): Promise<void>;
  /** Newest first, with each delivery's attempts (oldest first); `before` as in listAlerts. */
  listDeliveries(
    workspaceId: string,
    webhookId: string,
    query: { state?: DeliveryState; before?: number; limit: number },
  ): Promise<{ seq: number; delivery: DeliveryRecord; attempts: DeliveryAttempt[] }[]>;
  /**
   * Manual redelivery: makes the delivery pending again, due at `now`, as a new round of retries
   * (attempts keep counting). Undefined when the endpoint has no such delivery.
   */
  requeueDelivery(
    workspaceId: string,
    webhookId: string,
    deliveryId: string,
    now: number,
  ): Promise<DeliveryRecord | undefined>;
  // ---- end of alerts and webhooks -----------------------------------------------------------------

  /**
   * Replaces stored events' values and price row in place (repricing), in one transaction; rollups
   * are not touched (rebuild them after). Returns how many events were changed.
   */
  updateEventValues(
    workspaceId: string,
    updates: { id: string; values: Record<string, number>; priceRow: string | null }[],
  ): Promise<number>;

  // ---- simulation (issue #11): streaming reads for replays ---------------------------------------
  /**
   * A page of events in (timestamp, seq) order, after the cursor `scan.after`, at most `limit`. Pages
   * are separate reads: pass the first page's `asOfSeq` to the next ones, so that every page sees the
   * same set of events (commits after it are left out). Memory stays bounded by the page size.
   */
  pageEvents(workspaceId: string, scan: EventPageScan, limit: number): Promise<EventPage>;
  /**
   * Optional: the pages pageEvents gives from its first page's snapshot, one after the other, read
   * ahead by the store (the SQLite store reads and decodes them in a thread of its own). Breaking out
   * of the iteration stops the reading.
   */
  streamEvents?(workspaceId: string, scan: EventPageScan, pageSize: number): AsyncIterable<EventPage>;
  // ---- end of simulation -------------------------------------------------------------------------

  /** Flushes pending writes and closes. */
  close(): Promise<void>;
}

// ---- simulation: the types of pageEvents ---------------------------------------------------------

export interface EventPageScan extends EventScan {
  /** Only these customers (any of them). */
  customers?: string[];
  /** Exclusive cursor: the timestamp and seq of the last event of the previous page. */
  after?: { timestamp: number; seq: number };
  /** Only events of commits up to this sequence number (the first page's answer). */
  asOfSeq?: number;
}

export interface EventPage {
  events: { event: UsageEvent; seq: number }[];
  /** The snapshot the pages read: pass it back with the next page. */
  asOfSeq: number;
}

// ---- reports (rollups, retention): the types of the Store methods of the same name ---------------

export type RollupResolution = "hour" | "day";

export interface RollupQuery {
  resolution: RollupResolution;
  /** Inclusive, epoch ms, a multiple of the resolution (UTC). */
  from: number;
  /** Exclusive, epoch ms, a multiple of the resolution (UTC). */
  to: number;
  customer?: string;
  types?: string[];
  /** Rows per customer; otherwise every customer is added up (rows carry customer null). */
  byCustomer: boolean;
  /** false: one row per dimensions (and customer) over the whole range, with bucket = from. @default true */
  byBucket?: boolean;
}

export interface RollupTotals {
  /** Start of the hour or UTC day. */
  bucket: number;
  customer: string | null;
  /** Canonical JSON of the dimensions (without `run`); equal dimensions give equal strings. */
  dimensions: string;
  events: bigint;
  tokensIn: bigint;
  tokensOut: bigint;
  steps: bigint;
  /** Sum of values.cost, integer pico-USD. */
  cost: bigint;
}

/** One hourly rollup row, for quota loading: what the purged events of that hour added up to. */
export interface UsageRollupRow {
  bucket: number;
  customer: string;
  type: string;
  dimensions: Record<string, string>;
  events: number;
  /** Sum of every value name. */
  values: Record<string, number>;
}

export interface WorkflowRunQuery {
  workflow: string;
  /** On startedAt: inclusive from, exclusive to. */
  from?: number;
  to?: number;
  customer?: string;
  /** Exclusive cursor: the last run of the previous page. */
  after?: { startedAt: number; run: string };
  limit: number;
}

export interface WorkflowRunTotals {
  run: string;
  customer: string;
  events: bigint;
  steps: bigint;
  tokensIn: bigint;
  tokensOut: bigint;
  cost: bigint;
  startedAt: number;
  endedAt: number;
}

// ---- alerts and webhooks: records of the port methods above --------------------------------------

/** A webhook endpoint. */
export interface WebhookRecord {
  id: string;
  url: string;
  /** Alert types it receives. */
  events: string[];
  description: string | null;
  /**
   * The signing secret (`whsec_` + base64), kept in plaintext because every delivery is signed
   * with it (HMAC needs the key itself; a hash would not do).
   */
  secret: string;
  /** The secret before the last rotation: deliveries carry a signature by it too until then. */
  previousSecret: string | null;
  previousSecretUntil: number | null;
  createdAt: number;
  updatedAt: number;
}

export type DeliveryState = "pending" | "delivered" | "failed" | "cancelled";

/** One alert to one endpoint: an outbox row. */
export interface NewDelivery {
  id: string;
  webhookId: string;
}

export interface DeliveryRecord {
  id: string;
  webhookId: string;
  alertId: string;
  eventType: string;
  state: DeliveryState;
  /** Attempts made, in every round. */
  attempts: number;
  /** `attempts` when the current round began (0, or the count at a manual redelivery). */
  roundStartAttempts: number;
  roundStartedAt: number;
  nextAttemptAt: number | null;
  lastStatus: number | null;
  lastLatencyMs: number | null;
  lastError: string | null;
  deliveredAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface DeliveryAttempt {
  /** 1-based, over every round. */
  attempt: number;
  at: number;
  /** HTTP status, null when no response came (timeout, refused, address not allowed). */
  status: number | null;
  latencyMs: number;
  error: string | null;
}

/** A due delivery with its alert and endpoint. */
export interface DueDelivery {
  workspaceId: string;
  delivery: DeliveryRecord;
  alert: Alert;
  url: string;
  /** Current secret first, then the previous one while it is still valid. */
  secrets: string[];
}

/** A customer's ledger, locked against every other writer (Store.lockLedger). */
export interface LedgerLock {
  /** The entries stored after `after` (an exclusive seq), in order. */
  since(after: number): Promise<{ seq: number; entry: LedgerEntry }[]>;
  /** Appends the entries, commits and unlocks; resolves with the last entry's seq once durable. */
  append(entries: LedgerEntry[]): Promise<number>;
  /** Unlocks without writing (nothing after `append`). */
  release(): Promise<void>;
}

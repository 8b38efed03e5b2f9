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
    value: string;
    cost: number;
    config: { algorithm: string; limit: number; windowMs: number; burst?: number };
  }[];
  createdAt: number;
  expiresAt: number;
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

  /** Flushes pending writes and closes. */
  close(): Promise<void>;
}

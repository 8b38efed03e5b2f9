import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type {
  ApiKeyRecord,
  AppendResult,
  EventScan,
  EventToStore,
  RecordKind,
  ReservationRecord,
  Store,
  StoredRecord,
  UsageEvent,
  Workspace,
} from "@tollgate/core";
import { bounds } from "@tollgate/core";
import Database from "better-sqlite3";
import { migrate } from "./migrate.js";

export interface SqliteStoreOptions {
  /** Path of the database file, or ":memory:". */
  path: string;
  /**
   * `full` fsyncs the WAL on every commit, so an acknowledged write survives a power loss;
   * `normal` survives a process crash only. Group commit keeps `full` cheap.
   * @default "full"
   */
  synchronous?: "full" | "normal";
}

interface PendingAppend {
  kind: "events";
  ws: number;
  events: EventToStore[];
  afterCommit: ((inserted: number[]) => void) | undefined;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

interface PendingReservation {
  kind: "reservation";
  ws: number;
  reservation: ReservationRecord;
  resolve: (r: undefined) => void;
  reject: (e: unknown) => void;
}

type PendingWrite = PendingAppend | PendingReservation;

class Conflict extends Error {
  constructor(
    readonly index: number,
    readonly eventId: string,
  ) {
    super("conflict");
  }
}

const fingerprintHash = (fp: string) => createHash("sha256").update(fp).digest().subarray(0, 16);

/**
 * The embedded store: one SQLite file in WAL mode. Appends from concurrent requests are grouped into
 * one transaction (group commit) and acknowledged after it commits; each request's batch is its own
 * savepoint, so one request's conflict rolls back only that request.
 */
export class SqliteStore implements Store {
  readonly capabilities = { durable: true, shared: false } as const;
  readonly db: Database.Database;
  private readonly wsSeq = new Map<string, number>();
  private pending: PendingWrite[] = [];
  private pendingEvents = 0;
  private flushScheduled = false;
  private closed = false;
  private readonly stmt;

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true });
    this.db = new Database(options.path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${(options.synchronous ?? "full").toUpperCase()}`);
    this.db.pragma("foreign_keys = ON");
    this.db.pragma("busy_timeout = 5000");
    migrate(this.db);
    const db = this.db;
    this.stmt = {
      wsGet: db.prepare("SELECT seq, id, created_at FROM workspaces WHERE id = ?"),
      wsInsert: db.prepare("INSERT INTO workspaces (id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING"),
      wsList: db.prepare("SELECT seq, id, created_at FROM workspaces ORDER BY seq"),
      keyInsert: db.prepare(
        `INSERT INTO api_keys (id, workspace_id, name, role, customer_id, prefix, hash, created_at, last_used_at)
         VALUES (@id, @workspaceId, @name, @role, @customerId, @prefix, @hash, @createdAt, @lastUsedAt)`,
      ),
      keyByHash: db.prepare("SELECT * FROM api_keys WHERE hash = ?"),
      keyList: db.prepare("SELECT * FROM api_keys WHERE workspace_id = ? ORDER BY created_at, id"),
      keyListCustomer: db.prepare(
        "SELECT * FROM api_keys WHERE workspace_id = ? AND customer_id = ? ORDER BY created_at, id",
      ),
      keyDelete: db.prepare("DELETE FROM api_keys WHERE workspace_id = ? AND id = ? AND customer_id IS ?"),
      keyTouch: db.prepare("UPDATE api_keys SET last_used_at = ? WHERE id = ?"),
      recGet: db.prepare(
        "SELECT id, body, created_at, updated_at FROM records WHERE ws = ? AND kind = ? AND id = ?",
      ),
      recUpsert: db.prepare(
        `INSERT INTO records (ws, kind, id, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (ws, kind, id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`,
      ),
      recList: db.prepare(
        `SELECT id, body, created_at, updated_at FROM records WHERE ws = ? AND kind = ? AND id > ?
         ORDER BY id LIMIT ?`,
      ),
      recDelete: db.prepare("DELETE FROM records WHERE ws = ? AND kind = ? AND id = ?"),
      evInsert: db.prepare(
        `INSERT INTO events (ws, id, type, customer, ts, vals, dims, fp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (ws, id) DO NOTHING`,
      ),
      evFp: db.prepare("SELECT fp FROM events WHERE ws = ? AND id = ?").pluck(),
      rsvPut: db.prepare(
        `INSERT INTO reservations (ws, id, state, expires_at, updated_at, body) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (ws, id) DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at,
         updated_at = excluded.updated_at, body = excluded.body`,
      ),
      rsvGet: db.prepare("SELECT body FROM reservations WHERE ws = ? AND id = ?").pluck(),
      rsvActive: db.prepare(
        `SELECT w.id AS workspace_id, r.body FROM reservations r JOIN workspaces w ON w.seq = r.ws
         WHERE r.state = 'active'`,
      ),
      rsvPurge: db.prepare("DELETE FROM reservations WHERE state != 'active' AND updated_at < ?"),
    };
    for (const row of this.stmt.wsList.all() as WsRow[]) this.wsSeq.set(row.id, row.seq);
  }

  async ensureWorkspace(id: string, now: number): Promise<{ workspace: Workspace; created: boolean }> {
    const created = this.stmt.wsInsert.run(id, now).changes === 1;
    const row = this.stmt.wsGet.get(id) as WsRow;
    this.wsSeq.set(row.id, row.seq);
    return { workspace: toWorkspace(row), created };
  }

  async getWorkspace(id: string): Promise<Workspace | undefined> {
    const row = this.stmt.wsGet.get(id) as WsRow | undefined;
    return row && toWorkspace(row);
  }

  async listWorkspaces(): Promise<Workspace[]> {
    return (this.stmt.wsList.all() as WsRow[]).map(toWorkspace);
  }

  async insertApiKey(key: ApiKeyRecord): Promise<void> {
    this.stmt.keyInsert.run(key);
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const row = this.stmt.keyByHash.get(hash) as KeyRow | undefined;
    return row && toKey(row);
  }

  async listApiKeys(workspaceId: string, filter: { customerId?: string | null }): Promise<ApiKeyRecord[]> {
    const rows =
      filter.customerId != null
        ? this.stmt.keyListCustomer.all(workspaceId, filter.customerId)
        : this.stmt.keyList.all(workspaceId).filter((r) => (r as KeyRow).customer_id === null);
    return (rows as KeyRow[]).map(toKey);
  }

  async deleteApiKey(workspaceId: string, id: string, customerId: string | null = null): Promise<boolean> {
    return this.stmt.keyDelete.run(workspaceId, id, customerId).changes === 1;
  }

  async touchApiKey(id: string, at: number): Promise<void> {
    this.stmt.keyTouch.run(at, id);
  }

  async putRecord<T>(
    workspaceId: string,
    kind: RecordKind,
    id: string,
    body: T,
    now: number,
  ): Promise<{ record: StoredRecord<T>; created: boolean }> {
    const ws = this.ws(workspaceId);
    return this.db.transaction(() => {
      const before = this.stmt.recGet.get(ws, kind, id) as RecRow | undefined;
      this.stmt.recUpsert.run(ws, kind, id, JSON.stringify(body), now, now);
      return {
        record: { id, body, createdAt: before?.created_at ?? now, updatedAt: now },
        created: before === undefined,
      };
    })();
  }

  async getRecord<T>(
    workspaceId: string,
    kind: RecordKind,
    id: string,
  ): Promise<StoredRecord<T> | undefined> {
    const ws = this.wsSeq.get(workspaceId);
    if (ws === undefined) return undefined;
    const row = this.stmt.recGet.get(ws, kind, id) as RecRow | undefined;
    return row && toRecord<T>(row);
  }

  async listRecords<T>(
    workspaceId: string,
    kind: RecordKind,
    page: { after?: string; limit: number },
  ): Promise<StoredRecord<T>[]> {
    const ws = this.wsSeq.get(workspaceId);
    if (ws === undefined) return [];
    return (this.stmt.recList.all(ws, kind, page.after ?? "", page.limit) as RecRow[]).map((r) =>
      toRecord<T>(r),
    );
  }

  async deleteRecord(workspaceId: string, kind: RecordKind, id: string): Promise<boolean> {
    const ws = this.wsSeq.get(workspaceId);
    if (ws === undefined) return false;
    return this.stmt.recDelete.run(ws, kind, id).changes === 1;
  }

  appendEvents(
    workspaceId: string,
    events: EventToStore[],
    afterCommit?: (inserted: number[]) => void,
  ): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new Error("store is closed"));
    const ws = this.ws(workspaceId);
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: "events", ws, events, afterCommit, resolve, reject }, events.length);
    });
  }

  saveReservation(workspaceId: string, reservation: ReservationRecord): Promise<void> {
    if (this.closed) return Promise.reject(new Error("store is closed"));
    const ws = this.ws(workspaceId);
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: "reservation", ws, reservation, resolve, reject }, 1);
    });
  }

  async getReservation(workspaceId: string, id: string): Promise<ReservationRecord | undefined> {
    const ws = this.wsSeq.get(workspaceId);
    if (ws === undefined) return undefined;
    const body = this.stmt.rsvGet.get(ws, id) as string | undefined;
    return body === undefined ? undefined : (JSON.parse(body) as ReservationRecord);
  }

  async listActiveReservations(): Promise<{ workspaceId: string; reservation: ReservationRecord }[]> {
    return (this.stmt.rsvActive.all() as { workspace_id: string; body: string }[]).map((r) => ({
      workspaceId: r.workspace_id,
      reservation: JSON.parse(r.body) as ReservationRecord,
    }));
  }

  async purgeReservations(before: number): Promise<number> {
    return this.stmt.rsvPurge.run(before).changes;
  }

  private enqueue(write: PendingWrite, weight: number): void {
    this.pending.push(write);
    this.pendingEvents += weight;
    if (this.pendingEvents >= bounds.groupCommitEventsMax) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Commits every pending append in one transaction, then acknowledges each. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    this.pendingEvents = 0;
    if (process.env.TOLLGATE_DEBUG_GROUP_COMMIT) {
      process.stderr.write(
        `flush ${batch.length} writes ${batch.reduce((n, p) => n + (p.kind === "events" ? p.events.length : 1), 0)} rows\n`,
      );
    }
    let results: (AppendResult | undefined)[];
    try {
      results = this.db.transaction(() => batch.map((p) => this.writeOne(p)))();
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    // Counters learn of the new events before any awaiting code can run and look at them.
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      const r = results[i];
      if (p.kind === "events" && r?.ok && p.afterCommit) p.afterCommit(r.inserted);
    }
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      if (p.kind === "events") p.resolve(results[i]!);
      else p.resolve(undefined);
    }
  }

  private writeOne(p: PendingWrite): AppendResult | undefined {
    if (p.kind === "events") return this.appendOne(p);
    const r = p.reservation;
    this.stmt.rsvPut.run(p.ws, r.id, r.state, r.expiresAt, Date.now(), JSON.stringify(r));
    return undefined;
  }

  private readonly appendSavepoint = (p: PendingAppend) => {
    let accepted = 0;
    let duplicates = 0;
    const inserted: number[] = [];
    const { evInsert, evFp } = this.stmt;
    for (let i = 0; i < p.events.length; i++) {
      const { event: e, fingerprint, valuesJson, dimensionsJson } = p.events[i]!;
      const fp = fingerprintHash(fingerprint);
      const r = evInsert.run(p.ws, e.id, e.type, e.customer, e.timestamp, valuesJson, dimensionsJson, fp);
      if (r.changes === 1) {
        accepted++;
        inserted.push(i);
        continue;
      }
      const existing = evFp.get(p.ws, e.id) as Buffer;
      if (!existing.equals(fp)) throw new Conflict(i, e.id);
      duplicates++;
    }
    return { accepted, duplicates, inserted };
  };

  private appendOne(p: PendingAppend): AppendResult {
    try {
      // A nested better-sqlite3 transaction is a savepoint: a conflict undoes this request only.
      return { ok: true, ...this.db.transaction(this.appendSavepoint)(p) };
    } catch (error) {
      if (error instanceof Conflict) return { ok: false, conflictIndex: error.index, id: error.eventId };
      throw error;
    }
  }

  async scanEvents(
    workspaceId: string,
    scan: EventScan,
    visit: (event: UsageEvent, seq: number) => void,
  ): Promise<void> {
    const ws = this.wsSeq.get(workspaceId);
    if (ws === undefined) return;
    const where = ["ws = ?"];
    const params: unknown[] = [ws];
    if (scan.customer !== undefined) {
      where.push("customer = ?");
      params.push(scan.customer);
    }
    if (scan.from !== undefined) {
      where.push("ts >= ?");
      params.push(scan.from);
    }
    if (scan.to !== undefined) {
      where.push("ts < ?");
      params.push(scan.to);
    }
    if (scan.types !== undefined) {
      where.push(`type IN (${scan.types.map(() => "?").join(",")})`);
      params.push(...scan.types);
    }
    const sql = `SELECT seq, id, type, customer, ts, vals, dims FROM events WHERE ${where.join(" AND ")} ORDER BY ts, seq`;
    for (const row of this.db.prepare(sql).iterate(...params) as IterableIterator<EventRow>) {
      visit(
        {
          id: row.id,
          type: row.type,
          customer: row.customer,
          timestamp: row.ts,
          values: JSON.parse(row.vals),
          dimensions: JSON.parse(row.dims),
        },
        row.seq,
      );
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.db.close();
  }

  private ws(workspaceId: string): number {
    const seq = this.wsSeq.get(workspaceId);
    if (seq === undefined) throw new Error(`unknown workspace ${workspaceId}`);
    return seq;
  }
}

interface WsRow {
  seq: number;
  id: string;
  created_at: number;
}
interface KeyRow {
  id: string;
  workspace_id: string;
  name: string;
  role: ApiKeyRecord["role"];
  customer_id: string | null;
  prefix: string;
  hash: string;
  created_at: number;
  last_used_at: number | null;
}
interface RecRow {
  id: string;
  body: string;
  created_at: number;
  updated_at: number;
}
interface EventRow {
  seq: number;
  id: string;
  type: string;
  customer: string;
  ts: number;
  vals: string;
  dims: string;
}

const toWorkspace = (r: WsRow): Workspace => ({ id: r.id, name: r.id, createdAt: r.created_at });
const toKey = (r: KeyRow): ApiKeyRecord => ({
  id: r.id,
  workspaceId: r.workspace_id,
  name: r.name,
  role: r.role,
  customerId: r.customer_id,
  prefix: r.prefix,
  hash: r.hash,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
});
const toRecord = <T>(r: RecRow): StoredRecord<T> => ({
  id: r.id,
  body: JSON.parse(r.body) as T,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});
